"""The 311 pages without JavaScript: the tracker, a request's page and its actions, reporting by
every channel, escalating a discussion, and the panels on thread and neighborhood pages."""

from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client, RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from engagement import services
from engagement.models import Case, CaseFollow, CaseSupport, SurveyResponse
from forums import hooks
from forums.models import ThreadPhoto, Vote
from neighborhoods.models import Membership
from tests import factories as f
from tests.factories import signed_in

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media_root")]

QUESTIONS = [
    *f.POTHOLE_QUESTIONS,
    {"code": "depth", "prompt": "Depth in cm", "datatype": "number"},
    {"code": "note", "prompt": "Crews fill potholes within days.", "variable": False},
]


def html_of(response) -> str:
    return response.content.decode()


def jpeg(name: str = "photo.jpg") -> SimpleUploadedFile:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 80, 30)).save(out, "JPEG")
    return SimpleUploadedFile(name, out.getvalue(), content_type="image/jpeg")


def staff_of(kind):
    return f.CityStaffFactory(department=kind.department).user


def case_url(case) -> str:
    return reverse("engagement:case", args=[case.tracking_number])


def action_url(case, action: str) -> str:
    return reverse("engagement:case-action", args=[case.tracking_number, action])


def close(case, *, resolution="fixed", **kwargs):
    return services.change_status(
        case,
        user=staff_of(case.service_type),
        status="closed",
        resolution=resolution,
        note="Filled and rolled.",
        **kwargs,
    )


def report_data(kind, neighborhood, **overrides) -> dict:
    lat, lon = f.inside(neighborhood)
    data = {
        "service_type": kind.code,
        "q_size": "large",
        "q_lanes": ["bike"],
        "q_depth": "7",
        "lat": f"{lat:.6f}",
        "lon": f"{lon:.6f}",
        "address": "",
        "description": "Deep pothole in the bike lane by the school.",
        "website": "",
        "idempotency_key": "first-try",
    }
    data.update(overrides)
    return data


# The tracker --------------------------------------------------------------------------------


def test_tracker_rows_show_number_type_status_place_dates_and_supporters():
    n = f.NeighborhoodFactory(name="Fishtown")
    kind = f.service_type("pothole", name="Pothole")
    case = f.case(n, kind=kind)
    Case.objects.filter(pk=case.pk).update(expected_at=timezone.now() - timedelta(days=1))
    response = Client().get(reverse("engagement:cases"))
    assert response.status_code == 200
    html = html_of(response)
    row = re.search(r'<li class="case-row.*?</li>', html, re.S).group(0)
    assert case.tracking_number in row and "Pothole" in row and "Fishtown" in row
    assert "Open" in row and "(overdue)" in row and "is-overdue" in row
    assert "Supporters</dt><dd data-case-supporters>1</dd>" in row
    assert 'data-live-topic="cases"' in html  # rows change in place as cases move
    assert 'id="cases_map-data"' in html and case.tracking_number in html


def test_tracker_filters_by_status_type_neighborhood_and_overdue():
    here, there = f.NeighborhoodFactory(), f.NeighborhoodFactory()
    potholes, lights = f.service_type("pothole"), f.service_type("light")
    open_here = f.case(here, kind=potholes)
    closed_here = close(f.case(here, kind=potholes))
    light_there = f.case(there, kind=lights)
    late = f.case(there, kind=potholes)
    Case.objects.filter(pk=late.pk).update(expected_at=timezone.now() - timedelta(hours=1))
    services.change_status(light_there, user=staff_of(lights), status="acknowledged")

    def shown(**query) -> set[str]:
        response = Client().get(reverse("engagement:cases"), query)
        assert response.status_code == 200
        return set(re.findall(r'data-tracking-number="([\d-]+)"', html_of(response)))

    everything = {c.tracking_number for c in (open_here, closed_here, light_there, late)}
    assert shown() == everything
    assert shown(status="open") == everything - {closed_here.tracking_number}
    assert shown(status="closed") == {closed_here.tracking_number}
    assert shown(status="acknowledged") == {light_there.tracking_number}
    assert shown(type="light") == {light_there.tracking_number}
    assert shown(neighborhood=here.slug) == {
        open_here.tracking_number,
        closed_here.tracking_number,
    }
    assert shown(overdue="on") == {late.tracking_number}
    assert shown(status="nonsense") == everything  # an unknown choice is ignored


def _bulk_cases(neighborhood, kind, count: int, *, reporter) -> None:
    lat, lon = f.inside(neighborhood)
    now = timezone.now()
    start = Case.objects.count()
    Case.objects.bulk_create(
        Case(
            tracking_number=f"26-{start + i + 1:06d}",
            service_type=kind,
            department=kind.department,
            description="Bulk",
            lat=lat,
            lon=lon,
            neighborhood=neighborhood,
            reporter=reporter,
            supporter_count=1,
            created_at=now - timedelta(minutes=i),
            expected_at=now + timedelta(days=i % 3 - 1),
            status="closed" if i % 4 == 3 else "open",
        )
        for i in range(count)
    )


def _count_queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured.captured_queries)


@pytest.mark.parametrize("anonymous", [True, False])
def test_tracker_and_my_requests_queries_do_not_grow_with_cases(anonymous):
    few, many = f.NeighborhoodFactory(), f.NeighborhoodFactory()
    kind = f.service_type("pothole")
    reporter = f.forum_member(few)
    Membership.objects.create(user=reporter, neighborhood=many, verified_at=timezone.now())
    _bulk_cases(few, kind, 3, reporter=reporter)
    _bulk_cases(many, kind, 30, reporter=reporter)
    client = Client() if anonymous else signed_in(reporter)
    url = reverse("engagement:cases")
    counts = [
        _count_queries(client, f"{url}?neighborhood={n.slug}&status=open") for n in (few, many)
    ]
    assert counts[0] == counts[1]
    if not anonymous:
        mine = [_count_queries(client, reverse("engagement:mine")) for _ in range(2)]
        assert mine[0] == mine[1]


def test_my_requests_lists_what_i_reported_and_supported_only():
    n = f.NeighborhoodFactory()
    me = f.forum_member(n)
    mine = f.case(n, reporter=me)
    supported = f.case(n)
    services.support(supported, user=me)
    other = f.case(n)
    response = signed_in(me).get(reverse("engagement:mine"))
    html = html_of(response)
    assert mine.tracking_number in html and supported.tracking_number in html
    assert other.tracking_number not in html
    assert "You reported it" in html
    assert Client().get(reverse("engagement:mine")).status_code == 302


# The case page ------------------------------------------------------------------------------


def test_case_page_shows_status_type_description_answers_expected_date_and_timeline():
    n = f.NeighborhoodFactory(name="Old City")
    kind = f.service_type("pothole", name="Pothole", questions=QUESTIONS)
    case = f.case(n, kind=kind, answers={"size": "large", "lanes": ["bike", "car"]})
    services.change_status(
        case, user=staff_of(kind), status="acknowledged", note="A crew will look today."
    )
    services.add_note(case, user=staff_of(kind), text="Internal: needs a big plate.", public=False)
    response = Client().get(case_url(case))
    assert response.status_code == 200
    html = html_of(response)
    assert case.tracking_number in html and "Pothole" in html and kind.department.name in html
    assert "A deep pothole in the bike lane." in html
    assert "Larger than a plate" in html and "Bike lane, Car lane" in html
    assert "Expected by" in html and "A crew will look today." in html
    assert "Internal: needs a big plate." not in html
    assert f'data-live-topic="case:{case.tracking_number}"' in html
    assert Client().get("/cases/99-999999/").status_code == 404


def test_case_page_never_shows_the_reporter_to_anyone_but_staff(philly):
    old_city = philly["Old City"]
    kind = f.service_type("pothole")
    reporter = f.forum_member(old_city, user__username="rosa.reporter")
    reporter.email = "rosa@example.org"
    reporter.first_name, reporter.last_name = "Rosa", "Reporter"
    reporter.save()
    profile = reporter.engagement_profile
    profile.home_lat, profile.home_lon = 39.987654, -75.076543
    profile.save()
    case = f.case(old_city, kind=kind, reporter=reporter)
    taker = staff_of(kind)
    phoned = services.file_case(
        service_type=kind,
        channel="phone",
        filed_by=taker,
        address="100 Market St",
        description="Caller says there is a hole",
        contact_name="Mr. Caller",
        contact_phone="215-555-0199",
        contact_email="caller@example.org",
    ).case
    secrets = ["rosa.reporter", "rosa@example.org", "Rosa Reporter", "39.98765", "75.07654"]
    phone_secrets = ["Mr. Caller", "215-555-0199", "caller@example.org", taker.username]
    viewers = {
        "public": Client(),
        "reporter": signed_in(reporter),
        "resident": signed_in(f.forum_member(old_city)),
    }
    for who, client in viewers.items():
        html = html_of(client.get(case_url(case)))
        for secret in secrets:
            assert secret not in html, (who, secret)
        html = html_of(client.get(case_url(phoned)))
        for secret in phone_secrets:
            assert secret not in html, (who, secret)
    staff = signed_in(f.CityStaffFactory(department=kind.department).user)
    html = html_of(staff.get(case_url(case)))
    assert "rosa.reporter" in html or "Rosa Reporter" in html
    assert "rosa@example.org" in html and "Open in the case desk" in html
    html = html_of(staff.get(case_url(phoned)))
    assert all(secret in html for secret in phone_secrets)


def test_case_page_shows_duplicate_and_not_the_citys_resolutions_and_linked_threads():
    n = f.NeighborhoodFactory()
    kind = f.service_type("pothole")
    original = f.case(n, kind=kind)
    duplicate = close(f.case(n, kind=kind), resolution="duplicate", duplicate_of=original)
    html = html_of(Client().get(case_url(duplicate)))
    assert "Duplicate" in html and f'href="{case_url(original)}"' in html
    elsewhere = close(f.case(n, kind=kind), resolution="not_city", responsible_party="PECO")
    assert "it is for <strong>PECO</strong> to fix" in html_of(Client().get(case_url(elsewhere)))
    thread = f.thread(n, title="Crater on Race Street")
    escalated = services.escalate_thread(thread, user=thread.author, service_type=kind).case
    html = html_of(Client().get(case_url(escalated)))
    assert "Crater on Race Street" in html and thread.get_absolute_url() in html


def test_me_too_adds_support_once_and_follows():
    n = f.NeighborhoodFactory()
    case = f.case(n)
    neighbour = f.forum_member(n)
    client = signed_in(neighbour)
    assert 'class="metoo"' in html_of(client.get(case_url(case)))
    response = client.post(action_url(case, "support"))
    assert response.status_code == 302 and response["Location"] == case_url(case)
    again = client.post(action_url(case, "support"), follow=True)
    assert "You said “me too” before" in html_of(again)
    reporter = signed_in(case.reporter).post(action_url(case, "support"), follow=True)
    assert f"You reported it: request {case.tracking_number} counts you already." in html_of(
        reporter
    )
    case.refresh_from_db()
    assert case.supporter_count == 2
    assert CaseSupport.objects.filter(case=case, user=neighbour).count() == 1
    assert CaseFollow.objects.filter(case=case, user=neighbour).exists()
    html = html_of(client.get(case_url(case)))
    assert "You said “me too”" in html and "Withdraw my “me too”" in html
    client.post(action_url(case, "withdraw"))
    assert not CaseSupport.objects.filter(case=case, user=neighbour).exists()
    anonymous = Client().post(action_url(case, "support"))
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]
    assert Client().post(action_url(case, "dance")).status_code == 404


def test_following_and_unfollowing_a_request():
    n = f.NeighborhoodFactory()
    case = f.case(n)
    watcher = f.forum_member(n)
    client = signed_in(watcher)
    client.post(action_url(case, "follow"))
    assert CaseFollow.objects.filter(case=case, user=watcher).exists()
    assert "Following — stop" in html_of(client.get(case_url(case)))
    client.post(action_url(case, "unfollow"))
    assert not CaseFollow.objects.filter(case=case, user=watcher).exists()


def test_reporter_reopens_a_closed_request_within_the_window_with_a_photo(settings):
    n = f.NeighborhoodFactory()
    case = close(f.case(n))
    client = signed_in(case.reporter)
    assert "Reopen the request" in html_of(client.get(case_url(case)))
    stranger = signed_in(f.forum_member(n))
    assert "Reopen the request" not in html_of(stranger.get(case_url(case)))
    assert stranger.post(action_url(case, "reopen"), {"comment": "Nope"}).status_code == 403
    missing = client.post(action_url(case, "reopen"), {"comment": ""})
    assert missing.status_code == 400 and "This field is required" in html_of(missing)
    response = client.post(
        action_url(case, "reopen"), {"comment": "Still a hole after the rain.", "photo": jpeg()}
    )
    assert response.status_code == 302
    case.refresh_from_db()
    assert case.status == "open" and case.contested_count == 1
    html = html_of(Client().get(case_url(case)))
    assert "Still a hole after the rain." in html and "Closure contested" in html

    late = close(f.case(n))
    Case.objects.filter(pk=late.pk).update(
        closed_at=timezone.now()
        - timedelta(days=settings.ENGAGEMENT.get("CASE_CONTEST_DAYS", 14) + 1)
    )
    assert "Reopen the request" not in html_of(signed_in(late.reporter).get(case_url(late)))


def test_survey_is_answered_once_by_the_reporter_and_then_thanks():
    n = f.NeighborhoodFactory()
    case = f.case(n)
    client = signed_in(case.reporter)
    assert 'id="survey"' not in html_of(client.get(case_url(case)))
    close(case)
    html = html_of(client.get(case_url(case)))
    assert 'id="survey"' in html and "Was the problem fixed?" in html
    assert 'id="survey"' not in html_of(signed_in(f.forum_member(n)).get(case_url(case)))
    invalid = client.post(action_url(case, "survey"), {"fixed": "yes", "satisfaction": "9"})
    assert invalid.status_code == 400 and not SurveyResponse.objects.exists()
    response = client.post(
        action_url(case, "survey"), {"fixed": "yes", "satisfaction": "4", "comment": "Quick!"}
    )
    assert response.status_code == 302 and response["Location"].endswith("#survey")
    again = client.post(
        action_url(case, "survey"), {"fixed": "no", "satisfaction": "1"}, follow=True
    )
    assert "already answered" in html_of(again)
    answer = SurveyResponse.objects.get()
    assert (answer.fixed, answer.satisfaction, answer.comment) == (True, 4, "Quick!")
    html = html_of(client.get(case_url(case)))
    assert "Thank you for answering" in html and "Send my answer" not in html
    outsider = signed_in(f.forum_member(n)).post(
        action_url(case, "survey"), {"fixed": "yes", "satisfaction": "5"}
    )
    assert outsider.status_code == 403


def test_staff_of_the_department_update_the_status_from_the_case_page():
    n = f.NeighborhoodFactory()
    case = f.case(n)
    staff = signed_in(staff_of(case.service_type))
    response = staff.post(
        action_url(case, "status"),
        {"status": "acknowledged", "note": "On the list for Tuesday.", "public": "on"},
    )
    assert response.status_code == 302
    case.refresh_from_db()
    assert case.status == "acknowledged"
    assert "On the list for Tuesday." in html_of(Client().get(case_url(case)))
    closing = staff.post(action_url(case, "status"), {"status": "closed", "public": "on"})
    assert closing.status_code == 400 and "Choose how the case was resolved." in html_of(closing)
    other = signed_in(f.CityStaffFactory().user)
    assert other.post(action_url(case, "status"), {"status": "closed"}).status_code == 403
    resident = signed_in(f.forum_member(n))
    assert resident.post(action_url(case, "status"), {"status": "closed"}).status_code == 403


# Reporting ------------------------------------------------------------------------------------


def test_report_starts_with_the_types_grouped_then_asks_the_questions_of_the_chosen_one():
    f.service_type("pothole", name="Pothole", group="Streets", questions=QUESTIONS)
    f.service_type("rats", name="Rodents", group="Health")
    f.service_type("old", name="Retired type", is_active=False)
    client = signed_in(f.forum_member(f.NeighborhoodFactory()))
    html = html_of(client.get(reverse("engagement:report")))
    assert "<legend>Streets</legend>" in html and "<legend>Health</legend>" in html
    assert "Retired type" not in html
    html = html_of(client.get(reverse("engagement:report"), {"service_type": "pothole"}))
    assert "How big is it? (required)" in html and 'name="q_size"' in html
    assert 'name="q_lanes"' in html and "Crews fill potholes within days." in html
    assert 'name="q_note"' not in html
    assert '<optgroup label="Health">' in html and 'name="website"' in html
    # Another type, without JavaScript: the same form with that type's questions.
    html = html_of(
        client.get(
            reverse("engagement:report"),
            {"service_type": "rats", "step": "questions", "description": "Kept"},
        )
    )
    assert 'name="q_size"' not in html and "Kept</textarea>" in html


def test_the_report_map_opens_on_the_residents_own_neighborhood():
    n = f.NeighborhoodFactory(boundary=f.square_polygon(39.95, -75.15))
    kind = f.service_type("pothole", questions=QUESTIONS)
    resident = f.MembershipFactory(neighborhood=n, home_claimed=True).user
    url = reverse("engagement:report") + "?service_type=pothole"
    html = html_of(signed_in(resident).get(url))
    assert 'data-boundary="pin-boundary"' in html and 'id="pin-boundary"' in html
    homeless = html_of(signed_in(f.VerifiedUserFactory()).get(url))
    assert 'id="pin-boundary"' not in homeless and kind.name in homeless


def test_report_with_a_required_answer_missing_keeps_everything_and_marks_the_field():
    n = f.NeighborhoodFactory()
    kind = f.service_type("pothole", questions=QUESTIONS)
    client = signed_in(f.forum_member(n))
    data = report_data(kind, n, q_size="")
    response = client.post(reverse("engagement:report"), data)
    assert response.status_code == 400
    html = html_of(response)
    assert "Answer “How big is it?”." in html
    assert "Deep pothole in the bike lane by the school." in html
    assert 'value="bike" checked' in html.replace('id="id_q_lanes_0" ', "") or re.search(
        r'value="bike"[^>]*checked', html
    )
    assert 'value="first-try"' in html  # the same idempotency token, for the next try
    assert not Case.objects.exists()


def test_report_without_a_type_asks_for_one_and_keeps_the_rest():
    n = f.NeighborhoodFactory()
    kind = f.service_type("pothole", questions=QUESTIONS)
    client = signed_in(f.forum_member(n))
    response = client.post(reverse("engagement:report"), report_data(kind, n, service_type=""))
    assert response.status_code == 400
    html = html_of(response)
    assert "Choose the kind of problem." in html
    assert "Deep pothole in the bike lane by the school." in html
    assert not Case.objects.exists()


def test_a_direct_report_files_a_case_with_answers_photos_and_a_tracking_number():
    n = f.NeighborhoodFactory()
    kind = f.service_type("pothole", questions=QUESTIONS)
    reporter = f.forum_member(n)
    client = signed_in(reporter)
    data = report_data(kind, n, photos=[jpeg("a.jpg"), jpeg("b.jpg")])
    response = client.post(reverse("engagement:report"), data)
    case = Case.objects.get()
    assert response.status_code == 302 and response["Location"] == case_url(case)
    assert case.reporter == reporter and case.channel == "web" and case.neighborhood == n
    assert case.answers == {"size": "large", "lanes": ["bike"], "depth": "7"}
    assert case.photos.count() == 2
    page = html_of(client.get(response["Location"]))
    assert f"Its tracking number is {case.tracking_number}" in page


def test_a_double_submission_files_one_case_and_shows_it():
    n = f.NeighborhoodFactory()
    kind = f.service_type("pothole", questions=QUESTIONS)
    client = signed_in(f.forum_member(n))
    first = client.post(reverse("engagement:report"), report_data(kind, n))
    second = client.post(reverse("engagement:report"), report_data(kind, n), follow=True)
    case = Case.objects.get()
    assert first["Location"] == case_url(case)
    assert second.redirect_chain[-1][0] == case_url(case)
    assert f"already filed as {case.tracking_number}" in html_of(second)


def test_open_requests_nearby_are_shown_before_filing_with_me_too():
    n = f.NeighborhoodFactory()
    kind = f.service_type("pothole", questions=QUESTIONS)
    existing = f.case(n, kind=kind, answers={"size": "small"})
    far = f.NeighborhoodFactory()
    elsewhere = f.case(far, kind=kind, answers={"size": "small"})
    neighbour = f.forum_member(n)
    client = signed_in(neighbour)
    lat, lon = f.inside(n)
    query = {"service_type": kind.code, "lat": lat, "lon": lon, "step": "check"}
    html = html_of(client.get(reverse("engagement:report"), query))
    assert "1 open request of this type nearby" in html
    assert existing.tracking_number in html and elsewhere.tracking_number not in html
    me_too = action_url(existing, "support")
    assert f'formaction="{me_too}"' in html
    response = client.post(me_too, report_data(kind, n))
    assert response.status_code == 302 and response["Location"] == case_url(existing)
    assert CaseSupport.objects.filter(case=existing, user=neighbour).exists()
    assert Case.objects.count() == 2
    # With JavaScript, the page asks the API for the same list as the pin moves.
    assert f'data-nearby-url="{reverse("api-cases-nearby")}"' in html


def test_the_honeypot_turns_robots_away():
    n = f.NeighborhoodFactory()
    kind = f.service_type("pothole", questions=QUESTIONS)
    client = signed_in(f.forum_member(n))
    response = client.post(reverse("engagement:report"), report_data(kind, n, website="spam"))
    assert response.status_code == 400
    assert "The form could not be accepted" in html_of(response)
    assert not Case.objects.exists()


def test_too_many_reports_say_when_to_try_again(settings):
    settings.ENGAGEMENT = {**settings.ENGAGEMENT, "CASE_RATE": (1, 3600)}
    n = f.NeighborhoodFactory()
    kind = f.service_type("pothole", questions=QUESTIONS)
    client = signed_in(f.forum_member(n))
    assert client.post(reverse("engagement:report"), report_data(kind, n)).status_code == 302
    again = client.post(reverse("engagement:report"), report_data(kind, n, idempotency_key="2"))
    assert again.status_code == 429
    assert re.search(r"Too many attempts\. Try again in \d+", html_of(again))
    assert "Deep pothole in the bike lane by the school." in html_of(again)


def test_reporting_needs_a_signed_in_person_with_a_verified_email():
    assert Client().get(reverse("engagement:report"))["Location"].startswith("/accounts/login/")
    unverified = signed_in(f.UserFactory())
    response = unverified.get(reverse("engagement:report"))
    assert response.status_code == 403 and "Verify your e-mail address" in html_of(response)


# Other channels -----------------------------------------------------------------------------


def test_call_takers_record_a_call_and_the_callers_details_stay_private():
    n = f.NeighborhoodFactory()
    kind = f.service_type("pothole", questions=QUESTIONS)
    taker = f.CityStaffFactory().user
    client = signed_in(taker)
    url = reverse("engagement:report-phone")
    html = html_of(client.get(url, {"service_type": kind.code}))
    assert "only city staff see this name and these contact details" in html
    assert 'type="tel"' in html and 'name="website"' not in html
    missing = client.post(url, report_data(kind, n, contact_name="Ms. Caller"))
    assert missing.status_code == 400 and "Take a phone number or an e-mail" in html_of(missing)
    data = report_data(kind, n, contact_name="Ms. Caller", contact_phone="215-555-0100")
    data["idempotency_key"] = "call-1"
    response = client.post(url, data)
    case = Case.objects.get()
    assert response.status_code == 302
    assert (case.channel, case.filed_by, case.reporter) == ("phone", taker, None)
    assert case.contact_phone == "215-555-0100"
    assert "215-555-0100" not in html_of(Client().get(case_url(case)))
    # Re-rendering for another type keeps the caller's details out of the address bar.
    step = client.post(url, {**data, "step": "questions", "service_type": kind.code})
    assert step.status_code == 200 and 'value="215-555-0100"' in html_of(step)
    for outsider in (f.forum_member(n), f.UserFactory()):
        assert signed_in(outsider).get(url).status_code == 403
        assert signed_in(outsider).post(url, data).status_code == 403
    assert Case.objects.count() == 1


def test_liaisons_file_for_a_neighbour_and_other_members_may_not():
    n = f.NeighborhoodFactory()
    kind = f.service_type("pothole", questions=QUESTIONS)
    organization = f.OrganizationFactory(verified=True, neighborhoods=[n])
    liaison = f.OrganizationMembershipFactory(organization=organization, is_liaison=True).user
    member = f.OrganizationMembershipFactory(organization=organization).user
    url = reverse("engagement:report-on-behalf")
    client = signed_in(liaison)
    html = html_of(client.get(url, {"service_type": kind.code}))
    assert "The neighbour" in html and "only city staff see" in html
    data = report_data(kind, n, contact_name="Mr. Lee", contact_email="lee@example.org")
    response = client.post(url, data)
    case = Case.objects.get()
    assert response.status_code == 302
    assert (case.channel, case.filed_by, case.contact_name) == ("liaison", liaison, "Mr. Lee")
    assert "lee@example.org" not in html_of(Client().get(case_url(case)))
    assert signed_in(member).get(url).status_code == 403
    assert signed_in(f.CityStaffFactory().user).get(url).status_code == 403


# Escalation -----------------------------------------------------------------------------------


def _escalation_setup():
    n = f.NeighborhoodFactory()
    kind = f.service_type(
        "pothole",
        name="Pothole",
        questions=QUESTIONS,
        forum_tags="potholes",
    )
    f.service_type("light", name="Streetlight out", forum_tags="lighting")
    lat, lon = f.inside(n)
    thread = f.thread(
        n, title="Crater on Race Street", tags="potholes", lat=lat, lon=lon, body="Two falls."
    )
    ThreadPhoto.objects.create(thread=thread, image="forums/crater.jpg", width=40, height=30)
    return n, kind, thread


def test_escalation_form_is_prefilled_from_the_thread():
    n, kind, thread = _escalation_setup()
    client = signed_in(thread.author)
    url = reverse("engagement:escalate", args=[thread.pk])
    response = client.get(url)
    assert response.status_code == 200
    html = html_of(response)
    assert re.search(r'<option value="pothole" selected>', html)
    assert "Crater on Race Street" in html and "Two falls." in html
    assert f'value="{thread.lat:.6f}"'.rstrip("0") in html or str(thread.lat)[:7] in html
    assert "Photos that will be attached" in html and "forums/crater.jpg" in html
    assert 'name="q_size"' in html
    # Another type: its questions, the text kept.
    html = html_of(
        client.get(url, {"service_type": "light", "step": "questions", "description": "Mine"})
    )
    assert 'name="q_size"' not in html and "Mine</textarea>" in html


def test_escalating_creates_one_case_and_a_second_post_goes_to_the_same_case():
    n, kind, thread = _escalation_setup()
    client = signed_in(thread.author)
    url = reverse("engagement:escalate", args=[thread.pk])
    data = {
        "service_type": kind.code,
        "q_size": "small",
        "description": "Crater on Race Street, two falls.",
        "lat": thread.lat,
        "lon": thread.lon,
        "address": "",
        "idempotency_key": "esc-1",
    }
    missing = client.post(url, {**data, "q_size": ""})
    assert missing.status_code == 400 and "Answer “How big is it?”." in html_of(missing)
    response = client.post(url, data)
    case = Case.objects.get()
    assert response.status_code == 302 and response["Location"] == case_url(case)
    assert case.thread == thread and case.photos.count() == 1
    organizer = f.forum_member(n, role=Membership.Role.ORGANIZER)
    again = signed_in(organizer).post(url, {**data, "idempotency_key": "esc-2"}, follow=True)
    assert again.redirect_chain[-1][0] == case_url(case)
    assert f"already 311 request {case.tracking_number}" in html_of(again)
    assert Case.objects.count() == 1
    assert client.get(url)["Location"] == case_url(case)


def test_only_the_author_an_organizer_or_staff_may_escalate():
    n, kind, thread = _escalation_setup()
    url = reverse("engagement:escalate", args=[thread.pk])
    response = signed_in(f.forum_member(n)).get(url)
    assert response.status_code == 403 and "can send it to 311" in html_of(response)
    assert signed_in(f.CityStaffFactory().user).get(url).status_code == 200
    assert Client().get(url).status_code == 302
    assert (
        signed_in(thread.author).get(reverse("engagement:escalate", args=[99999])).status_code
        == 404
    )


# Panels -------------------------------------------------------------------------------------


def _panel_html(user, thread) -> str:
    request = RequestFactory().get(thread.get_absolute_url())
    request.user = user
    return "".join(hooks.render_thread_panels(request, thread))


def test_thread_panel_offers_escalation_and_then_shows_the_case_badge(settings):
    from django.contrib.auth.models import AnonymousUser

    settings.ENGAGEMENT = {**settings.ENGAGEMENT, "FORUM_ESCALATION_SUPPORTERS": 2}
    n, kind, thread = _escalation_setup()
    html = _panel_html(thread.author, thread)
    assert "Escalate to 311" in html
    assert reverse("engagement:escalate", args=[thread.pk]) in html
    assert "Escalate to 311" not in _panel_html(AnonymousUser(), thread)
    for _ in range(2):
        Vote.objects.create(thread=thread, user=f.forum_member(n))
    thread.vote_count = 2
    thread.save(update_fields=["vote_count"])
    html = _panel_html(AnonymousUser(), thread)
    assert "2 verified neighbours support this — it can be escalated to 311" in html

    case = services.escalate_thread(
        thread, user=thread.author, service_type=kind, answers={"size": "small"}
    ).case
    services.change_status(case, user=staff_of(kind), status="acknowledged", note="On it.")
    html = _panel_html(AnonymousUser(), thread)
    assert case.tracking_number in html and "Acknowledged" in html and "On it." in html
    assert f'data-tracking-number="{case.tracking_number}"' in html
    assert "Escalate to 311" not in html
    close(case)
    html = _panel_html(thread.author, thread)
    assert "Closed" in html and "How did the city do?" in html
    assert "How did the city do?" not in _panel_html(AnonymousUser(), thread)


def test_thread_page_shows_the_case_panel():
    n, kind, thread = _escalation_setup()
    case = services.escalate_thread(
        thread, user=thread.author, service_type=kind, answers={"size": "small"}
    ).case
    html = html_of(Client().get(thread.get_absolute_url()))
    if "data-case-panel" not in html:
        pytest.skip("the thread page does not render the panels of other apps yet")
    assert case.tracking_number in html and "engagement/cases.js" in html


def test_neighborhood_page_lists_open_requests():
    n = f.NeighborhoodFactory(name="Fishtown")
    case = f.case(n)
    closed = close(f.case(n))
    html = html_of(Client().get(n.get_absolute_url()))
    assert "311 requests in Fishtown" in html
    assert case.tracking_number in html and closed.tracking_number not in html
