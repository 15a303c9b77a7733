"""The alerts and notifications JSON API: feeds, one alert, posting, the life of an alert, inbox."""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from PIL import Image
from rest_framework.test import APIClient

from alerts import services
from alerts.models import Alert, AlertConfirmation, AlertRevision, Notification, Severity
from alerts.notify import notify
from tests.factories import (
    CityStaffFactory,
    DepartmentFactory,
    MembershipFactory,
    NeighborhoodFactory,
    UserFactory,
    VerifiedUserFactory,
    category,
    inside,
    multipolygon,
    official_notice,
    resident_report,
    square_polygon,
)

pytestmark = pytest.mark.django_db

ALERTS = "/api/v1/alerts/"
CATEGORIES = "/api/v1/alerts/categories/"
NOTIFICATIONS = "/api/v1/notifications/"
MARK_READ = "/api/v1/notifications/read/"


def alert_url(alert: Alert, action: str | None = None) -> str:
    return f"{ALERTS}{alert.pk}/" + (f"{action}/" if action else "")


def error_of(response, status: int) -> dict:
    """The error body of a JSON error response with this status."""
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["message"]
    return body["error"]


def fresh(alert: Alert) -> Alert:
    return Alert.objects.get(pk=alert.pk)


def png_upload(name: str = "pothole.png") -> SimpleUploadedFile:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 30, 30)).save(buffer, "PNG")
    return SimpleUploadedFile(name, buffer.getvalue(), content_type="image/png")


@pytest.fixture
def place():
    return NeighborhoodFactory(name="Fishtown")


@pytest.fixture
def elsewhere():
    return NeighborhoodFactory(name="Kensington")


@pytest.fixture
def water():
    return DepartmentFactory(name="Water Department")


@pytest.fixture
def water_staff(water):
    return CityStaffFactory(department=water).user


@pytest.fixture
def neighbor(place):
    """A verified resident of ``place``."""
    return MembershipFactory(neighborhood=place, verified=True).user


# Who is asking, relative to an alert in ``place`` issued by the Water Department.
PERSONAS = [
    "anonymous",
    "registered",
    "email_verified",
    "member",
    "verified_member",
    "other_member",
    "issuing_staff",
    "other_staff",
    "supervisor",
]


@pytest.fixture
def persona(place, elsewhere, water):
    """``persona(name)``: a person in that role (``None`` for anonymous)."""

    def make(name: str):
        streets = DepartmentFactory(name="Streets Department")
        return {
            "anonymous": lambda: None,
            "registered": UserFactory,
            "email_verified": VerifiedUserFactory,
            "member": lambda: MembershipFactory(neighborhood=place).user,
            "verified_member": lambda: MembershipFactory(neighborhood=place, verified=True).user,
            "other_member": lambda: MembershipFactory(neighborhood=elsewhere, verified=True).user,
            "issuing_staff": lambda: CityStaffFactory(department=water).user,
            "other_staff": lambda: CityStaffFactory(department=streets).user,
            "supervisor": lambda: CityStaffFactory(department=streets, is_supervisor=True).user,
        }[name]()

    return make


@pytest.fixture
def client_for(api, api_as):
    def make(user) -> APIClient:
        return api if user is None else api_as(user)

    return make


class TestFeed:
    def test_lists_active_alerts_most_severe_first_then_newest(self, api, place, water_staff):
        older_warning = official_notice(place, staff=water_staff, severity=Severity.WARNING)
        info = official_notice(place, staff=water_staff, severity=Severity.INFO)
        report = resident_report(place, severity=Severity.ADVISORY)
        newer_warning = official_notice(place, staff=water_staff, severity=Severity.WARNING)
        emergency = official_notice(place, staff=water_staff, severity=Severity.EMERGENCY)
        retracted = official_notice(place, staff=water_staff, severity=Severity.EMERGENCY)
        services.retract_alert(retracted, user=water_staff, reason="Sent in error")
        dismissed = resident_report(place, severity=Severity.WARNING)
        services.dismiss_alert(dismissed, user=water_staff)
        expired = official_notice(place, staff=water_staff)
        Alert.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(1))
        Alert.objects.filter(pk=newer_warning.pk).update(
            starts_at=timezone.now() + timedelta(seconds=-1)
        )
        Alert.objects.filter(pk=older_warning.pk).update(
            starts_at=timezone.now() - timedelta(hours=1)
        )

        response = api.get(ALERTS)

        assert response.status_code == 200
        body = response.json()
        assert [a["id"] for a in body["results"]] == [
            emergency.pk,
            newer_warning.pk,
            older_warning.pk,
            report.pk,
            info.pk,
        ]
        assert body["count"] == 5 and body["next"] is None and body["previous"] is None

    def test_each_item_is_the_alert_payload(self, api, place, water_staff):
        notice = official_notice(place, staff=water_staff, title="Boil water before drinking")

        item = api.get(ALERTS).json()["results"][0]

        assert item == services.alert_payload(fresh(notice))
        assert item["neighborhoods"] == ["fishtown"]
        assert item["provenance"] == "Official · Water Department"
        assert item["severity"] == "warning" and item["kind"] == "official"

    def test_filters_by_neighborhood_kind_and_category(self, api, place, elsewhere, water_staff):
        here = official_notice(place, staff=water_staff, category=category("utilities"))
        there = official_notice(elsewhere, staff=water_staff, category=category("traffic"))
        report = resident_report(place, category=category("traffic"))

        def ids(**params) -> set[int]:
            response = api.get(ALERTS, params)
            assert response.status_code == 200, response.content
            return {a["id"] for a in response.json()["results"]}

        assert ids(neighborhood="fishtown") == {here.pk, report.pk}
        assert ids(neighborhood="fishtown,kensington") == {here.pk, report.pk, there.pk}
        assert ids(kind="official") == {here.pk, there.pk}
        assert ids(kind="community") == {report.pk}
        assert ids(category="traffic") == {there.pk, report.pk}
        assert ids(neighborhood="fishtown", kind="official", category="traffic") == set()

    def test_mine_keeps_the_callers_neighborhoods(self, api_as, place, elsewhere, water_staff):
        here = official_notice(place, staff=water_staff)
        official_notice(elsewhere, staff=water_staff)
        member = MembershipFactory(neighborhood=place).user
        client = api_as(member)

        mine = client.get(ALERTS, {"mine": "1"}).json()["results"]
        narrowed = client.get(ALERTS, {"mine": "1", "neighborhood": "kensington"}).json()

        assert [a["id"] for a in mine] == [here.pk]
        assert narrowed["results"] == []
        stranger = api_as(VerifiedUserFactory()).get(ALERTS, {"mine": "true"})
        assert stranger.json()["results"] == []

    def test_mine_needs_sign_in(self, api):
        response = api.get(ALERTS, {"mine": "1"})

        assert error_of(response, 401)["code"] == "not_authenticated"
        assert response["WWW-Authenticate"] == "Token"

    @pytest.mark.parametrize(
        ("params", "field"),
        [
            pytest.param({"neighborhood": "atlantis"}, "neighborhood", id="neighborhood"),
            pytest.param({"neighborhood": "fishtown,atlantis"}, "neighborhood", id="one-of-two"),
            pytest.param({"category": "alien-landing"}, "category", id="category"),
            pytest.param({"kind": "rumour"}, "kind", id="kind"),
        ],
    )
    def test_an_unknown_filter_is_a_400_naming_it(self, api, place, params, field):
        error = error_of(api.get(ALERTS, params), 400)

        assert error["code"] == "invalid"
        assert set(error["fields"]) == {field}

    def test_is_paginated(self, api, place, water_staff, settings):
        settings.ENGAGEMENT = {"PAGE_SIZE": 2}
        for _ in range(5):
            official_notice(place, staff=water_staff)

        first = api.get(ALERTS).json()
        last = api.get(ALERTS, {"page": 3}).json()
        bigger = api.get(ALERTS, {"page_size": 4}).json()

        assert first["count"] == 5 and len(first["results"]) == 2
        assert first["next"].endswith("/api/v1/alerts/?page=2")
        assert len(last["results"]) == 1 and last["next"] is None
        assert len(bigger["results"]) == 4
        assert error_of(api.get(ALERTS, {"page": 4}), 404)["code"] == "not_found"

    @pytest.mark.parametrize("count", [3, 30])
    def test_the_number_of_queries_does_not_grow_with_the_alerts(
        self, api, place, elsewhere, water_staff, django_assert_num_queries, count
    ):
        for n in range(count):
            if n % 3:
                official_notice(place if n % 2 else elsewhere, staff=water_staff)
            else:
                resident_report(place)

        # count, page, neighborhood slugs
        with django_assert_num_queries(3):
            response = api.get(ALERTS, {"page_size": 100})

        assert len(response.json()["results"]) == count

    @pytest.mark.parametrize("count", [3, 30])
    def test_the_number_of_queries_of_my_feed_does_not_grow_either(
        self, token_client, place, water_staff, django_assert_num_queries, count
    ):
        member = MembershipFactory(neighborhood=place).user
        client = token_client(member)
        client.get("/api/v1/me/")  # a token's first use records itself once
        for _ in range(count):
            official_notice(place, staff=water_staff)

        # token with its user, my neighborhoods, count, page, neighborhood slugs
        with django_assert_num_queries(5):
            response = client.get(ALERTS, {"mine": "1", "page_size": 100})

        assert len(response.json()["results"]) == count


class TestOneAlert:
    def test_a_corrected_then_retracted_notice_shows_what_it_said_before(
        self, api, place, water_staff
    ):
        notice = official_notice(
            place, staff=water_staff, title="Water off on Main St", severity=Severity.WARNING
        )
        services.edit_alert(
            notice,
            user=water_staff,
            title="Water off on Maple St",
            severity=Severity.ADVISORY,
            note="Wrong street",
        )
        services.retract_alert(notice, user=water_staff, reason="Work postponed")

        response = api.get(alert_url(notice))

        assert response.status_code == 200
        body = response.json()
        assert body["status"] == "retracted" and body["is_active"] is False
        assert body["status_note"] == "Work postponed"
        assert body["title"] == "Water off on Maple St" and body["version"] == 3
        assert [
            (r["version"], r["title"], r["severity"], r["note"]) for r in body["revisions"]
        ] == [
            (2, "Water off on Maple St", "advisory", "Retracted: Work postponed"),
            (1, "Water off on Main St", "warning", "Wrong street"),
        ]
        assert body["viewer"] == {"can_manage": False, "confirmation": None}

    def test_an_expired_alert_is_still_there_with_its_status(self, api, place, water_staff):
        notice = official_notice(place, staff=water_staff)
        Alert.objects.filter(pk=notice.pk).update(expires_at=timezone.now() - timedelta(1))
        services.expire_alerts()

        body = api.get(alert_url(notice)).json()

        assert body["status"] == "expired" and body["is_active"] is False
        assert body["revisions"] == []

    def test_a_report_shows_no_history_and_the_callers_own_answer(self, api_as, place, neighbor):
        report = resident_report(place)
        services.edit_alert(report, user=CityStaffFactory().user, body="Redacted address")
        services.confirm_alert(report, user=neighbor, still_there=False)

        body = api_as(neighbor).get(alert_url(report)).json()

        assert body["revisions"] is None
        assert body["viewer"] == {"can_manage": False, "confirmation": "gone"}

    def test_staff_who_manage_it_are_told_so(self, api_as, place, water_staff):
        notice = official_notice(place, staff=water_staff)

        mine = api_as(water_staff).get(alert_url(notice)).json()["viewer"]
        others = api_as(CityStaffFactory().user).get(alert_url(notice)).json()["viewer"]

        assert mine["can_manage"] is True and others["can_manage"] is False

    @pytest.mark.parametrize(
        ("who", "status"),
        [("anonymous", 404), ("verified_member", 404), ("author", 200), ("other_staff", 200)],
    )
    def test_a_dismissed_report_is_seen_only_by_staff_and_its_author(
        self, place, water_staff, persona, client_for, who, status
    ):
        author = MembershipFactory(neighborhood=place, verified=True).user
        report = resident_report(place, author=author)
        services.dismiss_alert(report, user=water_staff, note="Prank")
        user = author if who == "author" else persona(who)

        response = client_for(user).get(alert_url(report))

        assert response.status_code == status, response.content
        if status == 200:
            assert response.json()["status"] == "dismissed"
        else:
            assert error_of(response, 404)["code"] == "not_found"

    def test_an_unknown_alert_is_a_json_404(self, api):
        assert error_of(api.get(f"{ALERTS}999999/"), 404)["code"] == "not_found"


class TestPostOfficialNotice:
    def payload(self, **fields) -> dict:
        return {
            "title": "Hydrant flushing",
            "body": "Water may be **discoloured**.",
            "category": "utilities",
            "severity": "advisory",
            **fields,
        }

    def test_staff_post_to_neighborhoods(self, api_as, place, elsewhere, water_staff):
        response = api_as(water_staff).post(
            ALERTS,
            self.payload(neighborhoods=["fishtown", "kensington"], kind="official"),
            format="json",
        )

        assert response.status_code == 201, response.content
        body = response.json()
        notice = Alert.objects.get()
        assert response["Location"] == f"/api/v1/alerts/{notice.pk}/"
        assert body == services.alert_payload(fresh(notice))
        assert body["kind"] == "official" and body["source"] == "api"
        assert body["department"] == "Water Department"
        assert body["neighborhoods"] == ["fishtown", "kensington"]
        assert "<strong>discoloured</strong>" in body["body_html"]

    def test_staff_post_official_notices_when_no_kind_is_given(self, api_as, place, water_staff):
        response = api_as(water_staff).post(
            ALERTS, self.payload(neighborhoods=["fishtown"]), format="json"
        )

        assert response.status_code == 201, response.content
        assert response.json()["kind"] == "official"

    def test_a_drawn_area_reaches_the_neighborhoods_it_touches(self, api_as, philly, water_staff):
        lat, lon = inside(philly["Old City"])
        small = square_polygon(lat, lon, half=0.0005)

        response = api_as(water_staff).post(ALERTS, self.payload(area=small), format="json")

        assert response.status_code == 201, response.content
        assert response.json()["neighborhoods"] == ["old-city"]
        assert set(philly["Old City"].alerts.values_list("pk", flat=True)) == {
            response.json()["id"]
        }

    def test_a_feature_with_a_multipolygon_spanning_two_places_reaches_both(
        self, api_as, philly, water_staff
    ):
        old_city = inside(philly["Old City"])
        fishtown = inside(philly["Fishtown - Lower Kensington"])
        feature = {
            "type": "Feature",
            "properties": {"name": "Flushing zone"},
            "geometry": multipolygon(old_city, fishtown, half=0.0005),
        }

        response = api_as(water_staff).post(ALERTS, self.payload(area=feature), format="json")

        assert response.status_code == 201, response.content
        assert response.json()["neighborhoods"] == ["fishtown-lower-kensington", "old-city"]

    def test_a_point_with_a_radius(self, api_as, philly, water_staff):
        lat, lon = inside(philly["Old City"])

        response = api_as(water_staff).post(
            ALERTS, self.payload(lat=lat, lon=lon, radius_m=50), format="json"
        )

        assert response.status_code == 201, response.content
        body = response.json()
        assert body["point"] == {"lat": lat, "lon": lon, "radius_m": 50}
        assert "old-city" in body["neighborhoods"]

    def test_a_start_and_expiry_are_kept(self, api_as, place, water_staff):
        starts = timezone.now() + timedelta(hours=2)
        expires = starts + timedelta(hours=5)

        body = (
            api_as(water_staff)
            .post(
                ALERTS,
                self.payload(
                    neighborhoods=["fishtown"],
                    starts_at=starts.isoformat(),
                    expires_at=expires.isoformat(),
                ),
                format="json",
            )
            .json()
        )

        assert datetime.fromisoformat(body["starts_at"]) == starts
        assert datetime.fromisoformat(body["expires_at"]) == expires
        assert body["is_active"] is False  # not yet

    def test_a_resident_asking_for_an_official_notice_is_refused(self, api_as, place, neighbor):
        response = api_as(neighbor).post(
            ALERTS, self.payload(kind="official", neighborhoods=["fishtown"]), format="json"
        )

        error = error_of(response, 403)
        assert error["code"] == "staff_only"
        assert set(error["fields"]) == {"kind"}
        assert not Alert.objects.exists()

    @pytest.mark.parametrize(
        ("fields", "bad"),
        [
            pytest.param({"severity": "apocalyptic"}, "severity", id="bad-severity"),
            pytest.param({"severity": None}, "severity", id="no-severity"),
            pytest.param({"category": "alien-landing"}, "category", id="unknown-category"),
            pytest.param({"neighborhoods": ["atlantis"]}, "neighborhoods", id="unknown-slug"),
            pytest.param({"neighborhoods": []}, "neighborhoods", id="empty-list"),
            pytest.param({"title": ""}, "title", id="no-title"),
            pytest.param({"title": "x" * 141}, "title", id="long-title"),
            pytest.param(
                {"expires_at": "2020-01-01T00:00:00Z"}, "expires_at", id="expiry-before-start"
            ),
            pytest.param({"expires_at": "next tuesday"}, "expires_at", id="unreadable-expiry"),
        ],
    )
    def test_a_bad_field_is_a_400_naming_it(self, api_as, place, water_staff, fields, bad):
        payload = {k: v for k, v in self.payload(**fields).items() if v is not None}
        payload.setdefault("neighborhoods", ["fishtown"])

        error = error_of(api_as(water_staff).post(ALERTS, payload, format="json"), 400)

        assert error["code"] == "invalid"
        assert bad in error["fields"], error
        assert not Alert.objects.exists()

    @pytest.mark.parametrize(
        "area",
        [
            pytest.param("{not json", id="not-json"),
            pytest.param({"type": "Point", "coordinates": [-75.15, 39.95]}, id="a-point"),
            pytest.param({"type": "Polygon", "coordinates": [[[0, 0], [1]]]}, id="malformed"),
            pytest.param(
                {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]},
                id="self-intersecting",
            ),
            pytest.param(square_polygon(95, 0), id="latitude-out-of-range"),
            pytest.param({"type": "Feature", "geometry": None}, id="empty-feature"),
            pytest.param([1, 2, 3], id="a-list"),
        ],
    )
    def test_bad_geojson_is_a_400_on_the_area(self, api_as, water_staff, area):
        response = api_as(water_staff).post(ALERTS, self.payload(area=area), format="json")

        assert error_of(response, 400)["fields"].keys() == {"area"}

    def test_an_area_outside_every_neighborhood_is_refused(self, api_as, philly, water_staff):
        atlantic = square_polygon(39.5, -74.0)

        error = error_of(
            api_as(water_staff).post(ALERTS, self.payload(area=atlantic), format="json"), 400
        )

        assert error["fields"] == {"area": ["The area does not touch any neighborhood."]}

    @pytest.mark.parametrize(
        ("fields", "named"),
        [
            pytest.param({}, {"neighborhoods"}, id="nowhere"),
            pytest.param(
                {"neighborhoods": ["fishtown"], "area": square_polygon(1, 1)},
                {"neighborhoods", "area"},
                id="two-places",
            ),
            pytest.param({"lat": 39.95}, {"lon"}, id="lat-without-lon"),
            pytest.param({"lat": 39.95, "lon": -75.15, "radius_m": 10**6}, {"radius_m"}, id="huge"),
            pytest.param({"lat": 91, "lon": -75.15}, {"area"}, id="lat-out-of-range"),
            pytest.param({"neighborhoods": ["fishtown"], "radius_m": 50}, {"radius_m"}, id="r"),
        ],
    )
    def test_where_it_applies_must_be_said_once(self, api_as, place, water_staff, fields, named):
        response = api_as(water_staff).post(ALERTS, self.payload(**fields), format="json")

        assert set(error_of(response, 400)["fields"]) == named

    def test_a_form_post_with_a_photo(
        self, api_as, place, elsewhere, water_staff, settings, tmp_path
    ):
        settings.MEDIA_ROOT = tmp_path
        response = api_as(water_staff).post(
            ALERTS,
            {**self.payload(), "neighborhoods": ["fishtown", "kensington"], "photo": png_upload()},
            format="multipart",
        )

        assert response.status_code == 201, response.content
        assert response.json()["photo"].startswith("/media/alerts/")
        assert response.json()["neighborhoods"] == ["fishtown", "kensington"]
        assert fresh(Alert.objects.get()).photo.name.endswith(".png")

    def test_an_area_may_be_sent_as_json_text_in_a_form(self, api_as, place, water_staff):
        lat, lon = inside(place)
        response = api_as(water_staff).post(
            ALERTS,
            {**self.payload(), "area": json.dumps(square_polygon(lat, lon, half=0.001))},
            format="multipart",
        )

        assert response.status_code == 201, response.content
        assert response.json()["neighborhoods"] == ["fishtown"]


class TestPostResidentReport:
    def payload(self, neighborhood, **fields) -> dict:
        lat, lon = inside(neighborhood)
        return {"title": "Tree down", "category": "street-conditions", "lat": lat, "lon": lon}

    def test_a_verified_member_reports_with_a_pin(self, api_as, philly):
        author = MembershipFactory(neighborhood=philly["Old City"], verified=True).user

        response = api_as(author).post(ALERTS, self.payload(philly["Old City"]), format="json")

        assert response.status_code == 201, response.content
        body = response.json()
        assert body["kind"] == "community" and body["severity"] == "advisory"
        assert body["provenance"] == "Resident report" and body["source"] == "api"
        assert "old-city" in body["neighborhoods"]
        assert body["point"]["radius_m"] == category("street-conditions").default_radius_m
        assert response["Location"] == f"/api/v1/alerts/{body['id']}/"
        assert Alert.objects.get().author == author

    def test_a_token_works_without_a_csrf_token(self, place, neighbor):
        from neighborhoods.services import issue_api_token

        _, key = issue_api_token(user=neighbor)
        script = APIClient(enforce_csrf_checks=True)
        script.credentials(HTTP_AUTHORIZATION=f"Token {key}")

        response = script.post(ALERTS, self.payload(place), format="json")

        assert response.status_code == 201, response.content

    def test_a_session_needs_the_csrf_token(self, place, neighbor):
        browser = APIClient(enforce_csrf_checks=True)
        browser.force_login(neighbor)

        response = browser.post(ALERTS, self.payload(place), format="json")

        assert "CSRF" in error_of(response, 403)["message"]

    @pytest.mark.parametrize(
        ("fields", "named"),
        [
            pytest.param({"neighborhoods": ["fishtown"]}, {"neighborhoods"}, id="neighborhoods"),
            pytest.param({"area": square_polygon(1, 1)}, {"area"}, id="area"),
            pytest.param({"radius_m": 500}, {"radius_m"}, id="radius"),
            pytest.param({"expires_at": "2030-01-01T00:00:00Z"}, {"expires_at"}, id="expiry"),
            pytest.param({"lat": None, "lon": None}, {"lat", "lon"}, id="no-pin"),
        ],
    )
    def test_residents_place_reports_by_pin_only(self, api_as, place, neighbor, fields, named):
        payload = {**self.payload(place), **fields}
        payload = {k: v for k, v in payload.items() if v is not None}

        error = error_of(api_as(neighbor).post(ALERTS, payload, format="json"), 400)

        assert set(error["fields"]) == named
        assert all(message for messages in error["fields"].values() for message in messages)

    @pytest.mark.parametrize(
        ("fields", "named"),
        [
            pytest.param({"severity": "emergency"}, "severity", id="emergency"),
            pytest.param({"severity": "loud"}, "severity", id="bad-severity"),
            pytest.param({"category": "weather"}, "category", id="city-only-category"),
            pytest.param({"lat": 0, "lon": 0}, "location", id="outside-every-neighborhood"),
            pytest.param({"lat": "north"}, "lat", id="not-a-number"),
            pytest.param({"title": "   "}, "title", id="blank-title"),
        ],
    )
    def test_a_bad_report_is_a_400_naming_the_field(self, api_as, place, neighbor, fields, named):
        payload = {**self.payload(place), **fields}

        error = error_of(api_as(neighbor).post(ALERTS, payload, format="json"), 400)

        assert named in error["fields"], error
        assert not Alert.objects.exists()

    def test_a_photo_that_is_not_an_image_is_named(self, api_as, place, neighbor):
        fake = SimpleUploadedFile("x.png", b"not an image", content_type="image/png")

        response = api_as(neighbor).post(
            ALERTS, {**self.payload(place), "photo": fake}, format="multipart"
        )

        assert set(error_of(response, 400)["fields"]) == {"photo"}

    def test_an_oversized_photo_is_named(self, api_as, place, neighbor, settings):
        settings.ENGAGEMENT = {"ALERT_PHOTO_MAX_BYTES": 100}

        response = api_as(neighbor).post(
            ALERTS, {**self.payload(place), "photo": png_upload()}, format="multipart"
        )

        assert set(error_of(response, 400)["fields"]) == {"photo"}
        assert not Alert.objects.exists()

    def test_reports_are_rate_limited(self, api_as, place, neighbor, settings, frozen_rate_window):
        settings.ENGAGEMENT = {"ALERT_REPORTS_PER_HOUR": 2}
        client = api_as(neighbor)
        for _ in range(2):
            assert client.post(ALERTS, self.payload(place), format="json").status_code == 201

        response = client.post(ALERTS, self.payload(place), format="json")

        assert error_of(response, 429)["code"] == "rate_limited"
        assert 1 <= int(response["Retry-After"]) <= 3600
        assert Alert.objects.count() == 2


def _expect(success: int, allowed: set[str]) -> dict[str, int]:
    """Statuses per persona: ``success`` for ``allowed``, 401 anonymous, 403 otherwise."""
    return {p: success if p in allowed else 401 if p == "anonymous" else 403 for p in PERSONAS}


STAFF = {"issuing_staff", "other_staff", "supervisor"}
MATRIX = {
    "report": _expect(201, {"verified_member"}),
    "official": _expect(201, STAFF),
    "confirm": _expect(200, {"member", "verified_member"} | STAFF),
    "gone": _expect(200, {"member", "verified_member"} | STAFF),
    "retract": _expect(200, {"issuing_staff", "supervisor"}),
    "correct": _expect(200, {"issuing_staff", "supervisor"}),
    "verify": _expect(200, STAFF),
    "resolve": _expect(200, {"issuing_staff", "supervisor"}),
    "dismiss": _expect(200, STAFF),
}


class TestPermissionMatrix:
    """Who may do what, for an alert in Fishtown issued by the Water Department."""

    def attempt(self, action: str, client: APIClient, place, water_staff):
        lat, lon = inside(place)
        notice = official_notice(place, staff=water_staff)
        report = resident_report(place)
        if action == "report":
            body = {"title": "Ice", "category": "street-conditions", "lat": lat, "lon": lon}
            return client.post(ALERTS, {**body, "kind": "community"}, format="json"), None
        if action == "official":
            body = {
                "kind": "official",
                "title": "Ice",
                "category": "weather",
                "severity": "warning",
                "neighborhoods": ["fishtown"],
            }
            return client.post(ALERTS, body, format="json"), None
        if action == "retract":
            return client.post(alert_url(notice, "retract"), {"reason": "Wrong"}), notice
        if action == "correct":
            return client.patch(alert_url(notice), {"title": "Fixed"}, format="json"), notice
        if action == "resolve":
            return client.post(alert_url(notice, "resolve")), notice
        return client.post(alert_url(report, action)), report

    @pytest.mark.parametrize(
        ("action", "who", "status"),
        [(a, p, s) for a, row in MATRIX.items() for p, s in row.items()],
    )
    def test_matrix(self, place, water_staff, persona, client_for, action, who, status):
        client = client_for(persona(who))
        before = Alert.objects.count()

        response, alert = self.attempt(action, client, place, water_staff)

        assert response.status_code == status, response.content
        if status >= 400:
            code = error_of(response, status)["code"]
            assert code in {"not_authenticated", "permission_denied", "staff_only"}
            if status == 401:
                assert response["WWW-Authenticate"] == "Token"
            if alert is not None:
                unchanged = fresh(alert)
                assert (unchanged.status, unchanged.version, unchanged.verified_at) == (
                    alert.status,
                    alert.version,
                    alert.verified_at,
                )
                assert not AlertConfirmation.objects.filter(alert=alert).exists()
            else:
                assert Alert.objects.count() == before + 2
        elif alert is None:
            assert Alert.objects.count() == before + 3

    def test_the_matrix_covers_every_persona(self):
        assert all(set(row) == set(PERSONAS) for row in MATRIX.values())


class TestConfirmations:
    def test_confirming_twice_counts_once(self, api_as, place, neighbor):
        report = resident_report(place)
        client = api_as(neighbor)

        first = client.post(alert_url(report, "confirm"))
        second = client.post(alert_url(report, "confirm"))

        assert (first.status_code, second.status_code) == (200, 200)
        assert second.json()["confirmations"] == 1
        assert AlertConfirmation.objects.filter(alert=report).count() == 1

    def test_changing_ones_answer_to_gone_moves_the_count(self, api_as, place, neighbor):
        report = resident_report(place)
        client = api_as(neighbor)
        client.post(alert_url(report, "confirm"))

        body = client.post(alert_url(report, "gone")).json()

        assert (body["confirmations"], body["gone_reports"]) == (0, 1)

    def test_enough_verified_neighbours_corroborate_a_report(self, api_as, place):
        report = resident_report(place)
        for _ in range(3):
            member = MembershipFactory(neighborhood=place, verified=True).user
            body = api_as(member).post(alert_url(report, "confirm")).json()

        assert body["corroborated"] is True
        assert body["provenance"] == "Corroborated by 3 neighbours"

    def test_a_member_who_is_not_verified_is_heard_but_not_counted(self, api_as, place):
        report = resident_report(place)
        member = MembershipFactory(neighborhood=place).user

        body = api_as(member).post(alert_url(report, "confirm")).json()

        assert body["confirmations"] == 0
        assert AlertConfirmation.objects.get(alert=report).user == member

    def test_the_author_cannot_confirm_their_own_report(self, api_as, place, neighbor):
        report = resident_report(place, author=neighbor)

        error = error_of(api_as(neighbor).post(alert_url(report, "confirm")), 400)

        assert "neighbour" in error["message"]

    def test_official_notices_are_not_confirmed(self, api_as, place, neighbor, water_staff):
        notice = official_notice(place, staff=water_staff)

        assert error_of(api_as(neighbor).post(alert_url(notice, "confirm")), 400)

    def test_confirmations_are_rate_limited(self, api_as, place, settings, frozen_rate_window):
        settings.ENGAGEMENT = {"ALERT_CONFIRMATIONS_PER_MINUTE": 1}
        first, second = resident_report(place), resident_report(place)
        client = api_as(MembershipFactory(neighborhood=place, verified=True).user)
        assert client.post(alert_url(first, "confirm")).status_code == 200

        response = client.post(alert_url(second, "confirm"))

        assert error_of(response, 429)["code"] == "rate_limited"
        assert 1 <= int(response["Retry-After"]) <= 60


class TestStaffActions:
    def test_a_retraction_needs_a_reason(self, api_as, place, water_staff):
        notice = official_notice(place, staff=water_staff)

        error = error_of(api_as(water_staff).post(alert_url(notice, "retract"), {}), 400)

        assert set(error["fields"]) == {"reason"}
        assert fresh(notice).status == "active"

    def test_a_retracted_notice_keeps_its_reason_and_leaves_the_feed(
        self, api, api_as, place, water_staff
    ):
        notice = official_notice(place, staff=water_staff)

        body = (
            api_as(water_staff)
            .post(alert_url(notice, "retract"), {"reason": "Sent in error"}, format="json")
            .json()
        )

        assert body["status"] == "retracted" and body["status_note"] == "Sent in error"
        assert api.get(ALERTS).json()["results"] == []

    def test_a_correction_keeps_the_previous_version(self, api_as, place, water_staff):
        notice = official_notice(place, staff=water_staff, title="Road closed", body="Until 5")
        expires = notice.starts_at + timedelta(days=2)

        response = api_as(water_staff).patch(
            alert_url(notice),
            {
                "title": "Road closed until Friday",
                "severity": "emergency",
                "expires_at": expires.isoformat(),
                "note": "Longer than planned",
            },
            format="json",
        )

        assert response.status_code == 200, response.content
        body = response.json()
        assert body["title"] == "Road closed until Friday" and body["severity"] == "emergency"
        assert body["version"] == 2 and body["body"] == "Until 5"
        assert datetime.fromisoformat(body["expires_at"]) == expires
        revision = AlertRevision.objects.get(alert=notice)
        assert (revision.version, revision.title, revision.note) == (
            1,
            "Road closed",
            "Longer than planned",
        )

    @pytest.mark.parametrize(
        ("fields", "named"),
        [
            pytest.param({"note": "nothing else"}, "non_field_errors", id="nothing-to-change"),
            pytest.param({"severity": "dire"}, "severity", id="bad-severity"),
            pytest.param({"title": ""}, "title", id="blank-title"),
            pytest.param({"expires_at": "2001-01-01T00:00:00Z"}, "expires_at", id="expired"),
        ],
    )
    def test_a_bad_correction_is_a_400_naming_the_field(
        self, api_as, place, water_staff, fields, named
    ):
        notice = official_notice(place, staff=water_staff)

        error = error_of(api_as(water_staff).patch(alert_url(notice), fields, format="json"), 400)

        assert named in error["fields"], error
        assert fresh(notice).version == 1

    def test_a_retracted_notice_cannot_be_corrected(self, api_as, place, water_staff):
        notice = official_notice(place, staff=water_staff)
        services.retract_alert(notice, user=water_staff, reason="Wrong")

        response = api_as(water_staff).patch(alert_url(notice), {"title": "x"}, format="json")

        assert error_of(response, 400)["code"] == "invalid"

    def test_verifying_marks_a_report_verified_by_the_city(self, api_as, place, water_staff):
        report = resident_report(place)

        body = api_as(water_staff).post(alert_url(report, "verify")).json()

        assert body["verified"] is True
        assert body["provenance"] == "Resident report · verified by the city"

    def test_the_author_may_resolve_their_report(self, api_as, place, neighbor):
        report = resident_report(place, author=neighbor)

        body = api_as(neighbor).post(alert_url(report, "resolve"), {"note": "Cleared"}).json()

        assert body["status"] == "resolved" and body["status_note"] == "Cleared"

    def test_resolving_twice_is_a_400(self, api_as, place, neighbor):
        report = resident_report(place, author=neighbor)
        client = api_as(neighbor)
        client.post(alert_url(report, "resolve"))

        assert error_of(client.post(alert_url(report, "resolve")), 400)["code"] == "invalid"

    def test_a_dismissed_report_leaves_every_feed(self, api, api_as, place, water_staff):
        report = resident_report(place)

        body = api_as(water_staff).post(alert_url(report, "dismiss"), {"note": "Spam"}).json()

        assert body["status"] == "dismissed"
        assert api.get(ALERTS).json()["count"] == 0
        assert error_of(api.get(alert_url(report)), 404)

    def test_official_notices_are_retracted_not_dismissed(self, api_as, place, water_staff):
        notice = official_notice(place, staff=water_staff)

        error = error_of(api_as(water_staff).post(alert_url(notice, "dismiss")), 400)

        assert "retracted" in error["message"]

    def test_residents_cannot_act_on_a_dismissed_report_they_cannot_see(
        self, api_as, place, water_staff
    ):
        report = resident_report(place)
        services.dismiss_alert(report, user=water_staff)
        member = MembershipFactory(neighborhood=place, verified=True).user

        response = api_as(member).post(alert_url(report, "confirm"))

        assert error_of(response, 404)["code"] == "not_found"

    @pytest.mark.parametrize("action", ["confirm", "gone", "retract", "verify", "resolve"])
    def test_an_action_on_an_unknown_alert_is_a_404(self, api_as, water_staff, action):
        response = api_as(water_staff).post(f"{ALERTS}999999/{action}/", {"reason": "x"})

        assert error_of(response, 404)["code"] == "not_found"


class TestCategories:
    def test_lists_categories_with_lifetime_and_who_may_report(self, api):
        response = api.get(CATEGORIES)

        assert response.status_code == 200
        by_slug = {c["slug"]: c for c in response.json()}
        assert by_slug["street-conditions"] == {
            "slug": "street-conditions",
            "name": "Street conditions",
            "description": "Flooding, ice, downed trees and wires",
            "lifetime_hours": 24,
            "default_radius_m": 150,
            "residents_may_report": True,
        }
        assert by_slug["weather"]["residents_may_report"] is False
        assert list(by_slug)[0] == "public-safety"


class TestNotifications:
    def note(self, user, n: int, **kwargs) -> Notification:
        return notify(user, kind="test", title=f"Note {n}", key=f"test:{n}", **kwargs)

    def test_lists_only_ones_own_newest_first_with_the_unread_count(self, api_as):
        person, other = VerifiedUserFactory(), VerifiedUserFactory()
        notes = [self.note(person, n, severity=Severity.WARNING) for n in range(3)]
        self.note(other, 9)
        Notification.objects.filter(pk=notes[0].pk).update(read_at=timezone.now())

        body = api_as(person).get(NOTIFICATIONS).json()

        assert body["count"] == 3 and body["unread_count"] == 2
        assert [n["id"] for n in body["results"]] == [n.pk for n in reversed(notes)]
        assert body["results"][0] == {
            "id": notes[2].pk,
            "kind": "test",
            "severity": "warning",
            "title": "Note 2",
            "body": "",
            "url": "",
            "alert": None,
            "created_at": body["results"][0]["created_at"],
            "read_at": None,
        }

    def test_unread_keeps_the_unread_ones(self, api_as):
        person = VerifiedUserFactory()
        read, unread = self.note(person, 1), self.note(person, 2)
        Notification.objects.filter(pk=read.pk).update(read_at=timezone.now())

        body = api_as(person).get(NOTIFICATIONS, {"unread": "1"}).json()

        assert [n["id"] for n in body["results"]] == [unread.pk]
        assert body["count"] == 1 and body["unread_count"] == 1

    def test_an_official_notice_reaches_the_members_inbox(
        self, api_as, place, water_staff, django_capture_on_commit_callbacks
    ):
        member = MembershipFactory(neighborhood=place).user
        with django_capture_on_commit_callbacks(execute=True):
            notice = official_notice(place, staff=water_staff, title="Boil water")

        item = api_as(member).get(NOTIFICATIONS).json()["results"][0]

        assert item["alert"] == notice.pk and item["title"] == "Boil water"
        assert item["url"] == notice.get_absolute_url()

    def test_is_paginated(self, api_as, settings):
        settings.ENGAGEMENT = {"PAGE_SIZE": 2}
        person = VerifiedUserFactory()
        for n in range(3):
            self.note(person, n)

        body = api_as(person).get(NOTIFICATIONS).json()

        assert len(body["results"]) == 2 and body["next"].endswith("?page=2")

    @pytest.mark.parametrize("count", [3, 30])
    def test_the_number_of_queries_does_not_grow(
        self, token_client, django_assert_num_queries, count
    ):
        person = VerifiedUserFactory()
        client = token_client(person)
        client.get("/api/v1/me/")
        for n in range(count):
            self.note(person, n)

        # token with its user, count, page, unread count
        with django_assert_num_queries(4):
            response = client.get(NOTIFICATIONS, {"page_size": 100})

        assert len(response.json()["results"]) == count

    def test_marking_some_read_touches_only_ones_own(self, api_as):
        person, other = VerifiedUserFactory(), VerifiedUserFactory()
        first, second, third = (self.note(person, n) for n in range(3))
        theirs = self.note(other, 1)

        response = api_as(person).post(
            MARK_READ, {"ids": [first.pk, second.pk, theirs.pk]}, format="json"
        )

        assert response.status_code == 200, response.content
        assert response.json() == {"marked": 2, "unread_count": 1}
        assert Notification.objects.get(pk=third.pk).read_at is None
        assert Notification.objects.get(pk=theirs.pk).read_at is None

    def test_marking_all_read(self, api_as):
        person, other = VerifiedUserFactory(), VerifiedUserFactory()
        for n in range(3):
            self.note(person, n)
        self.note(other, 1)
        client = api_as(person)

        marked = client.post(MARK_READ, {"all": True}, format="json").json()
        again = client.post(MARK_READ, {"all": True}, format="json").json()

        assert marked == {"marked": 3, "unread_count": 0}
        assert again == {"marked": 0, "unread_count": 0}
        assert Notification.objects.filter(user=other, read_at__isnull=True).count() == 1

    @pytest.mark.parametrize(
        "payload",
        [
            pytest.param({}, id="nothing"),
            pytest.param({"ids": []}, id="no-ids"),
            pytest.param({"ids": [1], "all": True}, id="both"),
            pytest.param({"ids": ["seven"]}, id="not-numbers"),
            pytest.param({"ids": 7}, id="not-a-list"),
        ],
    )
    def test_a_bad_request_names_the_ids(self, api_as, payload):
        error = error_of(api_as(VerifiedUserFactory()).post(MARK_READ, payload, format="json"), 400)

        assert "ids" in error["fields"]

    @pytest.mark.parametrize(("method", "path"), [("get", NOTIFICATIONS), ("post", MARK_READ)])
    def test_anonymous_is_a_json_401(self, api, method, path):
        response = getattr(api, method)(path)

        assert error_of(response, 401)["code"] == "not_authenticated"
        assert response["WWW-Authenticate"] == "Token"

    def test_a_token_works(self, token_client):
        person = VerifiedUserFactory()
        self.note(person, 1)

        body = token_client(person, scheme="Bearer").get(NOTIFICATIONS).json()

        assert body["unread_count"] == 1


ALERT_PATHS = {
    "/api/v1/alerts/": {"get", "post"},
    "/api/v1/alerts/categories/": {"get"},
    "/api/v1/alerts/{id}/": {"get", "patch"},
    "/api/v1/alerts/{id}/confirm/": {"post"},
    "/api/v1/alerts/{id}/gone/": {"post"},
    "/api/v1/alerts/{id}/retract/": {"post"},
    "/api/v1/alerts/{id}/verify/": {"post"},
    "/api/v1/alerts/{id}/resolve/": {"post"},
    "/api/v1/alerts/{id}/dismiss/": {"post"},
    "/api/v1/notifications/": {"get"},
    "/api/v1/notifications/read/": {"post"},
}


@pytest.fixture(scope="module")
def schema(django_db_setup, django_db_blocker) -> dict:
    with django_db_blocker.unblock():
        response = APIClient().get("/api/v1/schema/", {"format": "json"})
    assert response.status_code == 200
    return json.loads(response.content)


class TestSchema:
    def test_lists_every_alerts_and_notifications_operation(self, schema):
        for path, methods in ALERT_PATHS.items():
            assert path in schema["paths"], path
            assert set(schema["paths"][path]) >= methods, path

    def test_the_alert_shape_matches_the_payload(self, schema, place):
        notice = official_notice(place)
        documented = schema["components"]["schemas"]["Alert"]["properties"]

        assert set(documented) == set(services.alert_payload(notice))

    def test_lists_are_paginated_with_filters(self, schema):
        operation = schema["paths"]["/api/v1/alerts/"]["get"]
        names = {p["name"] for p in operation["parameters"]}

        assert names >= {"neighborhood", "kind", "category", "mine", "page", "page_size"}
        inbox = schema["components"]["schemas"]["PaginatedNotificationList"]
        assert {"count", "next", "results", "unread_count"} <= set(inbox["properties"])

    def test_posting_accepts_json_and_multipart(self, schema):
        content = schema["paths"]["/api/v1/alerts/"]["post"]["requestBody"]["content"]

        assert {"application/json", "multipart/form-data"} <= set(content)
        fields = content["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
        properties = schema["components"]["schemas"][fields]["properties"]
        assert properties["severity"]["allOf"] == [{"$ref": "#/components/schemas/SeverityEnum"}]
        assert schema["components"]["schemas"]["SeverityEnum"]["enum"] == [
            "info",
            "advisory",
            "warning",
            "emergency",
        ]

    def test_actions_need_authentication(self, schema):
        operation = schema["paths"]["/api/v1/alerts/{id}/retract/"]["post"]

        assert {"tokenAuth": []} in operation["security"]
        assert {} not in operation["security"]
