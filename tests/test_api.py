"""The JSON API under /api/v1/: lists, lookup, memberships, tokens, the schema and its errors."""

from __future__ import annotations

import json
import re

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils.crypto import get_random_string
from rest_framework.test import APIClient

from neighborhoods.models import ApiToken, Membership, Neighborhood
from neighborhoods.services import issue_api_token
from tests.factories import (
    PASSWORD,
    CityStaffFactory,
    DepartmentFactory,
    MembershipFactory,
    NeighborhoodFactory,
    OrganizationFactory,
    OrganizationMembershipFactory,
    ProfileFactory,
    UserFactory,
    VerifiedUserFactory,
    square_polygon,
)

pytestmark = pytest.mark.django_db

LOCATE = "/api/v1/neighborhoods/locate/"
TOKEN = "/api/v1/auth/token/"
ME = "/api/v1/me/"


def membership_url(neighborhood: Neighborhood) -> str:
    return f"/api/v1/neighborhoods/{neighborhood.slug}/membership/"


def error_of(response, status: int) -> dict:
    """The error body of a JSON error response with this status."""
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["message"]
    return body["error"]


class TestNeighborhoodList:
    def test_lists_slug_name_member_count_and_url_by_name(self, api):
        fishtown = NeighborhoodFactory(name="Fishtown")
        old_city = NeighborhoodFactory(name="Old City")
        MembershipFactory.create_batch(2, neighborhood=old_city)
        MembershipFactory(neighborhood=fishtown)

        response = api.get("/api/v1/neighborhoods/")

        assert response.status_code == 200
        assert response.json() == [
            {
                "slug": "fishtown",
                "name": "Fishtown",
                "member_count": 1,
                "url": "/neighborhoods/fishtown/",
            },
            {
                "slug": "old-city",
                "name": "Old City",
                "member_count": 2,
                "url": "/neighborhoods/old-city/",
            },
        ]

    def test_q_filters_by_name_ignoring_case(self, api):
        for name in ["Old City", "Old Kensington", "Fishtown"]:
            NeighborhoodFactory(name=name)

        assert [n["name"] for n in api.get("/api/v1/neighborhoods/", {"q": "OLD"}).json()] == [
            "Old City",
            "Old Kensington",
        ]
        assert api.get("/api/v1/neighborhoods/", {"q": "nowhere"}).json() == []
        assert len(api.get("/api/v1/neighborhoods/", {"q": "  "}).json()) == 3
        assert api.get("/api/v1/neighborhoods/", {"q": "x" * 5000}).status_code == 200

    def test_the_list_of_the_real_city_has_159_entries(self, api, philly):
        listing = api.get("/api/v1/neighborhoods/").json()

        assert len(listing) == 159
        assert {"slug": "old-city", "name": "Old City"}.items() <= next(
            n for n in listing if n["slug"] == "old-city"
        ).items()

    @pytest.mark.parametrize("authenticated", [False, True], ids=["anonymous", "token"])
    def test_the_number_of_queries_does_not_grow_with_the_data(
        self, api, token_client, authenticated
    ):
        client = token_client(VerifiedUserFactory()) if authenticated else api

        def add_neighborhoods(count: int) -> None:
            for _ in range(count):
                MembershipFactory.create_batch(2, neighborhood=NeighborhoodFactory())

        def queries() -> tuple[int, list]:
            with CaptureQueriesContext(connection) as captured:
                response = client.get("/api/v1/neighborhoods/")
            assert response.status_code == 200
            return len(captured), response.json()

        client.get("/api/v1/me/")  # a token's first use records itself once
        add_neighborhoods(3)
        few, listing = queries()
        add_neighborhoods(27)
        many, listing = queries()

        assert len(listing) == 30
        assert {n["member_count"] for n in listing} == {2}
        assert few == many
        assert many == (2 if authenticated else 1)


class TestNeighborhoodDetail:
    def test_gives_the_boundary_as_geojson_with_its_bbox(self, api):
        neighborhood = NeighborhoodFactory(
            name="Old City", description="Where it began.", boundary=square_polygon(39.95, -75.145)
        )
        MembershipFactory(neighborhood=neighborhood)
        org = OrganizationFactory(name="Old City Civic Association", neighborhoods=[neighborhood])

        response = api.get("/api/v1/neighborhoods/old-city/")

        assert response.status_code == 200
        body = response.json()
        assert body["slug"] == "old-city" and body["name"] == "Old City"
        assert body["description"] == "Where it began."
        assert body["member_count"] == 1
        assert body["boundary"] == square_polygon(39.95, -75.145)
        assert body["bbox"] == pytest.approx([-75.155, 39.94, -75.135, 39.96])
        assert body["organizations"] == [
            {"slug": org.slug, "name": org.name, "verified": False, "website": org.website}
        ]
        assert "CC BY" in body["attribution"]

    def test_a_real_boundary_is_a_multipolygon(self, api, philly):
        body = api.get("/api/v1/neighborhoods/old-city/").json()

        assert body["boundary"]["type"] == "MultiPolygon"
        assert body["boundary"] == philly["Old City"].boundary

    def test_an_unknown_slug_is_a_json_404(self, api):
        assert error_of(api.get("/api/v1/neighborhoods/atlantis/"), 404)["code"] == "not_found"


class TestLocate:
    @pytest.mark.parametrize("lon_name", ["lon", "lng", "long"])
    def test_a_point_in_the_city_gives_its_neighborhood(self, api, philly, lon_name):
        MembershipFactory(neighborhood=philly["Old City"])

        response = api.get(LOCATE, {"lat": "39.9489", lon_name: "-75.1500"})

        assert response.status_code == 200
        assert response.json() == {
            "slug": "old-city",
            "name": "Old City",
            "member_count": 1,
            "url": "/neighborhoods/old-city/",
        }

    @pytest.mark.parametrize(
        ("lat", "lon"), [("39.9259", "-75.1196"), ("0", "0"), ("39.5", "-74.0")]
    )
    def test_a_point_outside_the_city_is_a_json_404(self, api, philly, lat, lon):
        error = error_of(api.get(LOCATE, {"lat": lat, "lon": lon}), 404)

        assert error["code"] == "not_found"

    @pytest.mark.parametrize(
        ("params", "code"),
        [
            pytest.param({}, "missing_parameter", id="nothing"),
            pytest.param({"lon": "-75.15"}, "missing_parameter", id="no-lat"),
            pytest.param({"lat": "39.95"}, "missing_parameter", id="no-lon"),
            pytest.param({"lat": "", "lon": "-75.15"}, "missing_parameter", id="empty-lat"),
            pytest.param({"lat": "39.95", "lon": ""}, "missing_parameter", id="empty-lon"),
            pytest.param({"lat": "north", "lon": "-75.15"}, "invalid_point", id="word"),
            pytest.param({"lat": "39,95", "lon": "-75,15"}, "invalid_point", id="decimal-comma"),
            pytest.param({"lat": "0x27", "lon": "-75.15"}, "invalid_point", id="hex"),
            pytest.param({"lat": "39.95\x00", "lon": "-75.15"}, "invalid_point", id="nul-byte"),
            pytest.param({"lat": "NaN", "lon": "-75.15"}, "invalid_point", id="nan"),
            pytest.param({"lat": "39.95", "lon": "nan"}, "invalid_point", id="nan-lon"),
            pytest.param({"lat": "inf", "lon": "-75.15"}, "invalid_point", id="infinity"),
            pytest.param({"lat": "1e999", "lon": "-75.15"}, "invalid_point", id="overflow"),
            pytest.param({"lat": "91", "lon": "-75.15"}, "invalid_point", id="lat-too-big"),
            pytest.param({"lat": "-90.5", "lon": "0"}, "invalid_point", id="lat-too-small"),
            pytest.param({"lat": "39.95", "lon": "-181"}, "invalid_point", id="lon-too-small"),
            pytest.param({"lat": "39.95", "lon": "540"}, "invalid_point", id="lon-too-big"),
        ],
    )
    def test_a_bad_point_is_a_json_400(self, api, params, code):
        error = error_of(api.get(LOCATE, params), 400)

        assert error["code"] == code

    def test_a_missing_parameter_is_named_in_the_error(self, api):
        error = error_of(api.get(LOCATE, {"lon": "-75.15"}), 400)

        assert error["fields"] == {"lat": ["This parameter is required."]}

    def test_a_post_is_a_json_405(self, api):
        error = error_of(api.post(LOCATE, {"lat": 1, "lon": 1}), 405)

        assert error["code"] == "method_not_allowed"


class TestMembership:
    @pytest.fixture
    def neighborhood(self):
        return NeighborhoodFactory(name="Fishtown")

    @pytest.mark.parametrize("auth", ["session", "Token", "Bearer"])
    def test_join_then_leave(self, api_as, token_client, neighborhood, auth):
        person = VerifiedUserFactory()
        client = api_as(person) if auth == "session" else token_client(person, scheme=auth)

        joined = client.post(membership_url(neighborhood))
        again = client.post(membership_url(neighborhood))

        assert joined.status_code == 201
        assert joined.json() == {
            "neighborhood": "fishtown",
            "role": "member",
            "verified": False,
            "joined_at": joined.json()["joined_at"],
        }
        assert again.status_code == 200
        assert Membership.objects.filter(user=person, neighborhood=neighborhood).count() == 1

        left = client.delete(membership_url(neighborhood))
        left_again = client.delete(membership_url(neighborhood))

        assert (left.status_code, left_again.status_code) == (204, 204)
        assert not Membership.objects.filter(user=person).exists()

    @pytest.mark.parametrize("method", ["post", "delete"])
    def test_anonymous_is_a_json_401_with_a_challenge(self, api, neighborhood, method):
        response = getattr(api, method)(membership_url(neighborhood))

        assert error_of(response, 401)["code"] == "not_authenticated"
        assert response["WWW-Authenticate"] == "Token"

    def test_an_unverified_email_is_a_json_403(self, api_as, neighborhood):
        response = api_as(UserFactory()).post(membership_url(neighborhood))

        error = error_of(response, 403)
        assert error["code"] == "permission_denied"
        assert "Verify your e-mail" in error["message"]
        assert not Membership.objects.exists()

    def test_an_unknown_neighborhood_is_a_json_404(self, api_as):
        response = api_as(VerifiedUserFactory()).post("/api/v1/neighborhoods/atlantis/membership/")

        assert error_of(response, 404)["code"] == "not_found"

    def test_a_session_needs_the_csrf_token(self, neighborhood):
        browser = APIClient(enforce_csrf_checks=True)
        browser.force_login(VerifiedUserFactory())

        refused = browser.post(membership_url(neighborhood))

        assert error_of(refused, 403)["code"] == "permission_denied"
        assert "CSRF" in refused.json()["error"]["message"]
        secret = get_random_string(32)
        browser.cookies[django_settings.CSRF_COOKIE_NAME] = secret
        accepted = browser.post(membership_url(neighborhood), HTTP_X_CSRFTOKEN=secret)
        assert accepted.status_code == 201

    def test_a_token_needs_no_csrf_token(self, neighborhood):
        _, key = issue_api_token(user=VerifiedUserFactory())
        script = APIClient(enforce_csrf_checks=True)
        script.credentials(HTTP_AUTHORIZATION=f"Token {key}")

        assert script.post(membership_url(neighborhood)).status_code == 201


class TestTokens:
    def test_good_credentials_give_a_token_that_works(self, api):
        person = VerifiedUserFactory(email="Resident@Example.org")

        response = api.post(
            TOKEN, {"email": "resident@example.org", "password": PASSWORD}, format="json"
        )

        assert response.status_code == 201
        body = response.json()
        assert body["user_id"] == person.pk
        stored = ApiToken.objects.get(user=person)
        assert stored.key_hash == ApiToken.hash(body["token"]) != body["token"]
        assert body["token"].startswith(stored.prefix)
        api.credentials(HTTP_AUTHORIZATION=f"Token {body['token']}")
        assert api.get(ME).json()["id"] == person.pk

    def test_form_encoded_credentials_work_too(self, api):
        person = VerifiedUserFactory()

        response = api.post(TOKEN, {"email": person.email, "password": PASSWORD})

        assert response.status_code == 201

    @pytest.mark.parametrize(
        ("payload", "status", "code"),
        [
            pytest.param({"password": "wrong"}, 401, "invalid_credentials", id="wrong-password"),
            pytest.param(
                {"email": "nobody@example.org"}, 401, "invalid_credentials", id="unknown-email"
            ),
            pytest.param({"password": None}, 400, "invalid", id="no-password"),
            pytest.param({"email": "not-an-address"}, 400, "invalid", id="malformed-email"),
        ],
    )
    def test_bad_credentials_are_a_json_error(self, api, payload, status, code):
        person = VerifiedUserFactory()
        body = {"email": person.email, "password": PASSWORD, **payload}
        body = {k: v for k, v in body.items() if v is not None}

        error = error_of(api.post(TOKEN, body, format="json"), status)

        assert error["code"] == code
        assert not ApiToken.objects.exists()

    def test_a_missing_field_is_named(self, api):
        error = error_of(api.post(TOKEN, {"email": "a@example.org"}, format="json"), 400)

        assert set(error["fields"]) == {"password"}

    def test_malformed_json_is_a_json_400(self, api):
        response = api.generic("POST", TOKEN, "{not json", content_type="application/json")

        assert error_of(response, 400)["code"] == "parse_error"

    def test_an_unverified_email_gets_no_token(self, api):
        person = UserFactory()

        response = api.post(TOKEN, {"email": person.email, "password": PASSWORD}, format="json")

        assert error_of(response, 403)["code"] == "permission_denied"

    def test_a_deactivated_account_gets_no_token(self, api):
        person = VerifiedUserFactory(is_active=False)

        response = api.post(TOKEN, {"email": person.email, "password": PASSWORD}, format="json")

        assert error_of(response, 401)["code"] == "invalid_credentials"

    def test_attempts_are_rate_limited_per_client(self, api, frozen_rate_window, settings):
        settings.ENGAGEMENT = {"API_LOGIN_ATTEMPTS_PER_MINUTE": 3}
        person = VerifiedUserFactory()
        bad = {"email": person.email, "password": "guess"}
        for _ in range(3):
            assert api.post(TOKEN, bad, format="json").status_code == 401

        response = api.post(TOKEN, {"email": person.email, "password": PASSWORD}, format="json")

        assert error_of(response, 429)["code"] == "rate_limited"
        assert 1 <= int(response["Retry-After"]) <= 60
        other_client = api.post(
            TOKEN,
            {"email": person.email, "password": PASSWORD},
            format="json",
            REMOTE_ADDR="198.51.100.7",
        )
        assert other_client.status_code == 201

    def test_the_oldest_tokens_are_dropped_beyond_the_limit(self, settings):
        settings.ENGAGEMENT = {"API_TOKENS_PER_USER": 2}
        person = VerifiedUserFactory()
        keys = [issue_api_token(user=person)[1] for _ in range(3)]

        statuses = []
        for key in keys:
            client = APIClient()
            client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
            statuses.append(client.get(ME).status_code)

        assert statuses == [401, 200, 200]


class TestAuthorizationHeader:
    @pytest.mark.parametrize("scheme", ["Token", "Bearer", "token", "bearer"])
    def test_token_and_bearer_schemes_are_accepted(self, token_client, scheme):
        person = VerifiedUserFactory()

        response = token_client(person, scheme=scheme).get(ME)

        assert response.status_code == 200
        assert response.json()["id"] == person.pk

    @pytest.mark.parametrize(
        "header",
        [
            pytest.param("Token not-a-real-token", id="unknown-token"),
            pytest.param("Bearer " + "x" * 500, id="absurdly-long-token"),
            pytest.param("Token", id="no-key"),
            pytest.param("Token two parts", id="too-many-parts"),
        ],
    )
    def test_a_bad_token_is_a_json_401(self, api, header):
        api.credentials(HTTP_AUTHORIZATION=header)

        error = error_of(api.get(ME), 401)

        assert error["code"] == "authentication_failed"

    def test_a_bad_token_is_refused_even_where_no_sign_in_is_needed(self, api):
        api.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")

        assert error_of(api.get("/api/v1/neighborhoods/"), 401)["code"] == "authentication_failed"

    def test_the_token_of_a_deactivated_account_stops_working(self, token_client):
        person = VerifiedUserFactory()
        client = token_client(person)
        person.is_active = False
        person.save()

        assert error_of(client.get(ME), 401)["code"] == "authentication_failed"

    def test_other_schemes_are_ignored(self, api):
        api.credentials(HTTP_AUTHORIZATION="Basic dXNlcjpwYXNz")

        assert error_of(api.get(ME), 401)["code"] == "not_authenticated"


class TestMe:
    def test_anonymous_is_a_json_401(self, api):
        response = api.get(ME)

        assert error_of(response, 401)["code"] == "not_authenticated"

    def test_describes_the_person_without_their_home_location(self, api_as):
        old_city = NeighborhoodFactory(name="Old City")
        fishtown = NeighborhoodFactory(name="Fishtown")
        resident = MembershipFactory(neighborhood=old_city, verified=True)
        person = resident.user
        profile = person.engagement_profile
        profile.display_name = "Betsy"
        profile.save()
        MembershipFactory(user=person, neighborhood=fishtown, role=Membership.Role.MODERATOR)
        org = OrganizationMembershipFactory(user=person, admin=True).organization

        response = api_as(person).get(ME)

        assert response.status_code == 200
        body = response.json()
        assert body["id"] == person.pk and body["email"] == person.email
        assert body["display_name"] == "Betsy"
        assert body["home_neighborhood"] == "old-city"
        assert body["is_city_staff"] is False and body["department"] is None
        assert [
            (m["neighborhood"], m["role"], m["verified"], m["level"]) for m in body["memberships"]
        ] == [
            ("old-city", "member", True, "verified"),
            ("fishtown", "moderator", False, "email_verified"),
        ]
        assert body["organizations"] == [{"slug": org.slug, "name": org.name, "role": "admin"}]
        text = json.dumps(body)
        numbers = set(re.findall(r"-?\d+(?:\.\d+)?", text))  # whole tokens, not substrings
        assert str(profile.home_lat) not in numbers and str(profile.home_lon) not in numbers
        assert "home_lat" not in text and "home_lon" not in text

    def test_city_staff_see_their_department(self, token_client):
        staff = CityStaffFactory(department=DepartmentFactory(name="Streets Department")).user

        body = token_client(staff).get(ME).json()

        assert body["is_city_staff"] is True
        assert body["department"] == "Streets Department"
        assert body["memberships"] == [] and body["home_neighborhood"] is None

    def test_a_person_without_a_profile_is_neighbor_and_a_number(self, token_client):
        person = VerifiedUserFactory()

        body = token_client(person).get(ME).json()

        assert body["display_name"] == f"Neighbor {person.pk}"

    def test_a_home_claimed_member_has_the_home_claimed_level(self, token_client):
        membership = MembershipFactory(home_claimed=True)
        ProfileFactory(user=membership.user)

        body = token_client(membership.user).get(ME).json()

        assert body["memberships"][0]["level"] == "home_claimed"


API_PATHS = [
    "/api/v1/alerts/",
    "/api/v1/alerts/categories/",
    "/api/v1/alerts/{id}/",
    "/api/v1/alerts/{id}/confirm/",
    "/api/v1/alerts/{id}/dismiss/",
    "/api/v1/alerts/{id}/gone/",
    "/api/v1/alerts/{id}/resolve/",
    "/api/v1/alerts/{id}/retract/",
    "/api/v1/alerts/{id}/verify/",
    "/api/v1/auth/token/",
    "/api/v1/me/",
    "/api/v1/neighborhoods/",
    "/api/v1/neighborhoods/locate/",
    "/api/v1/neighborhoods/{slug}/",
    "/api/v1/neighborhoods/{slug}/membership/",
    "/api/v1/notifications/",
    "/api/v1/notifications/read/",
    "/api/v1/organizations/",
]


@pytest.fixture(scope="module")
def schema(django_db_setup, django_db_blocker) -> dict:
    """The OpenAPI document, generated once for the module (it reads no data)."""
    with django_db_blocker.unblock():
        response = APIClient().get("/api/v1/schema/", {"format": "json"})
    assert response.status_code == 200
    return json.loads(response.content)


class TestSchema:
    def test_is_an_openapi_3_document_listing_every_endpoint(self, schema):
        assert schema["openapi"].startswith("3.")
        assert set(API_PATHS) <= set(schema["paths"])
        assert set(schema["paths"]["/api/v1/neighborhoods/{slug}/membership/"]) >= {
            "post",
            "delete",
        }
        assert "post" in schema["paths"]["/api/v1/auth/token/"]

    def test_documents_token_authentication(self, schema):
        assert schema["components"]["securitySchemes"]["tokenAuth"]["name"] == "Authorization"

    def test_documents_the_locate_parameters(self, schema):
        parameters = schema["paths"]["/api/v1/neighborhoods/locate/"]["get"]["parameters"]

        assert {p["name"] for p in parameters if p.get("required")} == {"lat", "lon"}

    def test_lists_only_the_plugins_api(self, schema):
        """Wagtail's own DRF views stay out; every app's endpoints are in (they test their own)."""
        assert all(path.startswith("/api/v1/") for path in schema["paths"])
        assert {path.split("/")[3] for path in schema["paths"]} >= {
            "alerts",
            "auth",
            "me",
            "neighborhoods",
            "notifications",
            "organizations",
            "threads",
        }

    def test_is_yaml_by_default(self, api):
        response = api.get("/api/v1/schema/")

        assert response.status_code == 200
        assert response["Content-Type"].startswith("application/vnd.oai.openapi")
        assert b"/api/v1/neighborhoods/locate/:" in response.content


class TestUnknownEndpoints:
    @pytest.mark.parametrize(
        "path", ["/api/v1/xyz/", "/api/v1/neighborhoods/old-city/nothing/", "/api/v1/xyz"]
    )
    def test_an_unknown_api_path_is_a_json_404(self, api, path):
        assert error_of(api.get(path, follow=True), 404)["code"] == "not_found"

    def test_an_unknown_api_path_is_a_json_404_for_any_method(self, api_as):
        client = api_as(VerifiedUserFactory())

        assert error_of(client.post("/api/v1/xyz/", {}), 404)["code"] == "not_found"
        assert error_of(client.delete("/api/v1/xyz/"), 404)["code"] == "not_found"
