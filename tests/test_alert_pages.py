"""The alert pages: feeds, the alert page, posting without JavaScript, acting on alerts."""

from __future__ import annotations

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from alerts.models import Alert, AlertConfirmation, Event, Severity
from tests.factories import (
    PASSWORD,
    CityStaffFactory,
    MembershipFactory,
    NeighborhoodFactory,
    VerifiedUserFactory,
    category,
    inside,
    official_notice,
    resident_report,
)

pytestmark = pytest.mark.django_db


def signed_in(client, user):
    assert client.login(username=user.username, password=PASSWORD)
    return client


def jpeg_bytes(size=(40, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(out, "JPEG")
    return out.getvalue()


def test_neighborhood_page_shows_its_active_alerts_with_provenance(client):
    n = NeighborhoodFactory()
    notice = official_notice(n, title="Boil water advisory")
    report = resident_report(n, title="Tree down on Elm")
    other = official_notice(NeighborhoodFactory(), title="Elsewhere")
    html = client.get(n.get_absolute_url()).content.decode()
    assert notice.title in html and report.title in html
    assert other.title not in html
    assert f"Official · {notice.department.name}" in html
    assert "Resident report" in html
    assert f'data-live-topic="neighborhood:{n.slug}"' in html


def test_feed_lists_most_severe_first_then_newest(client):
    n = NeighborhoodFactory()
    official_notice(n, title="Older info", severity=Severity.INFO)
    official_notice(n, title="Emergency notice", severity=Severity.EMERGENCY)
    official_notice(n, title="Newer info", severity=Severity.INFO)
    html = client.get(reverse("alerts:neighborhood", args=[n.slug])).content.decode()
    assert html.index("Emergency notice") < html.index("Newer info") < html.index("Older info")


def test_feed_filters_by_kind_and_category(client):
    n = NeighborhoodFactory()
    official_notice(n, title="Official one", category=category("utilities"))
    resident_report(n, title="Resident one", category=category("street-conditions"))
    url = reverse("alerts:neighborhood", args=[n.slug])
    html = client.get(url, {"kind": "community"}).content.decode()
    assert "Resident one" in html and "Official one" not in html
    html = client.get(url, {"category": "utilities"}).content.decode()
    assert "Official one" in html and "Resident one" not in html


def test_my_feed_covers_only_my_neighborhoods(client):
    mine, other = NeighborhoodFactory(), NeighborhoodFactory()
    member = MembershipFactory(neighborhood=mine).user
    official_notice(mine, title="In mine")
    official_notice(other, title="Not mine")
    html = signed_in(client, member).get(reverse("alerts:mine")).content.decode()
    assert "In mine" in html and "Not mine" not in html


def test_my_feed_needs_sign_in(client):
    response = client.get(reverse("alerts:mine"))
    assert response.status_code == 302 and "login" in response["Location"]


@pytest.mark.parametrize("url_name", ["alerts:city", "alerts:neighborhood"])
def test_feed_query_count_does_not_grow_with_alerts(
    client, django_assert_max_num_queries, url_name
):
    n = NeighborhoodFactory()
    staff = CityStaffFactory().user
    args = [n.slug] if url_name == "alerts:neighborhood" else []
    for i in range(3):
        official_notice(n, staff=staff, title=f"Notice {i}")
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as few:
        assert client.get(reverse(url_name, args=args)).status_code == 200
    for i in range(27):
        official_notice(n, staff=staff, title=f"More {i}")
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert client.get(reverse(url_name, args=args)).status_code == 200


def test_neighborhood_page_query_count_does_not_grow_with_alerts(client):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    n = NeighborhoodFactory()
    staff = CityStaffFactory().user
    official_notice(n, staff=staff)
    with CaptureQueriesContext(connection) as few:
        client.get(n.get_absolute_url())
    for i in range(20):
        official_notice(n, staff=staff, title=f"More {i}")
    with CaptureQueriesContext(connection) as many:
        client.get(n.get_absolute_url())
    assert len(many.captured_queries) == len(few.captured_queries)


def test_resident_posts_a_report_without_javascript(client):
    n = NeighborhoodFactory()
    member = MembershipFactory(neighborhood=n, home_claimed=True).user
    lat, lon = inside(n)
    response = signed_in(client, member).post(
        reverse("alerts:report"),
        {
            "category": category("street-conditions").pk,
            "title": "Hydrant open at 3rd & Arch",
            "body": "Water across the street <script>alert(1)</script>",
            "severity": Severity.ADVISORY,
            "lat": lat,
            "lon": lon,
            "photo": SimpleUploadedFile("p.jpg", jpeg_bytes(), content_type="image/jpeg"),
        },
    )
    alert = Alert.objects.get()
    assert response.status_code == 302 and response["Location"] == alert.get_absolute_url()
    assert alert.kind == Alert.Kind.COMMUNITY and alert.author == member
    assert list(alert.neighborhoods.all()) == [n]
    assert "<script>" not in alert.body_html
    assert alert.photo.name.endswith(".jpg")
    page = client.get(alert.get_absolute_url()).content.decode()
    assert "Hydrant open at 3rd &amp; Arch" in page and "Resident report" in page


def test_report_form_explains_what_is_missing_and_keeps_the_input(client):
    n = NeighborhoodFactory()
    member = MembershipFactory(neighborhood=n, home_claimed=True).user
    response = signed_in(client, member).post(
        reverse("alerts:report"),
        {"category": category("street-conditions").pk, "title": "Something", "severity": 2},
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert "Place the pin on the map" in html
    assert 'value="Something"' in html
    assert not Alert.objects.exists()


def test_report_outside_my_neighborhoods_is_refused_with_a_reason(client):
    n, elsewhere = NeighborhoodFactory(), NeighborhoodFactory()
    member = MembershipFactory(neighborhood=n, home_claimed=True).user
    lat, lon = inside(elsewhere)
    response = signed_in(client, member).post(
        reverse("alerts:report"),
        {
            "category": category("street-conditions").pk,
            "title": "Not my street",
            "severity": 2,
            "lat": lat,
            "lon": lon,
        },
    )
    assert response.status_code == 400
    assert f"Join {elsewhere.name}" in response.content.decode()
    assert not Alert.objects.exists()


def test_report_rejects_a_file_that_is_not_a_photo(client):
    n = NeighborhoodFactory()
    member = MembershipFactory(neighborhood=n, home_claimed=True).user
    lat, lon = inside(n)
    response = signed_in(client, member).post(
        reverse("alerts:report"),
        {
            "category": category("street-conditions").pk,
            "title": "With a fake photo",
            "severity": 2,
            "lat": lat,
            "lon": lon,
            "photo": SimpleUploadedFile("x.jpg", b"<?php echo 1; ?>", content_type="image/jpeg"),
        },
    )
    assert response.status_code == 400
    assert not Alert.objects.exists()


def test_staff_post_a_notice_for_chosen_neighborhoods_without_javascript(client):
    a, b = NeighborhoodFactory(), NeighborhoodFactory()
    staff = CityStaffFactory()
    response = signed_in(client, staff.user).post(
        reverse("alerts:official"),
        {
            "category": category("utilities").pk,
            "severity": Severity.EMERGENCY,
            "title": "Gas leak: evacuate",
            "body": "Leave the area now.",
            "neighborhoods": [a.pk, b.pk],
        },
    )
    alert = Alert.objects.get()
    assert response.status_code == 302
    assert alert.kind == Alert.Kind.OFFICIAL and alert.department == staff.department
    assert set(alert.neighborhoods.all()) == {a, b}
    assert Event.objects.filter(topic=f"neighborhood:{b.slug}", type="alert.created").exists()


def test_staff_post_a_notice_for_a_point_and_radius(client):
    n = NeighborhoodFactory()
    staff = CityStaffFactory()
    lat, lon = inside(n)
    signed_in(client, staff.user).post(
        reverse("alerts:official"),
        {
            "category": category("traffic").pk,
            "severity": Severity.ADVISORY,
            "title": "Road closed",
            "lat": lat,
            "lon": lon,
            "radius_m": 200,
        },
    )
    alert = Alert.objects.get()
    assert alert.radius_m == 200 and list(alert.neighborhoods.all()) == [n]


def test_official_form_refuses_two_ways_of_saying_where(client):
    n = NeighborhoodFactory()
    staff = CityStaffFactory()
    lat, lon = inside(n)
    response = signed_in(client, staff.user).post(
        reverse("alerts:official"),
        {
            "category": category("traffic").pk,
            "severity": 2,
            "title": "Ambiguous",
            "neighborhoods": [n.pk],
            "lat": lat,
            "lon": lon,
            "radius_m": 100,
        },
    )
    assert response.status_code == 400
    assert "Use one way to say where" in response.content.decode()


def test_residents_cannot_open_the_official_form(client):
    member = MembershipFactory(verified=True).user
    assert signed_in(client, member).get(reverse("alerts:official")).status_code == 403


def test_members_confirm_a_report_once_and_it_becomes_corroborated(client, settings):
    settings.ENGAGEMENT = {"ALERT_CORROBORATION_THRESHOLD": 2}
    n = NeighborhoodFactory()
    report = resident_report(n)
    url = reverse("alerts:action", args=[report.pk, "confirm"])
    neighbours = [MembershipFactory(neighborhood=n, verified=True).user for _ in range(2)]
    signed_in(client, neighbours[0])
    client.post(url)
    client.post(url)  # twice by the same person counts once
    report.refresh_from_db()
    assert report.confirmations == 1 and not report.is_corroborated
    signed_in(client, neighbours[1]).post(url)
    report.refresh_from_db()
    assert report.confirmations == 2 and report.provenance == "Corroborated by 2 neighbours"
    assert AlertConfirmation.objects.filter(alert=report).count() == 2


def test_a_stranger_cannot_confirm(client):
    report = resident_report(NeighborhoodFactory())
    stranger = VerifiedUserFactory()
    response = signed_in(client, stranger).post(
        reverse("alerts:action", args=[report.pk, "confirm"]), follow=True
    )
    assert "Join the neighborhood" in response.content.decode()
    report.refresh_from_db()
    assert report.confirmations == 0


def test_retracted_notice_stays_visible_as_retracted_with_its_history(client):
    n = NeighborhoodFactory()
    staff = CityStaffFactory()
    notice = official_notice(n, staff=staff.user, title="Street closed Saturday")
    signed_in(client, staff.user).post(
        reverse("alerts:action", args=[notice.pk, "retract"]), {"note": "Wrong date"}
    )
    notice.refresh_from_db()
    assert notice.status == Alert.Status.RETRACTED
    html = client.get(notice.get_absolute_url()).content.decode()
    assert "Retracted" in html and "Wrong date" in html and "Street closed Saturday" in html
    assert Event.objects.filter(topic=f"alert:{notice.pk}", type="alert.retracted").exists()


def test_staff_of_another_department_cannot_retract(client):
    n = NeighborhoodFactory()
    notice = official_notice(n)
    outsider = CityStaffFactory().user
    signed_in(client, outsider).post(
        reverse("alerts:action", args=[notice.pk, "retract"]), {"note": "No"}
    )
    notice.refresh_from_db()
    assert notice.status == Alert.Status.ACTIVE


def test_correction_keeps_the_original_in_the_history(client):
    n = NeighborhoodFactory()
    staff = CityStaffFactory()
    notice = official_notice(n, staff=staff.user, title="Closed until 5pm")
    response = signed_in(client, staff.user).post(
        reverse("alerts:edit", args=[notice.pk]),
        {
            "title": "Closed until 7pm",
            "body": notice.body,
            "severity": notice.severity,
            "note": "Work runs late",
        },
    )
    assert response.status_code == 302
    html = client.get(notice.get_absolute_url()).content.decode()
    assert "Closed until 7pm" in html and "Closed until 5pm" in html and "Work runs late" in html


def test_dismissed_report_is_hidden_from_residents(client):
    n = NeighborhoodFactory()
    report = resident_report(n, title="Prank report")
    staff = CityStaffFactory().user
    signed_in(client, staff).post(
        reverse("alerts:action", args=[report.pk, "dismiss"]), {"note": "Not real"}
    )
    client.logout()
    assert client.get(report.get_absolute_url()).status_code == 404
    assert "Prank report" not in client.get(n.get_absolute_url()).content.decode()


def test_unknown_action_is_not_found(client):
    notice = official_notice(NeighborhoodFactory())
    staff = CityStaffFactory().user
    response = signed_in(client, staff).post(reverse("alerts:action", args=[notice.pk, "explode"]))
    assert response.status_code == 404


def test_feed_pages_link_their_machine_readable_feeds(client):
    n = NeighborhoodFactory()
    html = client.get(reverse("alerts:neighborhood", args=[n.slug])).content.decode()
    assert reverse("alerts:neighborhood-feed-atom", args=[n.slug]) in html
    assert reverse("alerts:feed-geojson") in html and reverse("alerts:cap-index") in html
    notice = official_notice(n)
    assert (
        reverse("alerts:cap", args=[notice.pk])
        in client.get(notice.get_absolute_url()).content.decode()
    )


@pytest.mark.parametrize("page", ["feed", "neighborhood"])
def test_an_event_logged_while_a_page_is_built_is_replayed_to_it(client, monkeypatch, page):
    import re

    from alerts import live, services

    n = NeighborhoodFactory()
    real_feed = services.feed

    def feed_while_an_alert_arrives(**kwargs):
        live.publish(f"neighborhood:{n.slug}", "alert.created", {"id": 0})
        return real_feed(**kwargs)

    monkeypatch.setattr(services, "feed", feed_while_an_alert_arrives)
    url = reverse("alerts:neighborhood", args=[n.slug]) if page == "feed" else n.get_absolute_url()
    html = client.get(url).content.decode()
    since = int(re.search(r'data-live-since="(\d+)"', html)[1])
    assert since < Event.objects.latest("id").pk
