"""Rules of alerts: areas and neighborhoods, provenance, corroboration, expiry, corrections."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone
from shapely.geometry import Point, shape

from alerts import services
from alerts.models import Alert, AlertRevision, Event, Severity
from tests.factories import (
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


def test_circle_area_has_the_radius_in_metres():
    area = services.circle_area(39.95, -75.16, 500)
    polygon = shape(area)
    minx, miny, maxx, maxy = polygon.bounds
    # 500 m north-south is ~0.0045 degrees of latitude.
    assert (maxy - miny) / 2 == pytest.approx(500 / 111_320, rel=0.02)
    assert polygon.contains(Point(-75.16, 39.95))


@pytest.mark.parametrize("radius", [0, -5, float("nan"), 10_000_000])
def test_circle_area_refuses_impossible_radii(radius):
    with pytest.raises(ValueError):
        services.circle_area(39.95, -75.16, radius)


def test_a_polygon_notice_reaches_every_real_neighborhood_it_touches(philly):
    old_city, society_hill = philly["Old City"], philly["Society Hill"]
    a, b = shape(old_city.boundary), shape(society_hill.boundary)
    # A small box around a point on their shared edge.
    edge = a.boundary.intersection(b.boundary).representative_point()
    box = {
        "type": "Polygon",
        "coordinates": [
            [
                [edge.x - 0.0005, edge.y - 0.0005],
                [edge.x + 0.0005, edge.y - 0.0005],
                [edge.x + 0.0005, edge.y + 0.0005],
                [edge.x - 0.0005, edge.y + 0.0005],
                [edge.x - 0.0005, edge.y - 0.0005],
            ]
        ],
    }
    notice = official_notice(area=box, title="Film shoot")
    names = {n.name for n in notice.neighborhoods.all()}
    assert {"Old City", "Society Hill"} <= names
    assert len(names) <= 4


def test_an_area_outside_every_neighborhood_is_refused(philly):
    far = services.circle_area(40.7128, -74.0060, 300)  # New York
    with pytest.raises(ValidationError) as error:
        official_notice(area=far)
    assert "does not touch any neighborhood" in str(error.value)


def test_resident_report_belongs_to_the_neighborhood_of_its_pin(philly):
    old_city = philly["Old City"]
    lat, lon = inside(old_city)
    report = resident_report(old_city, lat=lat, lon=lon)
    assert old_city in report.neighborhoods.all()
    assert report.provenance == "Resident report"


def test_residents_cannot_raise_an_emergency():
    n = NeighborhoodFactory()
    with pytest.raises(ValidationError) as error:
        resident_report(n, severity=Severity.EMERGENCY)
    assert "Emergencies are for the city" in str(error.value)


def test_only_members_who_take_part_may_report():
    n = NeighborhoodFactory()
    with pytest.raises(PermissionDenied):
        resident_report(n, author=VerifiedUserFactory())


def test_residents_are_limited_in_reports_per_hour(settings):
    settings.ENGAGEMENT = {"ALERT_REPORTS_PER_HOUR": 2}
    from neighborhoods.ratelimit import RateLimited

    n = NeighborhoodFactory()
    author = MembershipFactory(neighborhood=n, verified=True).user
    resident_report(n, author=author)
    resident_report(n, author=author)
    with pytest.raises(RateLimited):
        resident_report(n, author=author)
    assert Alert.objects.count() == 2


def test_only_staff_post_official_notices():
    with pytest.raises(PermissionDenied):
        official_notice(staff=MembershipFactory(verified=True).user)


def test_official_provenance_names_the_department():
    staff = CityStaffFactory(department__name="Water Department")
    notice = official_notice(staff=staff.user)
    assert notice.provenance == "Official · Water Department"


def test_corroboration_counts_distinct_verified_members_only(settings):
    settings.ENGAGEMENT = {"ALERT_CORROBORATION_THRESHOLD": 2}
    n = NeighborhoodFactory()
    report = resident_report(n)
    unverified = MembershipFactory(neighborhood=n).user
    verified = [MembershipFactory(neighborhood=n, verified=True).user for _ in range(2)]
    services.confirm_alert(report, user=unverified)
    services.confirm_alert(report, user=verified[0])
    services.confirm_alert(report, user=verified[0])
    report.refresh_from_db()
    assert report.confirmations == 1 and not report.is_corroborated
    services.confirm_alert(report, user=verified[1])
    report.refresh_from_db()
    assert report.confirmations == 2
    assert report.provenance == "Corroborated by 2 neighbours"


def test_the_author_cannot_confirm_their_own_report():
    n = NeighborhoodFactory()
    report = resident_report(n)
    with pytest.raises(ValidationError):
        services.confirm_alert(report, user=report.author)


def test_changing_ones_answer_to_gone_is_counted_once(settings):
    settings.ENGAGEMENT = {"ALERT_GONE_THRESHOLD": 2}
    n = NeighborhoodFactory()
    report = resident_report(n)
    neighbours = [MembershipFactory(neighborhood=n, verified=True).user for _ in range(2)]
    services.confirm_alert(report, user=neighbours[0], still_there=True)
    services.confirm_alert(report, user=neighbours[0], still_there=False)
    report.refresh_from_db()
    assert (report.confirmations, report.gone_reports) == (0, 1)
    assert report.status == Alert.Status.ACTIVE
    services.confirm_alert(report, user=neighbours[1], still_there=False)
    report.refresh_from_db()
    assert report.status == Alert.Status.RESOLVED


def test_a_confirmation_keeps_a_report_alive_for_its_category_lifetime():
    n = NeighborhoodFactory()
    report = resident_report(n, category=category("noise"))  # 6 hours
    assert report.expires_at - report.starts_at == timedelta(hours=6)
    Alert.objects.filter(pk=report.pk).update(expires_at=timezone.now() + timedelta(minutes=5))
    report.refresh_from_db()
    services.confirm_alert(report, user=MembershipFactory(neighborhood=n, verified=True).user)
    report.refresh_from_db()
    assert report.expires_at > timezone.now() + timedelta(hours=5, minutes=59)


def test_expired_alerts_leave_the_feed_and_are_announced():
    n = NeighborhoodFactory()
    report = resident_report(n)
    notice = official_notice(n)
    Alert.objects.filter(pk=report.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert list(services.feed(neighborhoods=[n])) == [notice]
    assert services.expire_alerts() == 1
    report.refresh_from_db()
    assert report.status == Alert.Status.EXPIRED
    assert Event.objects.filter(topic=f"alert:{report.pk}", type="alert.expired").exists()
    assert services.expire_alerts() == 0


def test_a_correction_keeps_the_previous_version():
    n = NeighborhoodFactory()
    staff = CityStaffFactory().user
    notice = official_notice(n, staff=staff, title="Closed until 5pm")
    services.edit_alert(notice, user=staff, note="Runs late", title="Closed until 7pm")
    notice.refresh_from_db()
    assert notice.version == 2 and notice.title == "Closed until 7pm"
    revision = AlertRevision.objects.get(alert=notice)
    assert (revision.version, revision.title, revision.note) == (1, "Closed until 5pm", "Runs late")
    assert Event.objects.filter(topic=f"neighborhood:{n.slug}", type="alert.updated").exists()


def test_an_unchanged_edit_makes_no_new_version():
    staff = CityStaffFactory().user
    notice = official_notice(staff=staff)
    services.edit_alert(notice, user=staff, title=notice.title)
    notice.refresh_from_db()
    assert notice.version == 1 and not AlertRevision.objects.exists()


def test_retraction_needs_a_reason_and_happens_once():
    staff = CityStaffFactory().user
    notice = official_notice(staff=staff)
    with pytest.raises(ValidationError):
        services.retract_alert(notice, user=staff, reason="  ")
    services.retract_alert(notice, user=staff, reason="Issued in error")
    services.retract_alert(notice, user=staff, reason="Again")
    notice.refresh_from_db()
    assert notice.status == Alert.Status.RETRACTED and notice.status_note == "Issued in error"
    assert Event.objects.filter(topic=f"alert:{notice.pk}", type="alert.retracted").count() == 1


def test_supervisors_manage_every_department_and_staff_only_their_own():
    notice = official_notice()
    other = CityStaffFactory().user
    supervisor = CityStaffFactory(is_supervisor=True).user
    assert not services.can_manage(other, notice)
    assert services.can_manage(supervisor, notice)
    with pytest.raises(PermissionDenied):
        services.retract_alert(notice, user=other, reason="no")


def test_dismissed_reports_are_visible_only_to_staff_and_author():
    n = NeighborhoodFactory()
    report = resident_report(n)
    staff = CityStaffFactory().user
    report = services.dismiss_alert(report, user=staff, note="Spam")
    neighbour = MembershipFactory(neighborhood=n).user
    assert not services.visible_to(neighbour, report)
    assert services.visible_to(report.author, report)
    assert services.visible_to(staff, report)


def test_feed_orders_by_severity_then_recency():
    n = NeighborhoodFactory()
    staff = CityStaffFactory().user
    first = official_notice(n, staff=staff, severity=Severity.INFO)
    urgent = official_notice(n, staff=staff, severity=Severity.EMERGENCY)
    later = official_notice(n, staff=staff, severity=Severity.INFO)
    assert list(services.feed(neighborhoods=[n])) == [urgent, later, first]


def test_every_change_is_logged_as_an_event_for_each_neighborhood_and_the_alert():
    a, b = NeighborhoodFactory(), NeighborhoodFactory()
    notice = official_notice(a, neighborhoods=[a, b])
    topics = set(Event.objects.filter(type="alert.created").values_list("topic", flat=True))
    assert topics == {f"neighborhood:{a.slug}", f"neighborhood:{b.slug}", f"alert:{notice.pk}"}
    data = Event.objects.filter(topic=f"alert:{notice.pk}").get().data
    assert data["provenance"].startswith("Official · ") and data["neighborhoods"] == sorted(
        [a.slug, b.slug]
    )


def test_a_dismissed_report_is_announced_without_its_text():
    n = NeighborhoodFactory()
    report = resident_report(n, title="Something abusive")
    services.dismiss_alert(report, user=CityStaffFactory().user, note="Abusive")
    event = Event.objects.get(topic=f"neighborhood:{n.slug}", type="alert.retracted")
    assert event.data["status"] == "dismissed" and event.data["is_active"] is False
    assert "Something abusive" not in str(event.data)


def test_dismissal_removes_the_text_from_the_event_log_and_the_inboxes(
    settings, django_capture_on_commit_callbacks
):
    from alerts.models import Notification
    from alerts.notify import notify

    n = NeighborhoodFactory()
    report = resident_report(n, title="Abusive words")
    services.confirm_alert(report, user=MembershipFactory(neighborhood=n, verified=True).user)
    neighbour = MembershipFactory(neighborhood=n).user
    with django_capture_on_commit_callbacks(execute=True):
        notify(
            neighbour,
            kind="alert.corroborated",
            title=report.title,
            key=f"test:{report.pk}",
            url=report.get_absolute_url(),
            alert=report,
        )
    assert Event.objects.filter(data__title="Abusive words").exists()

    services.dismiss_alert(report, user=CityStaffFactory().user, note="Abuse")

    assert "Abusive words" not in str(list(Event.objects.values_list("data", flat=True)))
    assert "Abusive words" not in str(list(Notification.objects.values_list("title", flat=True)))


def test_resident_reports_are_dismissed_not_retracted():
    report = resident_report(NeighborhoodFactory())
    with pytest.raises(ValidationError):
        services.retract_alert(report, user=CityStaffFactory().user, reason="No")


def test_control_characters_never_reach_the_text():
    n = NeighborhoodFactory()
    report = resident_report(n, title="Flood\x01 here\x7f", body="Deep\x00 water")
    assert report.title == "Flood here" and report.body == "Deep water"


def test_only_verified_members_can_say_a_report_is_gone(settings):
    settings.ENGAGEMENT = {"ALERT_GONE_THRESHOLD": 2}
    n = NeighborhoodFactory()
    report = resident_report(n)
    for _ in range(3):
        services.confirm_alert(
            report, user=MembershipFactory(neighborhood=n).user, still_there=False
        )
    report.refresh_from_db()
    assert report.status == Alert.Status.ACTIVE and report.gone_reports == 0
