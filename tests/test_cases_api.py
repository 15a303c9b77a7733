"""The JSON API of 311 cases: the catalogue, filing, escalation, support, surveys, staff work."""

from __future__ import annotations

import json
from datetime import timedelta
from functools import cached_property

import pytest
from django.utils import timezone
from drf_spectacular.drainage import GENERATOR_STATS
from rest_framework.test import APIClient

from engagement import services
from engagement.models import Case, CaseNote
from neighborhoods.models import Membership
from tests.factories import (
    POTHOLE_QUESTIONS,
    CityStaffFactory,
    DepartmentFactory,
    NeighborhoodFactory,
    UserFactory,
    forum_member,
    inside,
    service_type,
    thread,
)
from tests.factories import case as file_case
from tests.test_forum_services import jpeg
from tests.test_forums_api import error_of

pytestmark = pytest.mark.django_db

CASES = "/api/v1/cases/"
NEARBY = "/api/v1/cases/nearby/"
SERVICE_TYPES = "/api/v1/service-types/"
QUESTIONS = POTHOLE_QUESTIONS
PRIVATE = ("Ms. Caller", "caller@example.org", "215-555-0100")


def case_url(case: Case, action: str | None = None) -> str:
    return f"{CASES}{case.tracking_number}/" + (f"{action}/" if action else "")


def escalate_url(topic) -> str:
    return f"/api/v1/threads/{topic.pk}/escalate/"


def filing(where, **overrides) -> dict:
    lat, lon = inside(where)
    return {
        "service_type": "pothole",
        "description": "A deep pothole in the bike lane.",
        "lat": lat,
        "lon": lon,
        "answers": {"size": "large", "lanes": ["bike"]},
        **overrides,
    }


def pothole(**kwargs):
    department = DepartmentFactory(name="Streets Department")
    kwargs.setdefault("keywords", "pothole, hole")
    kwargs.setdefault("forum_tags", "potholes")
    return service_type("pothole", department=department, questions=QUESTIONS, **kwargs)


@pytest.fixture
def place():
    return NeighborhoodFactory(name="Fishtown")


@pytest.fixture
def kind():
    return pothole()


@pytest.fixture
def reporter(place):
    return forum_member(place)


@pytest.fixture
def case(place, kind, reporter):
    return file_case(place, kind=kind, reporter=reporter, answers={"size": "large"})


@pytest.fixture
def staff(kind):
    return CityStaffFactory(department=kind.department).user


def tracking_numbers(response) -> set[str]:
    assert response.status_code == 200, response.content
    return {c["tracking_number"] for c in response.json()["results"]}


# Who may do what ----------------------------------------------------------------------------

PERSONAS = [
    "anonymous",
    "resident",
    "unverified",
    "thread_author",
    "organizer",
    "other_resident",
    "department_staff",
    "other_department_staff",
    "supervisor",
]
VERIFIED = set(PERSONAS) - {"anonymous", "unverified"}
STAFF = {"department_staff", "other_department_staff", "supervisor"}
WORKERS = {"department_staff", "supervisor"}

# action: (status on success, personas allowed); the others get 401 (anonymous) or 403.
ALLOWED = {
    "list": (200, set(PERSONAS)),
    "read": (200, set(PERSONAS)),
    "file": (201, VERIFIED),
    "escalate": (201, {"thread_author", "organizer"} | STAFF),
    "support": (200, VERIFIED),
    "status": (200, WORKERS),
    "note": (201, WORKERS),
    "assign": (200, WORKERS),
    "survey": (201, {"resident"}),
}


class World:
    """A case reported by ``resident`` in Fishtown and a thread there, made when first asked."""

    def __init__(self) -> None:
        self.place = NeighborhoodFactory(name="Fishtown")
        self.kind = pothole()

    @cached_property
    def reporter(self):
        return forum_member(self.place)

    @cached_property
    def case(self) -> Case:
        return file_case(
            self.place, kind=self.kind, reporter=self.reporter, answers={"size": "small"}
        )

    @cached_property
    def topic(self):
        return thread(self.place, title="Huge pothole on Front Street")

    def colleague(self):
        return CityStaffFactory(department=self.kind.department).user

    def persona(self, name: str):
        return {
            "anonymous": lambda: None,
            "resident": lambda: self.reporter,
            "unverified": UserFactory,
            "thread_author": lambda: self.topic.author,
            "organizer": lambda: forum_member(self.place, role=Membership.Role.ORGANIZER),
            "other_resident": lambda: forum_member(self.place),
            "department_staff": self.colleague,
            "other_department_staff": lambda: CityStaffFactory().user,
            "supervisor": lambda: CityStaffFactory(is_supervisor=True).user,
        }[name]()


def perform(action: str, client: APIClient, world: World):
    if action == "list":
        return client.get(CASES)
    if action == "file":
        return client.post(CASES, filing(world.place), format="json")
    if action == "escalate":
        body = {"service_type": "pothole", "answers": {"size": "small"}}
        return client.post(escalate_url(world.topic), body, format="json")
    case = world.case
    if action == "read":
        return client.get(case_url(case))
    if action == "support":
        return client.post(case_url(case, "support"))
    if action == "status":
        body = {"status": "acknowledged", "note": "Seen"}
        return client.post(case_url(case, "status"), body, format="json")
    if action == "note":
        body = {"text": "Crew booked", "public": False}
        return client.post(case_url(case, "notes"), body, format="json")
    if action == "assign":
        body = {"assignee": world.colleague().pk}
        return client.post(case_url(case, "assign"), body, format="json")
    assert action == "survey"
    services.change_status(case, user=world.colleague(), status="closed", resolution="fixed")
    body = {"fixed": True, "satisfaction": 4}
    return client.post(case_url(case, "survey"), body, format="json")


@pytest.mark.parametrize("action", list(ALLOWED))
@pytest.mark.parametrize("who", PERSONAS)
def test_permission_matrix(action, who, api, api_as):
    world = World()
    user = world.persona(who)
    success, allowed = ALLOWED[action]
    expected = success if who in allowed else 401 if who == "anonymous" else 403

    response = perform(action, api if user is None else api_as(user), world)

    assert response.status_code == expected, response.content
    if expected >= 400:
        assert response.json()["error"]["code"] in ("not_authenticated", "permission_denied")


def test_a_refusal_says_what_is_missing(api_as, place, case):
    unverified = api_as(UserFactory())
    neighbour = api_as(forum_member(place))

    assert (
        "Verify" in error_of(unverified.post(CASES, filing(place), format="json"), 403)["message"]
    )
    status = neighbour.post(case_url(case, "status"), {"status": "closed"}, format="json")
    assert "Streets Department" in error_of(status, 403)["message"]


# Privacy ------------------------------------------------------------------------------------


def test_identity_and_contact_details_reach_only_staff_of_the_department(
    api, api_as, place, kind, staff, reporter
):
    lat, lon = inside(place)
    phoned = services.file_case(
        service_type=kind,
        channel="phone",
        filed_by=staff,
        lat=lat,
        lon=lon,
        description="Caller says the hole is deep",
        answers={"size": "large"},
        contact_name="Ms. Caller",
        contact_email="caller@example.org",
        contact_phone="215-555-0100",
    ).case
    online = file_case(place, kind=kind, reporter=reporter, answers={"size": "small"})
    outsiders = [api, api_as(forum_member(place)), api_as(CityStaffFactory().user)]

    for client in outsiders:
        listed = client.get(CASES).json()["results"]
        details = [client.get(case_url(c)).json() for c in (phoned, online)]
        text = json.dumps([listed, details])
        for private in (*PRIVATE, reporter.email, reporter.username):
            assert private not in text
        assert all("staff" not in item for item in [*listed, *details])

    own = api_as(staff).get(case_url(phoned)).json()
    assert own["staff"]["contact_phone"] == "215-555-0100"
    assert own["staff"]["filed_by"] == staff.pk and own["staff"]["reporter"] is None
    assert own["viewer"]["can_work"] is True
    listed = api_as(staff).get(CASES).json()["results"]
    assert {item["staff"]["reporter"] for item in listed} == {None, reporter.pk}


# Filing -------------------------------------------------------------------------------------


class TestFiling:
    def test_files_a_case_by_the_api_channel(self, api_as, place, kind, reporter):
        response = api_as(reporter).post(CASES, filing(place), format="json")

        assert response.status_code == 201, response.content
        body = response.json()
        created = Case.objects.get()
        assert response["Location"] == case_url(created)
        assert body["tracking_number"] == created.tracking_number
        assert body["channel"] == "api" and created.reporter == reporter
        assert body["neighborhood"] == "fishtown" and body["department"] == "Streets Department"
        assert body["answers"] == {"size": "large", "lanes": ["bike"]}
        assert body["answer_labels"] == [
            {"question": "How big is it?", "answer": "Larger than a plate"},
            {"question": "Which lanes?", "answer": "Bike lane"},
        ]
        assert body["viewer"]["role"] == "reporter" and body["viewer"]["supported"] is True
        assert [n["kind"] for n in body["timeline"]] == ["created"]

    def test_a_retry_with_the_same_idempotency_key_files_one_case(
        self, api_as, place, kind, reporter
    ):
        client = api_as(reporter)

        first = client.post(CASES, filing(place), format="json", HTTP_IDEMPOTENCY_KEY="k-1")
        again = client.post(
            CASES,
            filing(place, description="Sent twice"),
            format="json",
            HTTP_IDEMPOTENCY_KEY="k-1",
        )

        assert first.status_code == 201, first.content
        assert again.status_code == 200, again.content
        assert again.json()["tracking_number"] == first.json()["tracking_number"]
        assert again["Location"] == first["Location"]
        assert Case.objects.count() == 1

    def test_an_idempotency_key_belongs_to_its_caller(self, api_as, place, kind, reporter):
        mine = api_as(reporter).post(CASES, filing(place), format="json", HTTP_IDEMPOTENCY_KEY="k")
        theirs = api_as(forum_member(place)).post(
            CASES, filing(place), format="json", HTTP_IDEMPOTENCY_KEY="k"
        )

        assert mine.status_code == theirs.status_code == 201
        assert mine.json()["tracking_number"] != theirs.json()["tracking_number"]
        long_key = api_as(reporter).post(
            CASES, filing(place), format="json", HTTP_IDEMPOTENCY_KEY="k" * 81
        )
        assert set(error_of(long_key, 400)["fields"]) == {"Idempotency-Key"}

    @pytest.mark.parametrize(
        ("changes", "fields"),
        [
            ({"lat": None, "lon": None}, {"location"}),
            ({"lat": 91, "lon": 0}, {"location"}),
            ({"answers": {"size": "huge"}}, {"answers.size"}),
            ({"answers": {"colour": "red", "size": "small"}}, {"answers.colour"}),
            ({"answers": ["small"]}, {"answers"}),
            ({"service_type": "teleporter"}, {"service_type"}),
            ({"lat": "north"}, {"lat"}),
            (
                {"description": "", "lat": None, "lon": None, "answers": {}},
                {"description", "location", "answers.size"},
            ),
        ],
    )
    def test_validation_errors_name_the_fields(self, api_as, place, kind, changes, fields):
        payload = filing(place, **changes)

        error = error_of(api_as(forum_member(place)).post(CASES, payload, format="json"), 400)

        assert error["code"] == "invalid"
        assert set(error["fields"]) == fields, error
        assert not Case.objects.exists()

    def test_an_address_is_enough_without_a_pin(self, api_as, place, kind):
        payload = filing(place, lat=None, lon=None, address="100 Market St")

        body = api_as(forum_member(place)).post(CASES, payload, format="json").json()

        assert body["address"] == "100 Market St" and body["lat"] is None

    def test_multipart_with_photos_and_answers_as_json_text(
        self, api_as, place, kind, settings, tmp_path
    ):
        settings.MEDIA_ROOT = tmp_path
        payload = filing(place, answers=json.dumps({"size": "small"}), photos=[jpeg()])

        response = api_as(forum_member(place)).post(CASES, payload, format="multipart")

        assert response.status_code == 201, response.content
        body = response.json()
        assert body["answers"] == {"size": "small"}
        assert len(body["photos"]) == 1 and body["photos"][0]["width"] == 64
        broken = filing(place, answers="{not json")
        error = error_of(api_as(forum_member(place)).post(CASES, broken, format="multipart"), 400)
        assert set(error["fields"]) == {"answers"}

    def test_over_the_filing_limit_is_a_429_with_retry_after(
        self, api_as, place, kind, settings, frozen_rate_window
    ):
        settings.ENGAGEMENT = {"CASE_RATE": (1, 3600)}
        client = api_as(forum_member(place))
        assert client.post(CASES, filing(place), format="json").status_code == 201

        response = client.post(CASES, filing(place), format="json")

        assert error_of(response, 429)["code"] == "rate_limited"
        assert 1 <= int(response["Retry-After"]) <= 3600
        assert Case.objects.count() == 1


# Escalation ---------------------------------------------------------------------------------


class TestEscalation:
    def test_escalating_twice_answers_201_then_200_with_the_same_case(self, api_as, place, kind):
        topic = thread(place, title="Huge pothole on Front Street", tags="potholes")
        organizer = forum_member(place, role=Membership.Role.ORGANIZER)

        first = api_as(topic.author).post(
            escalate_url(topic), {"answers": {"size": "large"}}, format="json"
        )
        second = api_as(organizer).post(
            escalate_url(topic),
            {"service_type": "pothole", "answers": {"size": "small"}},
            format="json",
        )

        assert first.status_code == 201, first.content
        assert second.status_code == 200, second.content
        body = first.json()
        assert second.json()["tracking_number"] == body["tracking_number"]
        assert first["Location"] == second["Location"] == f"{CASES}{body['tracking_number']}/"
        assert body["service_code"] == "pothole"  # suggested by the thread's tag
        assert body["thread"] == topic.pk and body["channel"] == "api"
        assert "Huge pothole on Front Street" in body["description"]
        assert Case.objects.count() == 1

    def test_without_a_type_nor_a_suggestion_names_the_service_type(self, api_as, place, kind):
        topic = thread(place, title="Broken streetlight on the corner")

        response = api_as(topic.author).post(escalate_url(topic), {}, format="json")

        assert set(error_of(response, 400)["fields"]) == {"service_type"}

    def test_the_same_idempotency_key_after_closing_still_finds_the_first_case(
        self, api_as, place, kind, staff
    ):
        topic = thread(place, title="Huge pothole on Front Street", tags="potholes")
        client = api_as(topic.author)
        body = {"answers": {"size": "large"}}
        first = client.post(escalate_url(topic), body, format="json", HTTP_IDEMPOTENCY_KEY="e")
        services.change_status(Case.objects.get(), user=staff, status="closed", resolution="fixed")

        retry = client.post(escalate_url(topic), body, format="json", HTTP_IDEMPOTENCY_KEY="e")
        fresh = client.post(escalate_url(topic), body, format="json")

        assert (
            retry.status_code == 200
            and retry.json()["tracking_number"] == (first.json()["tracking_number"])
        )
        assert fresh.status_code == 201 and Case.objects.count() == 2

    def test_an_unknown_thread_is_a_404(self, api_as, place):
        response = api_as(forum_member(place)).post("/api/v1/threads/999999/escalate/", {})

        assert error_of(response, 404)["code"] == "not_found"


# Lists --------------------------------------------------------------------------------------


class TestList:
    @pytest.fixture
    def cases(self, place, kind, reporter) -> dict[str, Case]:
        elsewhere = NeighborhoodFactory(name="Kensington")
        graffiti = service_type("graffiti", department=kind.department)
        lat, lon = inside(place)
        made = {
            "open": file_case(place, kind=kind, reporter=reporter, answers={"size": "small"}),
            "acknowledged": file_case(place, kind=graffiti),
            "closed": file_case(elsewhere, kind=kind, answers={"size": "small"}),
            "overdue": file_case(place, kind=kind, lat=lat + 0.006, answers={"size": "small"}),
        }
        services.support(made["acknowledged"], user=reporter)
        Case.objects.filter(pk=made["acknowledged"].pk).update(status="acknowledged")
        Case.objects.filter(pk=made["closed"].pk).update(status="closed", resolution="fixed")
        Case.objects.filter(pk=made["overdue"].pk).update(
            expected_at=timezone.now() - timedelta(days=1)
        )
        return {name: Case.objects.get(pk=c.pk) for name, c in made.items()}

    def test_each_item_is_the_case_payload(self, api, cases):
        results = api.get(CASES).json()["results"]

        assert [r["tracking_number"] for r in results] == [
            c.tracking_number for c in sorted(cases.values(), key=lambda c: -c.pk)
        ]
        assert results[0] == services.case_payload(
            Case.objects.select_related("service_type", "department", "neighborhood").get(
                pk=cases["overdue"].pk
            )
        )

    def test_filters(self, api, api_as, place, reporter, cases):
        lat, lon = inside(place)

        def found(**params) -> set[str]:
            return {
                name
                for name, c in cases.items()
                if c.tracking_number in tracking_numbers(api.get(CASES, params))
            }

        assert found(status="open") == {"open", "acknowledged", "overdue"}
        assert found(status="acknowledged") == {"acknowledged"}
        assert found(status="closed") == {"closed"}
        assert found(type="graffiti") == {"acknowledged"}
        assert found(type="pothole,graffiti") == set(cases)
        assert found(neighborhood="kensington") == {"closed"}
        assert found(near=f"{lat},{lon}") == {"open", "acknowledged"}
        assert found(near=f"{lat},{lon},1000") == {"open", "acknowledged", "overdue"}
        assert found(overdue="1") == {"overdue"}
        mine = tracking_numbers(api_as(reporter).get(CASES, {"mine": "1"}))
        assert mine == {cases["open"].tracking_number, cases["acknowledged"].tracking_number}

    def test_mine_needs_sign_in(self, api):
        assert error_of(api.get(CASES, {"mine": "1"}), 401)["code"] == "not_authenticated"

    def test_invalid_filters_name_every_parameter_at_fault(self, api, kind):
        response = api.get(
            CASES,
            {
                "status": "lost",
                "type": "pothole,teleporter",
                "neighborhood": "atlantis",
                "near": "x",
            },
        )

        error = error_of(response, 400)
        assert set(error["fields"]) == {"status", "type", "neighborhood", "near"}
        assert "'teleporter'" in error["fields"]["type"][0]
        too_far = error_of(api.get(CASES, {"near": "1.0,1.0,9000"}), 400)
        assert "5000" in too_far["fields"]["near"][0]

    def test_is_paginated(self, api, place, kind):
        many_cases(kind, place, 5)

        first = api.get(CASES, {"page_size": 2}).json()

        assert first["count"] == 5 and len(first["results"]) == 2
        assert first["next"].endswith("page=2&page_size=2")

    @pytest.mark.parametrize("count", [3, 30])
    def test_the_number_of_queries_does_not_grow_with_the_cases(
        self, api, api_as, place, kind, staff, count, django_assert_num_queries
    ):
        many_cases(kind, place, count)
        client = api_as(staff)

        # count, page (with types, departments, neighborhoods, originals)
        with django_assert_num_queries(2):
            anonymous = api.get(CASES, {"page_size": 100})
        # session, user, staff record, count, page
        with django_assert_num_queries(5):
            signed_in = client.get(CASES, {"page_size": 100, "status": "open"})

        assert len(anonymous.json()["results"]) == len(signed_in.json()["results"]) == count
        assert all("staff" in item for item in signed_in.json()["results"])


def many_cases(kind, place, count: int) -> list[Case]:
    """``count`` open cases written in bulk, every other one marked a duplicate of the first."""
    lat, lon = inside(place)
    now = timezone.now()
    original = Case.objects.create(
        tracking_number="99-100000",
        service_type=kind,
        department=kind.department,
        description="The first",
        lat=lat,
        lon=lon,
        neighborhood=place,
    )
    return [original] + Case.objects.bulk_create(
        Case(
            tracking_number=f"99-{n:06d}",
            service_type=kind,
            department=kind.department,
            description=f"Case {n}",
            lat=lat,
            lon=lon,
            neighborhood=place,
            duplicate_of=original if n % 2 else None,
            created_at=now - timedelta(minutes=n),
            expected_at=now + timedelta(days=1),
        )
        for n in range(1, count)
    )


# One case -----------------------------------------------------------------------------------


class TestOneCase:
    def test_internal_notes_are_seen_by_staff_of_the_department_only(
        self, api, api_as, case, staff
    ):
        services.add_note(case, user=staff, text="Crew 4 says next week", public=False)
        services.add_note(case, user=staff, text="Scheduled for next week", public=True)

        public = api.get(case_url(case)).json()["timeline"]
        other = api_as(CityStaffFactory().user).get(case_url(case)).json()["timeline"]
        own = api_as(staff).get(case_url(case)).json()["timeline"]

        assert [n["text"] for n in public if n["kind"] == "note"] == ["Scheduled for next week"]
        assert other == public
        assert [n["is_public"] for n in own] == [True, False, True]
        assert own[2]["by_staff"] is True and own[0]["by_staff"] is False

    def test_the_viewer_block_says_what_the_caller_may_do(self, api, api_as, case, staff):
        reporter = api_as(case.reporter)

        assert api.get(case_url(case)).json()["viewer"] == {
            "role": "public",
            "supported": False,
            "can_work": False,
            "can_reopen": False,
            "can_survey": False,
            "survey_answered": False,
        }
        assert api_as(staff).get(case_url(case)).json()["viewer"]["role"] == "staff"
        services.change_status(case, user=staff, status="closed", resolution="fixed")
        closed = reporter.get(case_url(case)).json()["viewer"]
        assert closed == {
            "role": "reporter",
            "supported": True,
            "can_work": False,
            "can_reopen": True,
            "can_survey": True,
            "survey_answered": False,
        }
        reporter.post(case_url(case, "survey"), {"fixed": False, "satisfaction": 2})
        answered = reporter.get(case_url(case)).json()["viewer"]
        assert answered["can_survey"] is False and answered["survey_answered"] is True

    def test_unknown_and_malformed_tracking_numbers_are_a_json_404(self, api):
        assert error_of(api.get(f"{CASES}26-999999/"), 404)["code"] == "not_found"
        assert error_of(api.get(f"{CASES}nonsense/"), 404)["code"] == "not_found"

    def test_nearby_open_cases_of_the_same_type(self, api, case, kind):
        response = api.get(NEARBY, {"type": "pothole", "lat": case.lat + 0.0003, "lon": case.lon})

        assert response.status_code == 200, response.content
        found = response.json()
        assert [item["case"]["tracking_number"] for item in found] == [case.tracking_number]
        assert 25 < found[0]["distance_m"] < 45
        assert found[0]["you"] == {"reported": False, "supported": False}
        service_type("graffiti", department=kind.department)
        assert api.get(NEARBY, {"type": "graffiti", "lat": case.lat, "lon": case.lon}).json() == []

    def test_nearby_says_which_ones_you_reported_or_support_already(self, api_as, case, place):
        near = {"type": "pothole", "lat": case.lat, "lon": case.lon}
        assert api_as(case.reporter).get(NEARBY, near).json()[0]["you"] == {
            "reported": True,
            "supported": True,
        }
        neighbour = forum_member(place)
        assert api_as(neighbour).get(NEARBY, near).json()[0]["you"]["supported"] is False
        api_as(neighbour).post(case_url(case, "support"))
        assert api_as(neighbour).get(NEARBY, near).json()[0]["you"] == {
            "reported": False,
            "supported": True,
        }

    def test_nearby_names_missing_and_wrong_parameters(self, api, kind):
        missing = error_of(api.get(NEARBY, {"lat": "1.0"}), 400)
        unknown = error_of(api.get(NEARBY, {"type": "teleporter", "lat": 1, "lon": 1}), 400)
        bad_pin = error_of(api.get(NEARBY, {"type": "pothole", "lat": 91, "lon": 0}), 400)

        assert missing["code"] == "missing_parameter"
        assert set(missing["fields"]) == {"type", "lon"}
        assert set(unknown["fields"]) == {"type"}
        assert bad_pin["code"] == "invalid_point"


# Support, surveys, reopening ----------------------------------------------------------------


class TestResidents:
    def test_me_too_counts_once_and_can_be_withdrawn(self, api_as, place, case):
        client = api_as(forum_member(place))

        first = client.post(case_url(case, "support"))
        again = client.post(case_url(case, "support"))
        withdrawn = client.delete(case_url(case, "support"))

        assert (
            first.json()
            == again.json()
            == {
                "supporter_count": 2,
                "verified_supporter_count": 2,
                "supported": True,
            }
        )
        assert withdrawn.json()["supporter_count"] == 1 and withdrawn.json()["supported"] is False
        own = api_as(case.reporter).delete(case_url(case, "support"))
        assert set(error_of(own, 400)["fields"]) == {"case"}

    def test_a_survey_once_and_a_contested_closure(self, api_as, case, staff, settings, tmp_path):
        settings.MEDIA_ROOT = tmp_path
        client = api_as(case.reporter)
        early = client.post(case_url(case, "survey"), {"fixed": True, "satisfaction": 5})
        assert set(error_of(early, 400)["fields"]) == {"case"}
        services.change_status(case, user=staff, status="closed", resolution="fixed")

        bad = client.post(case_url(case, "survey"), {"fixed": True, "satisfaction": 9})
        answered = client.post(
            case_url(case, "survey"),
            {"fixed": False, "satisfaction": 2, "comment": "Still there"},
            format="json",
        )
        twice = client.post(case_url(case, "survey"), {"fixed": True, "satisfaction": 4})
        reopened = client.post(
            case_url(case, "reopen"),
            {"comment": "The hole is back", "photo": jpeg()},
            format="multipart",
        )

        assert set(error_of(bad, 400)["fields"]) == {"satisfaction"}
        assert answered.status_code == 201, answered.content
        assert answered.json()["fixed"] is False and answered.json()["comment"] == "Still there"
        assert set(error_of(twice, 400)["fields"]) == {"case"}
        assert reopened.status_code == 200, reopened.content
        body = reopened.json()
        assert body["status"] == "open" and body["contested_count"] == 1
        assert body["timeline"][-1]["kind"] == "contested" and body["timeline"][-1]["photo"]
        stranger = api_as(forum_member(case.neighborhood)).post(
            case_url(case, "reopen"), {"comment": "No"}, format="json"
        )
        assert error_of(stranger, 403)["code"] == "permission_denied"


# Staff --------------------------------------------------------------------------------------


class TestStaff:
    def test_moving_a_case_to_closed_with_a_resolution(self, api_as, case, staff):
        client = api_as(staff)

        acknowledged = client.post(
            case_url(case, "status"), {"status": "acknowledged", "note": "Seen"}, format="json"
        )
        unscheduled = client.post(case_url(case, "status"), {"status": "scheduled"}, format="json")
        scheduled = client.post(
            case_url(case, "status"),
            {"status": "scheduled", "scheduled_for": "2026-12-01"},
            format="json",
        )
        whose = client.post(
            case_url(case, "status"), {"status": "closed", "resolution": "not_city"}, format="json"
        )
        original = client.post(
            case_url(case, "status"),
            {"status": "closed", "resolution": "duplicate", "duplicate_of": "26-999999"},
            format="json",
        )
        closed = client.post(
            case_url(case, "status"),
            {"status": "closed", "resolution": "fixed", "note": "Patched"},
            format="json",
        )

        assert acknowledged.json()["status"] == "acknowledged"
        assert acknowledged.json()["timeline"][-1]["text"] == "Seen"
        assert set(error_of(unscheduled, 400)["fields"]) == {"scheduled_for"}
        assert scheduled.json()["scheduled_for"] == "2026-12-01"
        assert set(error_of(whose, 400)["fields"]) == {"responsible_party"}
        assert set(error_of(original, 400)["fields"]) == {"duplicate_of"}
        body = closed.json()
        assert body["status"] == "closed" and body["resolution"] == "fixed"
        assert body["resolution_note"] == "Patched" and body["closed_at"]

    def test_an_internal_status_change_stays_off_the_public_timeline(
        self, api, api_as, case, staff
    ):
        api_as(staff).post(
            case_url(case, "status"),
            {"status": "in_progress", "note": "Waiting on parts", "public": False},
            format="json",
        )

        public = api.get(case_url(case)).json()

        assert public["status"] == "in_progress"
        assert "Waiting on parts" not in json.dumps(public["timeline"])

    def test_notes_public_and_internal(self, api_as, case, staff):
        client = api_as(staff)

        internal = client.post(
            case_url(case, "notes"), {"text": "Crew 4", "public": False}, format="json"
        )
        public = client.post(case_url(case, "notes"), {"text": "Crew booked"})
        empty = client.post(case_url(case, "notes"), {"text": " "}, format="json")

        assert internal.status_code == 201 and internal.json()["is_public"] is False
        assert public.json()["is_public"] is True  # a form leaving `public` out means public
        assert CaseNote.objects.get(pk=public.json()["id"]).text == "Crew booked"
        assert set(error_of(empty, 400)["fields"]) == {"text"}

    def test_assigning_within_the_department(self, api_as, case, staff):
        client = api_as(staff)
        colleague = CityStaffFactory(department=case.department).user

        assigned = client.post(case_url(case, "assign"), {"assignee": colleague.pk}, format="json")
        outsider = client.post(
            case_url(case, "assign"), {"assignee": CityStaffFactory().user.pk}, format="json"
        )
        unknown = client.post(case_url(case, "assign"), {"assignee": 999999}, format="json")
        cleared = client.post(case_url(case, "assign"), {"assignee": None}, format="json")

        assert assigned.json()["staff"]["assigned_to"] == colleague.pk
        assert set(error_of(outsider, 400)["fields"]) == {"assignee"}
        assert set(error_of(unknown, 400)["fields"]) == {"assignee"}
        assert cleared.json()["staff"]["assigned_to"] is None


# The catalogue ------------------------------------------------------------------------------


class TestServiceTypes:
    def test_lists_active_types_with_their_questions(self, api, kind, django_assert_num_queries):
        service_type("retired", department=kind.department, is_active=False)

        # the types with their departments, their questions
        with django_assert_num_queries(2):
            body = api.get(SERVICE_TYPES).json()

        assert [t["code"] for t in body] == ["pothole"]
        assert body[0] == {
            "code": "pothole",
            "name": "Pothole",
            "description": "",
            "group": "",
            "keywords": ["pothole", "hole"],
            "department": "Streets Department",
            "sla_working_days": 3,
            "questions": [
                {
                    "code": "size",
                    "prompt": "How big is it?",
                    "datatype": "singlevaluelist",
                    "datatype_description": "",
                    "required": True,
                    "variable": True,
                    "order": 1,
                    "values": [
                        {"key": "small", "name": "Smaller than a plate"},
                        {"key": "large", "name": "Larger than a plate"},
                    ],
                },
                {
                    "code": "lanes",
                    "prompt": "Which lanes?",
                    "datatype": "multivaluelist",
                    "datatype_description": "",
                    "required": False,
                    "variable": True,
                    "order": 2,
                    "values": [
                        {"key": "bike", "name": "Bike lane"},
                        {"key": "car", "name": "Car lane"},
                    ],
                },
            ],
        }

    def test_one_type_by_code(self, api, kind):
        service_type("retired", department=kind.department, is_active=False)

        assert api.get(f"{SERVICE_TYPES}pothole/").json()["code"] == "pothole"
        assert error_of(api.get(f"{SERVICE_TYPES}retired/"), 404)["code"] == "not_found"


# The schema ---------------------------------------------------------------------------------

CASE_PATHS = {
    "/api/v1/service-types/": {"get"},
    "/api/v1/service-types/{code}/": {"get"},
    "/api/v1/cases/": {"get", "post"},
    "/api/v1/cases/nearby/": {"get"},
    "/api/v1/cases/{tracking_number}/": {"get"},
    "/api/v1/cases/{tracking_number}/support/": {"post", "delete"},
    "/api/v1/cases/{tracking_number}/survey/": {"post"},
    "/api/v1/cases/{tracking_number}/reopen/": {"post"},
    "/api/v1/cases/{tracking_number}/status/": {"post"},
    "/api/v1/cases/{tracking_number}/notes/": {"post"},
    "/api/v1/cases/{tracking_number}/assign/": {"post"},
    "/api/v1/threads/{id}/escalate/": {"post"},
}


@pytest.fixture(scope="module")
def schema_and_problems(django_db_setup, django_db_blocker) -> tuple[dict, list[str]]:
    GENERATOR_STATS.reset()
    with django_db_blocker.unblock():
        response = APIClient().get("/api/v1/schema/", {"format": "json"})
    problems = [*GENERATOR_STATS._warn_cache, *GENERATOR_STATS._error_cache]
    assert response.status_code == 200
    return json.loads(response.content), problems


@pytest.fixture
def schema(schema_and_problems) -> dict:
    return schema_and_problems[0]


class TestSchema:
    def test_generates_without_warnings_or_errors(self, schema_and_problems):
        assert schema_and_problems[1] == []

    def test_lists_every_case_operation(self, schema):
        for path, methods in CASE_PATHS.items():
            assert path in schema["paths"], path
            assert set(schema["paths"][path]) >= methods, path

    def test_the_shapes_match_the_payloads(self, schema, api_as, case, staff):
        components = schema["components"]["schemas"]
        services.add_note(case, user=staff, text="Seen", public=True)
        detail = api_as(staff).get(case_url(case)).json()
        listed = api_as(staff).get(SERVICE_TYPES).json()[0]

        assert set(components["Case"]["properties"]) == set(services.case_payload(case, staff=True))
        assert set(components["CaseStaff"]["properties"]) == set(detail["staff"])
        assert set(components["CaseDetail"]["properties"]) == set(detail)
        assert set(components["CaseViewer"]["properties"]) == set(detail["viewer"])
        assert set(components["CaseNote"]["properties"]) == set(detail["timeline"][-1])
        assert set(components["ServiceType"]["properties"]) == set(listed)
        assert set(components["ServiceQuestion"]["properties"]) == set(listed["questions"][0])
        assert "staff" not in components["Case"].get("required", [])

    def test_the_list_is_paginated_with_its_filters(self, schema):
        operation = schema["paths"]["/api/v1/cases/"]["get"]
        names = {p["name"] for p in operation["parameters"]}

        assert names >= {"status", "type", "neighborhood", "near", "overdue", "mine", "page"}
        assert "PaginatedCaseList" in schema["components"]["schemas"]

    def test_filing_takes_json_multipart_and_an_idempotency_key(self, schema):
        operation = schema["paths"]["/api/v1/cases/"]["post"]

        assert {"application/json", "multipart/form-data"} <= set(
            operation["requestBody"]["content"]
        )
        assert {"name": "Idempotency-Key", "in": "header"}.items() <= operation["parameters"][
            0
        ].items()
        assert {"200", "201", "429"} <= set(operation["responses"])

    def test_staff_actions_need_authentication(self, schema):
        operation = schema["paths"]["/api/v1/cases/{tracking_number}/status/"]["post"]

        assert {"tokenAuth": []} in operation["security"]
        assert {} not in operation["security"]
