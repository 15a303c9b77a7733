"""The rules of 311 cases, through ``engagement.services``."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from alerts.models import Event, Notification
from engagement import services
from engagement.models import Case, CaseAudit, CaseNote, CaseSupport, Holiday, SurveyResponse
from forums import services as forums
from neighborhoods.models import Membership
from tests import factories as f

pytestmark = pytest.mark.django_db

QUESTIONS = [
    f.SIZE_QUESTION,
    f.LANES_WITH_PARKING,
    {"code": "depth", "prompt": "Depth in cm", "datatype": "number"},
    {"code": "seen", "prompt": "When did you see it?", "datatype": "datetime"},
    {"code": "note", "prompt": "Read this", "datatype": "string", "variable": False},
]


def staff_of(kind):
    return f.CityStaffFactory(department=kind.department).user


# Service levels and numbers -----------------------------------------------------------------


def test_expected_dates_count_working_days_around_weekends_and_holidays(settings):
    settings.TIME_ZONE = "America/New_York"
    kind = f.service_type(sla_working_days=3)
    Holiday.objects.create(date=date(2026, 11, 26), name="Thanksgiving")
    Holiday.objects.create(date=date(2026, 11, 27), name="Day after Thanksgiving")
    tz = ZoneInfo("America/New_York")
    filed = datetime(2026, 11, 25, 10, 0, tzinfo=tz)  # a Wednesday
    due = services.expected_at(kind, filed)
    assert due == datetime(2026, 12, 2, 17, 0, tzinfo=tz)  # Mon 30, Tue 1, Wed 2


def test_tracking_numbers_are_consecutive_per_year_and_human_friendly():
    first = f.case()
    second = f.case()
    year = timezone.localtime().year % 100
    assert first.tracking_number == f"{year:02d}-000001"
    assert second.tracking_number == f"{year:02d}-000002"
    assert services.find_case(first.tracking_number) == first
    assert services.find_case("nonsense") is None


# Filing -------------------------------------------------------------------------------------


def test_answers_are_checked_against_the_questions():
    kind = f.service_type("pothole", questions=QUESTIONS)
    cleaned = services.clean_answers(
        kind,
        {
            "size": "large",
            "lanes": ["bike", "car", "bike"],
            "depth": "7.50",
            "seen": "2026-11-20T08:15:00Z",
        },
    )
    assert cleaned == {
        "size": "large",
        "lanes": ["bike", "car"],
        "depth": "7.5",
        "seen": "2026-11-20T08:15:00+00:00",
    }
    with pytest.raises(ValidationError) as caught:
        services.clean_answers(
            kind, {"lanes": ["sidewalk"], "depth": "deep", "seen": "yesterday", "colour": "red"}
        )
    assert set(caught.value.message_dict) == {
        "answers.size",
        "answers.lanes",
        "answers.depth",
        "answers.seen",
        "answers.colour",
    }


def test_answers_are_shown_by_their_names_and_dates_as_people_read_them(settings):
    settings.TIME_ZONE = "America/New_York"
    kind = f.service_type("pothole", questions=QUESTIONS)
    case = f.case(
        f.NeighborhoodFactory(),
        kind=kind,
        answers={"size": "large", "lanes": ["bike", "car"], "seen": "2026-11-20T13:15:00+00:00"},
    )
    assert services.answer_labels(case) == [
        ("How big is it?", "Larger than a plate"),
        ("Which lanes?", "Bike lane, Car lane"),
        ("When did you see it?", "Nov. 20, 2026, 8:15 a.m."),
    ]


def test_a_resident_files_a_case_that_is_located_routed_and_followed(philly):
    old_city = philly["Old City"]
    kind = f.service_type("pothole", questions=QUESTIONS)
    reporter = f.forum_member(old_city)
    lat, lon = f.inside(old_city)
    filed = services.file_case(
        service_type=kind,
        reporter=reporter,
        lat=lat,
        lon=lon,
        description="Pothole in the bike lane",
        answers={"size": "small"},
    )
    case = filed.case
    assert filed.created and case.neighborhood == old_city
    assert case.department == kind.department and case.status == "open"
    assert case.expected_at > case.created_at and case.supporter_count == 1
    assert CaseNote.objects.get(case=case).kind == "created"
    assert CaseAudit.objects.get(case=case, action="filed").data["channel"] == "web"
    assert Event.objects.filter(topic=f"case:{case.tracking_number}", type="case.created")
    assert Event.objects.filter(topic="neighborhood:old-city", type="case.created")
    assert Event.objects.get(topic="cases", type="case.created").data["tracking_number"] == (
        case.tracking_number
    )
    payload = Event.objects.get(topic=f"case:{case.tracking_number}").data
    assert reporter.email not in str(payload) and "reporter" not in payload


def test_filing_needs_a_place_in_the_city_and_a_verified_email(philly):
    kind = f.service_type()
    reporter = f.forum_member(philly["Old City"])
    with pytest.raises(ValidationError, match="outside"):
        services.file_case(
            service_type=kind, reporter=reporter, lat=40.7, lon=-74.0, description="New York"
        )
    with pytest.raises(ValidationError) as caught:
        services.file_case(service_type=kind, reporter=reporter, description="")
    assert set(caught.value.message_dict) == {"description", "location"}
    unverified = f.UserFactory()
    with pytest.raises(PermissionDenied, match="Verify"):
        f.case(philly["Old City"], kind=kind, reporter=unverified)
    by_address = services.file_case(
        service_type=kind, reporter=reporter, address="100 Market St", description="Hole"
    )
    assert by_address.case.neighborhood is None and by_address.case.address == "100 Market St"


def test_a_retry_with_the_same_idempotency_key_returns_the_first_case():
    neighborhood = f.NeighborhoodFactory()
    first = f.case(neighborhood, idempotency_key="client-123")
    again = services.file_case(
        service_type=first.service_type,
        reporter=first.reporter,
        lat=first.lat,
        lon=first.lon,
        description="double click",
        idempotency_key="client-123",
    )
    assert not again.created and again.case == first
    assert Case.objects.count() == 1


def test_call_takers_and_liaisons_file_for_others_and_contacts_stay_private(philly):
    old_city = philly["Old City"]
    kind = f.service_type()
    lat, lon = f.inside(old_city)
    taker = staff_of(kind)
    phoned = services.file_case(
        service_type=kind,
        channel="phone",
        filed_by=taker,
        lat=lat,
        lon=lon,
        description="Caller says the light is out",
        contact_name="Ms. Caller",
        contact_phone="215-555-0100",
    ).case
    assert phoned.channel == "phone" and phoned.filed_by == taker and phoned.reporter is None
    assert "215-555-0100" not in str(services.case_payload(phoned))
    assert services.case_payload(phoned, staff=True)["staff"]["contact_phone"] == "215-555-0100"

    with pytest.raises(PermissionDenied):
        services.file_case(
            service_type=kind,
            channel="phone",
            filed_by=f.forum_member(old_city),
            lat=lat,
            lon=lon,
            description="x",
            contact_phone="1",
        )
    organization = f.OrganizationFactory(verified=True, neighborhoods=[old_city])
    liaison = f.OrganizationMembershipFactory(organization=organization, is_liaison=True).user
    plain = f.OrganizationMembershipFactory(organization=organization).user
    filed = services.file_case(
        service_type=kind,
        channel="liaison",
        filed_by=liaison,
        lat=lat,
        lon=lon,
        description="Mr. Lee has no internet",
        contact_name="Mr. Lee",
        contact_phone="215-555-0101",
    ).case
    assert filed.filed_by == liaison
    audit = CaseAudit.objects.get(case=filed, action="filed")
    assert audit.data["channel"] == "liaison" and audit.actor == liaison
    with pytest.raises(PermissionDenied, match="liaison"):
        services.file_case(
            service_type=kind,
            channel="liaison",
            filed_by=plain,
            lat=lat,
            lon=lon,
            description="x",
            contact_phone="1",
        )
    with pytest.raises(ValidationError, match="phone number"):
        services.file_case(
            service_type=kind,
            channel="liaison",
            filed_by=liaison,
            lat=lat,
            lon=lon,
            description="x",
        )


# Escalation ---------------------------------------------------------------------------------


def test_the_suggested_type_needs_evidence_not_just_a_shared_category():
    n = f.NeighborhoodFactory()
    safety = f.forum_category("safety")
    noise = f.service_type("noise", forum_tags="noise, music", forum_category=safety)
    f.service_type("speeding", forum_tags="speeding", forum_category=safety)
    crossing = f.thread(
        n, title="Dangerous crossing at Front and Market", tags="crosswalk", category_slug="safety"
    )
    assert services.suggested_service_type(crossing) is None  # two types share the category
    loud = f.thread(n, title="Loud music every night", tags="music", category_slug="safety")
    assert services.suggested_service_type(loud) == noise
    draft = services.escalation_draft(crossing)
    assert draft["service_type"] is None
    link = draft["description"].rsplit("From the neighborhood discussion: ", 1)[1]
    assert link.startswith("http") and link.endswith(crossing.get_absolute_url())


def test_escalating_a_thread_prefills_from_it_and_happens_once(philly):
    old_city = philly["Old City"]
    kind = f.service_type("pothole", forum_tags="potholes, road")
    f.service_type("graffiti", forum_tags="graffiti")
    lat, lon = f.inside(old_city)
    thread = f.thread(
        old_city, title="Huge pothole on Front Street", tags="potholes", lat=lat, lon=lon
    )
    supporters = [f.forum_member(old_city) for _ in range(3)]
    for person in supporters:
        forums.vote(person, thread=thread)
    assert services.suggested_service_type(thread) == kind
    draft = services.escalation_draft(thread)
    assert draft["lat"] == thread.lat and "Huge pothole" in draft["description"]

    organizer = f.forum_member(old_city, role=Membership.Role.ORGANIZER)
    first = services.escalate_thread(thread, user=organizer, service_type=kind)
    second = services.escalate_thread(thread, user=thread.author, service_type=kind)
    assert first.created and not second.created and second.case == first.case
    case = first.case
    assert case.thread == thread and case.reporter == thread.author
    assert case.verified_supporter_count == 4  # three voters and the author
    late = f.forum_member(old_city)
    forums.vote(late, thread=thread)
    case.refresh_from_db()
    assert case.verified_supporter_count == 5
    assert Event.objects.filter(topic=f"thread:{thread.pk}", type="case.created").exists()
    assert Notification.objects.filter(user=supporters[0], kind="case_update").exists()


def test_only_the_author_an_organizer_or_staff_escalate():
    thread = f.thread()
    kind = f.service_type()
    with pytest.raises(PermissionDenied):
        services.escalate_thread(
            thread, user=f.forum_member(thread.neighborhood), service_type=kind
        )
    filed = services.escalate_thread(thread, user=staff_of(kind), service_type=kind)
    assert filed.created and filed.case.filed_by is not None


# Support ------------------------------------------------------------------------------------


def test_me_too_adds_support_once_and_nearby_open_cases_are_found(philly):
    old_city = philly["Old City"]
    kind = f.service_type()
    case = f.case(old_city, kind=kind)
    neighbour = f.forum_member(old_city)
    services.support(case, user=neighbour)
    services.support(case, user=neighbour)
    case.refresh_from_db()
    assert case.supporter_count == 2 and CaseSupport.objects.filter(case=case).count() == 2
    near = services.nearby_open_cases(kind, case.lat + 0.0003, case.lon)
    assert [c for c, _ in near] == [case] and near[0][1] < 50
    assert services.nearby_open_cases(kind, case.lat + 0.01, case.lon) == []
    assert services.nearby_open_cases(f.service_type("other"), case.lat, case.lon) == []


# Working a case -----------------------------------------------------------------------------


def test_status_moves_notify_publish_and_closing_needs_a_resolution():
    case = f.case()
    staff = staff_of(case.service_type)
    other_department = f.CityStaffFactory().user
    with pytest.raises(PermissionDenied):
        services.change_status(case, user=other_department, status="acknowledged")
    services.change_status(case, user=staff, status="acknowledged", note="On our list")
    case.refresh_from_db()
    assert case.acknowledged_at and case.status == "acknowledged"
    with pytest.raises(ValidationError, match="date"):
        services.change_status(case, user=staff, status="scheduled")
    services.change_status(case, user=staff, status="scheduled", scheduled_for=date(2026, 12, 1))
    with pytest.raises(ValidationError, match="resolved"):
        services.change_status(case, user=staff, status="closed")
    with pytest.raises(ValidationError, match="whose"):
        services.change_status(case, user=staff, status="closed", resolution="not_city")
    services.change_status(case, user=staff, status="closed", resolution="fixed", note="Patched")
    case.refresh_from_db()
    assert case.closed_at and case.resolution == "fixed"
    kinds = list(Notification.objects.filter(user=case.reporter).values_list("kind", flat=True))
    assert kinds.count("case_update") == 3 and "case_survey" in kinds
    types = list(
        Event.objects.filter(topic=f"case:{case.tracking_number}").values_list("type", flat=True)
    )
    assert types == ["case.created", "case.updated", "case.updated", "case.updated"]
    with pytest.raises(ValidationError, match="reopen"):
        services.change_status(case, user=staff, status="in_progress")


def test_internal_notes_stay_with_staff():
    case = f.case()
    staff = staff_of(case.service_type)
    services.add_note(case, user=staff, text="Crew 4 says next week", public=False)
    services.add_note(case, user=staff, text="Scheduled for next week", public=True)
    assert [n.text for n in services.timeline(case) if n.kind == "note"] == [
        "Scheduled for next week"
    ]
    assert len(services.timeline(case, staff=True)) == 3
    assert not Notification.objects.filter(body__contains="Crew 4").exists()
    assert "Crew 4" not in str(list(Event.objects.values_list("data", flat=True)))


def test_assigning_stays_within_the_department():
    case = f.case()
    staff = staff_of(case.service_type)
    colleague = staff_of(case.service_type)
    services.assign(case, user=staff, assignee=colleague)
    assert Case.objects.get(pk=case.pk).assigned_to == colleague
    with pytest.raises(ValidationError):
        services.assign(case, user=staff, assignee=f.CityStaffFactory().user)


def test_a_closure_can_be_contested_within_the_window_and_goes_back_to_the_department():
    case = f.case()
    staff = staff_of(case.service_type)
    services.change_status(case, user=staff, status="closed", resolution="fixed")
    with pytest.raises(PermissionDenied):
        services.reopen(case, user=f.forum_member(case.neighborhood), comment="Not mine")
    services.reopen(case, user=case.reporter, comment="Still a hole there", photo=None)
    case.refresh_from_db()
    assert case.status == "open" and case.contested_count == 1 and case.closed_at is None
    assert Notification.objects.filter(user=staff, kind="case_contested").exists()
    services.change_status(case, user=staff, status="closed", resolution="fixed")
    Case.objects.filter(pk=case.pk).update(closed_at=timezone.now() - timedelta(days=30))
    case.refresh_from_db()
    with pytest.raises(PermissionDenied, match="within"):
        services.reopen(case, user=case.reporter, comment="Again")


def test_the_survey_takes_one_answer_per_reporter_or_supporter():
    case = f.case()
    supporter = f.forum_member(case.neighborhood)
    services.support(case, user=supporter)
    with pytest.raises(ValidationError, match="closed"):
        services.answer_survey(case, user=case.reporter, fixed=True, satisfaction=5)
    services.change_status(
        case, user=staff_of(case.service_type), status="closed", resolution="fixed"
    )
    case.refresh_from_db()
    services.answer_survey(case, user=case.reporter, fixed=True, satisfaction=4, comment="Quick")
    services.answer_survey(case, user=supporter, fixed=False, satisfaction=2)
    with pytest.raises(ValidationError, match="already"):
        services.answer_survey(case, user=supporter, fixed=True, satisfaction=5)
    with pytest.raises(ValidationError, match="1"):
        services.answer_survey(case, user=case.reporter, fixed=True, satisfaction=9)
    with pytest.raises(PermissionDenied):
        services.answer_survey(case, user=f.forum_member(), fixed=True, satisfaction=3)
    assert SurveyResponse.objects.filter(case=case).count() == 2


def test_merging_duplicates_carries_supporters_followers_and_threads_once(philly):
    old_city = philly["Old City"]
    kind = f.service_type()
    original = f.case(old_city, kind=kind)
    thread = f.thread(old_city, title="Same hole, different thread")
    duplicate = services.escalate_thread(thread, user=thread.author, service_type=kind).case
    both = f.forum_member(old_city)
    services.support(original, user=both)
    services.support(duplicate, user=both)
    only_dup = f.forum_member(old_city)
    services.support(duplicate, user=only_dup)

    staff = staff_of(kind)
    services.merge_cases(duplicate, original, user=staff, reason="Same pothole")
    original.refresh_from_db()
    duplicate.refresh_from_db()
    supporters = set(CaseSupport.objects.filter(case=original).values_list("user_id", flat=True))
    assert supporters == {original.reporter_id, both.pk, only_dup.pk, thread.author_id}
    assert original.supporter_count == 4
    assert thread in original.threads.all()
    assert duplicate.status == "closed" and duplicate.resolution == "duplicate"
    assert duplicate.duplicate_of == original
    assert services.open_case_for_thread(thread) == original
    assert CaseAudit.objects.filter(action="merged", actor=staff, reason="Same pothole").exists()


def test_location_history_finds_cases_and_threads_around_a_point(philly):
    old_city = philly["Old City"]
    lat, lon = f.inside(old_city)
    near_case = f.case(old_city, lat=lat, lon=lon)
    f.case(old_city, lat=lat + 0.01, lon=lon)
    thread = f.thread(old_city, lat=lat + 0.0002, lon=lon)
    history = services.location_history(lat, lon, radius_m=100)
    assert [c for c, _ in history.cases] == [near_case]
    assert [t for t, _ in history.threads] == [thread]
