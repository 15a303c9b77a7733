"""The case desk and the service catalogue in the Wagtail admin: who gets in, what the list,
its map and a case's page show, every action (through the services, into the audit log), bulk
changes, merging, the field and call-taker forms, the history of a location, Open311 keys, and
constant query counts."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from wagtail.test.utils.form_data import inline_formset, nested_form_data

from engagement import admin_views, services
from engagement.models import (
    Case,
    CaseAudit,
    CaseNote,
    CaseSupport,
    Holiday,
    Open311Key,
    ServiceType,
)
from engagement.open311 import keys
from forums import services as forums
from tests import factories as f
from tests.test_alert_pages import jpeg_bytes

pytestmark = pytest.mark.django_db

ADMIN = ["wagtailadmin.access_admin"]
DESK = "/admin/case-desk/"
MAP = "/admin/case-desk/map.geojson"
BULK = "/admin/case-desk/bulk/"
FIELD = "/admin/case-desk/field/"
CALL = "/admin/case-desk/call/"
HISTORY = "/admin/case-desk/location/"
AUDIT = "/admin/case-desk/audit/"
TYPES = "/admin/service-types/"
KEYS = "/admin/open311-keys/"
QUESTIONS = f.POTHOLE_QUESTIONS


@pytest.fixture
def streets():
    return f.DepartmentFactory(name="Streets Department")


@pytest.fixture
def sanitation():
    return f.DepartmentFactory(name="Sanitation")


@pytest.fixture
def pothole(streets):
    return f.service_type("pothole", department=streets, questions=QUESTIONS)


@pytest.fixture
def dumping(sanitation):
    return f.service_type("dumping", department=sanitation, name="Illegal dumping")


@pytest.fixture
def place():
    return f.NeighborhoodFactory(name="Alder Park")


@pytest.fixture
def streets_staff(streets):
    return f.CityStaffFactory(
        department=streets, user__permissions=ADMIN, user__first_name="Sam", user__last_name="Road"
    ).user


@pytest.fixture
def sanitation_staff(sanitation):
    return f.CityStaffFactory(department=sanitation, user__permissions=ADMIN).user


@pytest.fixture
def supervisor(sanitation):
    return f.CityStaffFactory(
        department=sanitation, is_supervisor=True, user__permissions=ADMIN
    ).user


def signed_in(client, user):
    client.force_login(user)
    return client


def page(client, url: str, data=None) -> str:
    response = client.get(url, data or {})
    assert response.status_code == 200, response
    return response.content.decode()


def case_url(case: Case) -> str:
    return f"/admin/case-desk/case/{case.tracking_number}/"


def act(client, case: Case, form: str, **fields):
    data = {"form": form, **{f"{form}-{name}": value for name, value in fields.items()}}
    return client.post(case_url(case), data)


def report(neighborhood, *, kind: ServiceType, **kwargs) -> Case:
    """A case filed on the web through the services (a pothole answers its required question)."""
    if kind.code == "pothole":
        kwargs.setdefault("answers", {"size": "small"})
    return f.case(neighborhood, kind=kind, **kwargs)


def fast_cases(kind: ServiceType, neighborhood, count: int, **fields) -> list[Case]:
    """``count`` open cases of ``kind`` inside ``neighborhood``, written directly (fast)."""
    lat, lon = f.inside(neighborhood)
    now = timezone.now()
    start = Case.objects.count()
    return Case.objects.bulk_create(
        Case(
            tracking_number=f"26-9{start + n:05d}",
            service_type=kind,
            department=kind.department,
            description=f"Case {n}",
            lat=lat,
            lon=lon,
            neighborhood=neighborhood,
            created_at=now - timedelta(minutes=n),
            expected_at=now + timedelta(days=3),
            **fields,
        )
        for n in range(count)
    )


# Who gets in ----------------------------------------------------------------------------------


def test_staff_see_their_departments_cases_not_another_departments(
    client, streets_staff, pothole, dumping, place
):
    ours = report(place, kind=pothole, description="Pothole on Alder Street")
    theirs = report(place, kind=dumping, description="Mattresses in the alley")
    signed_in(client, streets_staff)
    listing = page(client, DESK)
    assert ours.tracking_number in listing and theirs.tracking_number not in listing
    points = client.get(MAP).json()["features"]
    assert [p["properties"]["tracking_number"] for p in points] == [ours.tracking_number]
    assert client.get(case_url(ours)).status_code == 200
    assert client.get(case_url(theirs)).status_code == 302  # refused: back to the dashboard
    act(client, theirs, "note", text="Looking into it", public="on")
    assert not CaseNote.objects.filter(case=theirs, kind="note").exists()


def test_supervisors_see_every_department(client, supervisor, pothole, dumping, place):
    cases = [report(place, kind=pothole), report(place, kind=dumping)]
    listing = page(signed_in(client, supervisor), DESK)
    assert all(case.tracking_number in listing for case in cases)
    assert client.get(case_url(cases[0])).status_code == 200


def test_residents_get_no_access(client, place, pothole):
    case = report(place, kind=pothole)
    resident = f.forum_member(place)
    signed_in(client, resident)
    assert client.get(DESK).status_code == 302  # to the admin's sign-in
    moderator = f.forum_member(place, role="moderator", user__permissions=ADMIN)
    signed_in(client, moderator)
    for url in (
        DESK,
        MAP,
        case_url(case),
        FIELD,
        CALL,
        HISTORY,
        AUDIT,
        "/admin/case-desk/metrics/",
    ):
        response = client.get(url)
        assert response.status_code == 302 and response.url == "/admin/", url
    assert DESK not in page(client, "/admin/")  # no menu either
    response = client.post(BULK, {"bulk-cases": [case.pk], "bulk-status": "acknowledged"})
    assert response.status_code == 302
    case.refresh_from_db()
    assert case.status == "open"


def test_the_menu_and_a_dashboard_panel_appear_to_staff(client, streets_staff, pothole, place):
    case = report(place, kind=pothole)
    Case.objects.filter(pk=case.pk).update(expected_at=timezone.now() - timedelta(hours=1))
    home = page(signed_in(client, streets_staff), "/admin/")
    assert DESK in home and FIELD in home and CALL in home and HISTORY in home
    assert "1 open case" in home and "1 overdue" in home


# The list and its map -------------------------------------------------------------------------


def test_list_filters_and_search(client, streets_staff, pothole, streets, place):
    elsewhere = f.NeighborhoodFactory(name="Birch Hill")
    streetlight = f.service_type("streetlight", department=streets)
    plain = report(place, kind=pothole)
    late = report(place, kind=pothole, answers={"size": "large"})
    Case.objects.filter(pk=late.pk).update(expected_at=timezone.now() - timedelta(days=1))
    dark = report(elsewhere, kind=streetlight)
    services.change_status(dark, user=streets_staff, status="acknowledged")
    phoned = services.file_case(
        service_type=streetlight,
        description="Caller says the lamp is out",
        address="12 Birch Street",
        channel="phone",
        filed_by=streets_staff,
        contact_phone="215-555-0100",
    ).case
    closed = report(place, kind=pothole)
    services.change_status(closed, user=streets_staff, status="closed", resolution="fixed")
    Case.objects.filter(pk=closed.pk).update(contested_count=1)
    services.assign(plain, user=streets_staff, assignee=streets_staff)
    signed_in(client, streets_staff)
    every = {plain, late, dark, phoned, closed}

    def shown(**query) -> set[Case]:
        listing = page(client, DESK, query)
        return {case for case in every if f">{case.tracking_number}<" in listing}

    assert shown() == every
    assert shown(status="open") == {plain, late, dark, phoned}
    assert shown(status="acknowledged") == {dark}
    assert shown(service_type=streetlight.pk) == {dark, phoned}
    assert shown(neighborhood=elsewhere.pk) == {dark}
    assert shown(overdue="true") == {late}
    assert shown(contested="true") == {closed}
    assert shown(channel="phone") == {phoned}
    assert shown(assigned="me") == {plain}
    assert shown(q=late.tracking_number) == {late}
    assert shown(q="Birch Street") == {phoned}
    assert shown(q="lamp is OUT") == {phoned}  # the description
    assert shown(q="Birch Hill") == {dark}  # the neighborhood
    assert 'class="case-desk-row case-desk-row--overdue"' in page(client, DESK, {"overdue": "true"})


def test_list_sorts_by_filing_expected_date_and_supporters(client, streets_staff, pothole, place):
    first, second, third = fast_cases(pothole, place, 3)
    now = timezone.now()
    Case.objects.filter(pk=first.pk).update(expected_at=now + timedelta(days=9), supporter_count=2)
    Case.objects.filter(pk=second.pk).update(expected_at=now + timedelta(days=1), supporter_count=7)
    Case.objects.filter(pk=third.pk).update(expected_at=now + timedelta(days=5), supporter_count=0)
    signed_in(client, streets_staff)

    def order(**query) -> list[Case]:
        listing = page(client, DESK, query)
        return sorted([first, second, third], key=lambda c: listing.index(f">{c.tracking_number}<"))

    assert order() == [first, second, third]  # newest first
    assert order(ordering="created_at") == [third, second, first]
    assert order(ordering="expected_at") == [second, third, first]
    assert order(ordering="-supporter_count") == [second, first, third]


def test_list_pages_by_fifty(client, streets_staff, pothole, place):
    fast_cases(pothole, place, 51)
    signed_in(client, streets_staff)
    assert page(client, DESK).count('class="case-desk-row') == 50
    assert page(client, DESK, {"p": 2}).count('class="case-desk-row') == 1


def test_map_follows_the_filters_and_is_limited(client, streets_staff, pothole, place, monkeypatch):
    cases = fast_cases(pothole, place, 3)
    Case.objects.filter(pk=cases[0].pk).update(status="closed", closed_at=timezone.now())
    signed_in(client, streets_staff)
    data = client.get(MAP, {"status": "open"}).json()
    assert {p["properties"]["tracking_number"] for p in data["features"]} == {
        c.tracking_number for c in cases[1:]
    }
    point = data["features"][0]
    assert point["geometry"]["type"] == "Point" and point["properties"]["url"].startswith(DESK)
    monkeypatch.setattr(admin_views, "MAP_LIMIT", 2)
    data = client.get(MAP).json()
    assert len(data["features"]) == 2 and data["truncated"] is True


def _queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


@pytest.mark.parametrize("who", ["streets_staff", "supervisor"])
def test_list_query_count_does_not_grow_with_rows(client, request, pothole, place, who):
    user = request.getfixturevalue(who)
    assignee = f.CityStaffFactory(department=pothole.department).user
    signed_in(client, user)
    fast_cases(pothole, place, 3, assigned_to=assignee)
    few = _queries(client, DESK), _queries(client, MAP)
    fast_cases(pothole, f.NeighborhoodFactory(), 27, assigned_to=assignee)
    many = _queries(client, DESK), _queries(client, MAP)
    assert few == many
    assert page(client, DESK).count('class="case-desk-row') == 30


# One case -------------------------------------------------------------------------------------


def test_case_page_shows_every_detail_to_staff(client, streets_staff, pothole, place):
    post = f.thread(place, title="Crater on Alder Street")
    filed = services.escalate_thread(
        post,
        user=post.author,
        service_type=pothole,
        description="A crater in the bike lane",
        answers={"size": "large", "lanes": ["bike", "car"]},
    ).case
    services.add_note(filed, user=streets_staff, text="Crew booked for Tuesday", public=False)
    services.support(filed, user=f.forum_member(place))
    phoned = services.file_case(
        service_type=pothole,
        description="Caller reports a pothole",
        address="5 Alder Street",
        media_urls=["https://photos.example.org/p.jpg"],
        channel="phone",
        filed_by=streets_staff,
        contact_name="Pat Caller",
        contact_phone="215-555-0199",
        contact_email="pat@example.org",
        answers={"size": "small"},
    ).case
    signed_in(client, streets_staff)
    shown = page(client, case_url(filed))
    assert "A crater in the bike lane" in shown
    assert "Larger than a plate" in shown and "Bike lane, Car lane" in shown  # answer labels
    assert "Crew booked for Tuesday" in shown and "Internal" in shown
    assert post.author.email in shown  # the reporter, for staff
    assert "Crater on Alder Street" in shown and post.get_absolute_url() in shown
    assert "2 (" in shown  # supporters
    assert "Worked here, on this case desk" in shown
    assert "Filed" in shown and "Escalated from a thread" in shown  # the audit log
    shown = page(client, case_url(phoned))
    assert "Pat Caller" in shown and "215-555-0199" in shown and "pat@example.org" in shown
    assert "https://photos.example.org/p.jpg" in shown
    assert streets_staff.email in shown  # filed by


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"status": "acknowledged", "note": "On our list", "public": "on"}, "acknowledged"),
        ({"status": "in_progress", "note": "Crew on site"}, "in_progress"),
        (
            {
                "status": "scheduled",
                "note": "Paving",
                "public": "on",
                "scheduled_for": "2030-05-04",
            },
            "scheduled",
        ),
        (
            {"status": "closed", "note": "Filled", "public": "on", "resolution": "fixed"},
            "closed",
        ),
        (
            {
                "status": "closed",
                "note": "PECO owns it",
                "resolution": "not_city",
                "responsible_party": "PECO",
            },
            "closed",
        ),
    ],
)
def test_status_changes_go_through_the_services_into_the_audit_log(
    client, streets_staff, pothole, place, fields, expected
):
    case = report(place, kind=pothole)
    response = act(signed_in(client, streets_staff), case, "status", **fields)
    assert response.status_code == 302 and response.url == case_url(case)
    case.refresh_from_db()
    assert case.status == expected
    entry = CaseAudit.objects.get(case=case, action="status")
    assert (entry.actor, entry.reason) == (streets_staff, fields["note"])
    note = CaseNote.objects.get(case=case, kind="status")
    assert note.is_public == ("public" in fields)
    if expected == "closed":
        assert case.resolution == fields["resolution"] and case.closed_at is not None
        assert case.responsible_party == fields.get("responsible_party", "")


def test_refusals_of_the_services_are_shown_on_the_form(client, streets_staff, pothole, place):
    case = report(place, kind=pothole)
    signed_in(client, streets_staff)
    response = act(client, case, "status", status="closed", note="Done")
    assert response.status_code == 200
    assert "Choose how the case was resolved." in response.content.decode()
    response = act(client, case, "status", status="scheduled")
    assert "Give the date the work is scheduled." in response.content.decode()
    response = act(client, case, "note", text=" ")
    assert response.status_code == 200
    case.refresh_from_db()
    assert case.status == "open"
    assert not CaseAudit.objects.filter(case=case).exclude(action="filed").exists()


def test_internal_and_public_notes(client, streets_staff, pothole, place):
    case = report(place, kind=pothole)
    signed_in(client, streets_staff)
    assert act(client, case, "note", text="Check the gas main first").status_code == 302
    assert act(client, case, "note", text="Crew coming Monday", public="on").status_code == 302
    notes = CaseNote.objects.filter(case=case, kind="note").order_by("id")
    assert [(n.text, n.is_public, n.author) for n in notes] == [
        ("Check the gas main first", False, streets_staff),
        ("Crew coming Monday", True, streets_staff),
    ]
    audit = CaseAudit.objects.filter(case=case, action="note").order_by("id")
    assert [(a.actor, a.reason, a.data["public"]) for a in audit] == [
        (streets_staff, "Check the gas main first", False),
        (streets_staff, "Crew coming Monday", True),
    ]
    case.refresh_from_db()
    assert case.updated_at >= notes[1].created_at


def test_assign_to_a_person_of_the_department(
    client, streets_staff, sanitation_staff, pothole, place
):
    case = report(place, kind=pothole)
    colleague = f.CityStaffFactory(department=pothole.department, user__first_name="Cora").user
    signed_in(client, streets_staff)
    assert "Cora" in page(client, case_url(case))
    response = act(client, case, "assign", assignee=colleague.pk, reason="Her district")
    assert response.status_code == 302
    case.refresh_from_db()
    assert case.assigned_to == colleague
    entry = CaseAudit.objects.get(case=case, action="assigned")
    assert (entry.actor, entry.reason, entry.data) == (
        streets_staff,
        "Her district",
        {"assignee": colleague.pk},
    )
    refused = act(client, case, "assign", assignee=sanitation_staff.pk, reason="Wrong")
    assert refused.status_code == 200 and "Select a valid choice" in refused.content.decode()
    assert act(client, case, "assign", assignee="", reason="Back to the pool").status_code == 302
    case.refresh_from_db()
    assert case.assigned_to is None


def test_merge_by_tracking_number_carries_supporters_over_once(
    client, streets_staff, pothole, place
):
    original = report(place, kind=pothole)
    duplicate = report(place, kind=pothole, answers={"size": "large"})
    both, only_duplicate = f.forum_member(place), f.forum_member(place)
    for person in (both, only_duplicate):
        services.support(duplicate, user=person)
    services.support(original, user=both)
    signed_in(client, streets_staff)
    missing = act(client, duplicate, "merge", original="26-999999", reason="Same hole")
    assert "There is no case 26-999999." in missing.content.decode()
    itself = act(client, duplicate, "merge", original=duplicate.tracking_number, reason="Same")
    assert "cannot be merged into itself" in itself.content.decode()
    response = act(
        client, duplicate, "merge", original=original.tracking_number, reason="Same hole"
    )
    assert response.status_code == 302 and response.url == case_url(original)
    duplicate.refresh_from_db()
    original.refresh_from_db()
    assert duplicate.status == "closed" and duplicate.resolution == "duplicate"
    assert duplicate.duplicate_of == original
    supporters = set(CaseSupport.objects.filter(case=original).values_list("user", flat=True))
    assert supporters == {original.reporter_id, duplicate.reporter_id, both.pk, only_duplicate.pk}
    assert original.supporter_count == 4
    entry = CaseAudit.objects.get(case=original, action="merged")
    assert (entry.actor, entry.reason, entry.data) == (
        streets_staff,
        "Same hole",
        {"duplicate": duplicate.tracking_number},
    )
    assert CaseAudit.objects.get(case=duplicate, action="status").actor == streets_staff
    assert duplicate.tracking_number in page(client, case_url(original))


def test_actions_need_the_csrf_token(streets_staff, pothole, place):
    case = report(place, kind=pothole)
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(streets_staff)
    assert act(browser, case, "status", status="acknowledged").status_code == 403
    assert (
        browser.post(BULK, {"bulk-cases": [case.pk], "bulk-status": "acknowledged"}).status_code
        == 403
    )
    case.refresh_from_db()
    assert case.status == "open"


# Bulk changes ---------------------------------------------------------------------------------


def test_bulk_change_reports_the_case_that_failed(client, streets_staff, pothole, place):
    first, second, closed = fast_cases(pothole, place, 3)
    services.change_status(closed, user=streets_staff, status="closed", resolution="fixed")
    signed_in(client, streets_staff)
    response = client.post(
        BULK,
        {
            "bulk-cases": [first.pk, second.pk, closed.pk],
            "bulk-status": "acknowledged",
            "bulk-note": "Seen by the district crew",
            "bulk-public": "on",
            "next": f"{DESK}?status=open",
        },
        follow=True,
    )
    assert response.redirect_chain[-1][0] == f"{DESK}?status=open"
    shown = response.content.decode()
    assert f"2 cases now Acknowledged: {first.tracking_number}, {second.tracking_number}." in shown
    assert f"1 case was not changed. {closed.tracking_number}: This case is closed" in shown
    for case in (first, second):
        case.refresh_from_db()
        assert case.status == "acknowledged"
        entry = CaseAudit.objects.get(case=case, action="status")
        assert (entry.actor, entry.reason) == (streets_staff, "Seen by the district crew")
    closed.refresh_from_db()
    assert closed.status == "closed"


def test_bulk_change_is_limited_to_the_desk_and_needs_a_selection(
    client, streets_staff, pothole, dumping, place
):
    ours = fast_cases(pothole, place, 1)[0]
    theirs = fast_cases(dumping, place, 1)[0]
    signed_in(client, streets_staff)
    response = client.post(
        BULK, {"bulk-cases": [ours.pk, theirs.pk], "bulk-status": "acknowledged"}, follow=True
    )
    assert "Nothing was changed." in response.content.decode()
    response = client.post(BULK, {"bulk-status": "acknowledged"}, follow=True)
    assert "Nothing was changed. Select at least one case." in response.content.decode()
    assert set(Case.objects.values_list("status", flat=True)) == {"open"}


# Filing from the desk -------------------------------------------------------------------------


def test_the_field_form_files_a_case_at_the_staff_members_position(
    client, streets_staff, pothole, place
):
    signed_in(client, streets_staff)
    choose = page(client, FIELD)
    assert "?type=pothole" in choose and "Streets Department" in choose
    form = page(client, FIELD, {"type": "pothole"})
    assert "How big is it?" in form and "Use my position" in form
    key = form.split('name="idempotency_key" value="')[1].split('"')[0]
    lat, lon = f.inside(place)
    data = {
        "idempotency_key": key,
        "lat": lat,
        "lon": lon,
        "description": "Deep pothole at the corner",
        "answer_size": "large",
        "answer_lanes": ["bike"],
    }
    photo = SimpleUploadedFile("p.jpg", jpeg_bytes(), content_type="image/jpeg")
    response = client.post(f"{FIELD}?type=pothole", {**data, "photo": photo})
    case = Case.objects.get()
    assert case.photos.get().image.name.startswith("cases/")
    assert response.status_code == 302 and response.url == case_url(case)
    assert (case.channel, case.reporter, case.filed_by) == ("field", None, streets_staff)
    assert case.neighborhood == place and case.answers == {"size": "large", "lanes": ["bike"]}
    assert client.post(f"{FIELD}?type=pothole", data).status_code == 302  # a double submission
    assert Case.objects.count() == 1
    audit = CaseAudit.objects.get(case=case, action="filed")
    assert audit.actor == streets_staff and audit.data["channel"] == "field"


def test_the_field_form_shows_what_is_missing(client, streets_staff, pothole):
    signed_in(client, streets_staff)
    response = client.post(
        f"{FIELD}?type=pothole",
        {"idempotency_key": "k1", "description": "Pothole", "answer_lanes": ["tram"]},
    )
    shown = response.content.decode()
    assert response.status_code == 200
    assert "Answer “How big is it?”." in shown  # the required list question, by name
    assert 'value=""' not in shown.split("How big is it?")[1].split("Which lanes?")[0]
    assert "Select a valid choice" in shown
    response = client.post(
        f"{FIELD}?type=pothole",
        {"idempotency_key": "k1", "description": "Pothole", "answer_size": "small"},
    )
    assert "Put a pin on the map or give an address." in response.content.decode()
    assert not Case.objects.exists()
    assert client.get(FIELD, {"type": "no-such-type"}).status_code == 404


def test_the_call_taker_form_files_a_phone_case_for_a_caller(client, streets_staff, pothole):
    signed_in(client, streets_staff)
    data = {
        "idempotency_key": "call-1",
        "address": "1200 Alder Street",
        "description": "Caller reports a pothole outside their house",
        "answer_size": "small",
        "contact_name": "Pat Caller",
    }
    refused = client.post(f"{CALL}?type=pothole", data)
    assert "Take a phone number or an e-mail address" in refused.content.decode()
    response = client.post(f"{CALL}?type=pothole", {**data, "contact_phone": "215-555-0123"})
    case = Case.objects.get()
    assert response.status_code == 302 and response.url == case_url(case)
    assert (case.channel, case.filed_by, case.reporter) == ("phone", streets_staff, None)
    assert (case.contact_name, case.contact_phone) == ("Pat Caller", "215-555-0123")
    assert case.address == "1200 Alder Street" and case.lat is None


def test_filing_a_type_of_another_department_returns_to_the_form(
    client, streets_staff, dumping, place
):
    signed_in(client, streets_staff)
    lat, lon = f.inside(place)
    response = client.post(
        f"{FIELD}?type=dumping",
        {"idempotency_key": "x", "lat": lat, "lon": lon, "description": "Tyres dumped"},
        follow=True,
    )
    case = Case.objects.get()
    assert case.department == dumping.department
    assert f"Case {case.tracking_number} filed; Sanitation will handle it." in (
        response.content.decode()
    )


# The history of a location --------------------------------------------------------------------


def test_location_history_from_a_case_and_from_a_point(
    client, streets_staff, pothole, dumping, place
):
    here = report(place, kind=pothole)
    near = report(place, kind=dumping, lat=here.lat + 0.0003, lon=here.lon)  # about 33 m
    far = report(place, kind=pothole, lat=here.lat + 0.005, lon=here.lon)
    post = f.thread(place, title="Water pooling here", lat=here.lat, lon=here.lon + 0.0002)
    signed_in(client, streets_staff)
    assert f"{HISTORY}?case={here.tracking_number}" in page(client, case_url(here))
    shown = page(client, HISTORY, {"case": here.tracking_number})
    assert here.tracking_number in shown and near.tracking_number in shown
    assert far.tracking_number not in shown
    assert "Water pooling here" in shown and post.get_absolute_url() in shown
    assert case_url(here) in shown and case_url(near) not in shown  # only workable cases link in
    shown = page(client, HISTORY, {"lat": here.lat, "lon": here.lon, "radius": 1000})
    assert far.tracking_number in shown
    assert "Ensure this value is less than or equal to 90" in page(
        client, HISTORY, {"lat": 91, "lon": 0}
    )


# The audit log --------------------------------------------------------------------------------


def test_audit_log_is_scoped_and_exports(
    client, streets_staff, supervisor, pothole, dumping, place
):
    ours = report(place, kind=pothole)
    theirs = report(place, kind=dumping)
    services.change_status(ours, user=streets_staff, status="acknowledged", note="Ours seen")
    services.change_status(theirs, user=supervisor, status="acknowledged", note="Theirs seen")
    signed_in(client, streets_staff)
    shown = page(client, AUDIT)
    assert "Ours seen" in shown and "Theirs seen" not in shown
    assert "Ours seen" not in page(client, AUDIT, {"action": "filed"})
    export = client.get(AUDIT, {"export": "csv"})
    assert b"Ours seen" in b"".join(export.streaming_content)
    assert "Theirs seen" in page(signed_in(client, supervisor), AUDIT)


# The catalogue --------------------------------------------------------------------------------


def catalogue_editor(department):
    codenames = [
        f"{action}_{model}"
        for model in ("servicetype", "holiday", "open311key")
        for action in ("add", "change", "delete", "view")
    ]
    user = f.CityStaffFactory(department=department, user__permissions=ADMIN).user
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="engagement", codename__in=codenames)
    )
    return user


def type_form(questions: list[dict], **fields) -> dict:
    data = {
        "code": "graffiti",
        "name": "Graffiti",
        "description": "Paint on walls",
        "group": "Clean streets",
        "keywords": "tag, paint",
        "sla_working_days": "5",
        "forum_tags": "graffiti",
        "is_active": "on",
        "sort_order": "10",
        "questions": inline_formset(questions),
        **fields,
    }
    return nested_form_data(data)


def question(**fields) -> dict:
    return {
        "code": "surface",
        "prompt": "Where is it?",
        "datatype": "singlevaluelist",
        "datatype_description": "",
        "variable": "on",
        "values": "wall|A wall\nvehicle|A vehicle",
        **fields,
    }


def test_a_service_type_is_created_with_its_questions_and_checked(client, sanitation):
    editor = catalogue_editor(sanitation)
    signed_in(client, editor)
    assert "Questions" in page(client, f"{TYPES}new/")

    def refused(questions: list[dict], **fields) -> str:
        response = client.post(
            f"{TYPES}new/", type_form(questions, department=sanitation.pk, **fields)
        )
        assert response.status_code == 200
        assert not ServiceType.objects.exists()
        return response.content.decode()

    assert "List the choices" in refused([question(values="")])
    assert "is used twice" in refused([question(values="wall|A wall\nwall|Another wall")])
    assert "start with a key" in refused([question(values="|No key")])
    assert "Only pick-one and pick-several questions have choices" in refused(
        [question(datatype="string")]
    )
    assert "Use letters, digits" in refused([question(code="bad code!")])
    assert "Another question of this type has the code" in refused(
        [question(), question(prompt="Again")]
    )
    assert "Use letters, digits" in refused([question()], code="graffiti removal")

    response = client.post(
        f"{TYPES}new/",
        type_form(
            [
                question(),
                question(code="offensive", prompt="Is it offensive?", datatype="string", values=""),
                question(
                    code="colours",
                    prompt="Colours",
                    datatype="multivaluelist",
                    values="red|Red\nblue | Blue\n\n",
                    required="on",
                ),
            ],
            department=sanitation.pk,
        ),
    )
    assert response.status_code == 302
    kind = ServiceType.objects.get(code="graffiti")
    assert kind.department == sanitation and kind.sla_working_days == 5
    assert [(q.code, q.datatype, q.required) for q in services.questions_of(kind)] == [
        ("surface", "singlevaluelist", False),
        ("offensive", "string", False),
        ("colours", "multivaluelist", True),
    ]
    assert kind.questions.get(code="colours").value_list() == [("red", "Red"), ("blue", "Blue")]
    assert "Graffiti" in page(client, TYPES)


def test_catalogue_needs_its_permissions(client, streets_staff, pothole, place):
    signed_in(client, streets_staff)
    assert client.get(TYPES).status_code == 302
    assert client.get(KEYS).status_code == 302
    assert TYPES not in page(client, "/admin/")
    editor = catalogue_editor(pothole.department)
    signed_in(client, editor)
    assert TYPES in page(client, "/admin/")
    report(place, kind=pothole)
    confirm = page(client, f"{TYPES}delete/{pothole.pk}/")
    assert "1 case was filed as this type, so it cannot be deleted." in confirm
    assert client.post(f"{TYPES}delete/{pothole.pk}/").status_code == 302
    assert ServiceType.objects.filter(pk=pothole.pk).exists()


def test_holidays_are_edited_in_the_catalogue(client, streets):
    signed_in(client, catalogue_editor(streets))
    response = client.post("/admin/holidays/new/", {"date": "2026-12-25", "name": "Christmas Day"})
    assert response.status_code == 302
    assert Holiday.objects.get().name == "Christmas Day"
    assert "Christmas Day" in page(client, "/admin/holidays/")


def test_an_open311_key_is_shown_once_then_revoked(client, streets):
    editor = catalogue_editor(streets)
    signed_in(client, editor)
    response = client.post(f"{KEYS}new/", {"name": "City 311 app", "requests_per_minute": 60})
    assert response.status_code == 200
    shown = response.content.decode()
    secret = shown.split('id="open311-key">')[1].split("<")[0]
    key = Open311Key.objects.get()
    assert keys.authenticate(secret) == key
    assert (key.name, key.requests_per_minute, key.created_by) == ("City 311 app", 60, editor)
    assert secret not in page(client, KEYS) and secret not in page(client, f"{KEYS}edit/{key.pk}/")
    assert key.prefix in page(client, KEYS)
    duplicate = client.post(f"{KEYS}new/", {"name": "City 311 app", "requests_per_minute": 60})
    assert duplicate.status_code == 200 and Open311Key.objects.count() == 1
    assert f"{KEYS}revoke/{key.pk}/" in page(client, KEYS)
    assert f"{KEYS}revoke/{key.pk}/" in page(client, f"{KEYS}edit/{key.pk}/")
    assert "Clients using the key" in page(client, f"{KEYS}revoke/{key.pk}/")
    assert client.post(f"{KEYS}revoke/{key.pk}/").status_code == 302
    key.refresh_from_db()
    assert not key.is_active and keys.authenticate(secret) is None
    assert f"{KEYS}revoke/{key.pk}/" not in page(client, KEYS)
    assert Open311Key.objects.filter(pk=key.pk).exists()


def test_thread_support_counts_on_the_desk(client, streets_staff, pothole, place):
    post = f.thread(place)
    case = services.escalate_thread(
        post, user=post.author, service_type=pothole, answers={"size": "small"}
    ).case
    forums.vote(f.forum_member(place), thread=post)
    signed_in(client, streets_staff)
    listing = page(client, DESK)
    row = listing.split(f">{case.tracking_number}<")[1].split("</tr>")[0]
    assert '<td class="case-desk-number">2</td>' in row
    assert json.loads(client.get(MAP).content)["features"][0]["properties"]["status"] == "open"
