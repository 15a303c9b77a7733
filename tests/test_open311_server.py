"""The Open311 GeoReport v2 server: every resource in JSON and XML, checked against the
open311/schema-validation JSON Schemas (XML after the Spark conversion), with one and several
items; filing with keys and rate limits; the standard's filters, pages and errors."""

from __future__ import annotations

import io
import json
import re
from datetime import UTC, timedelta
from datetime import timezone as dt_timezone
from pathlib import Path
from urllib.parse import urlencode, urlparse

import pytest
from defusedxml import ElementTree as SafeET
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from jsonschema import Draft4Validator, FormatChecker
from PIL import Image
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from engagement import services
from engagement.models import Case, CaseNote, CasePhoto, Open311Key, ServiceType
from engagement.open311 import keys
from tests import factories as f

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media_root")]

SCHEMA_DIR = Path(__file__).resolve().parent / "data" / "open311-schemas"
BASE = "/open311/v2"
W3C = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(Z|[+-]\d{2}:\d{2})$")

QUESTIONS = [
    f.SIZE_QUESTION,
    f.LANES_WITH_PARKING,
    {"code": "depth", "prompt": "Depth in cm", "datatype": "number"},
    {"code": "note", "prompt": "Do not stand in traffic.", "variable": False},
]


# Schemas and the Spark conversion -----------------------------------------------------------

# The two documents the schema set does not cover, written from the standard.
ERRORS_SCHEMA = {
    "type": "array",
    "minItems": 1,
    "items": {
        "type": "object",
        "required": ["code", "description"],
        "additionalProperties": False,
        "properties": {"code": {"type": "integer"}, "description": {"type": "string"}},
    },
}
DISCOVERY_SCHEMA = {
    "type": "object",
    "required": ["changeset", "contact", "key_service", "endpoints"],
    "properties": {
        "changeset": {"type": "string", "format": "date-time"},
        "contact": {"type": "string"},
        "key_service": {"type": "string"},
        "endpoints": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["specification", "url", "changeset", "type", "formats"],
                "properties": {
                    "specification": {"type": "string", "format": "uri"},
                    "url": {"type": "string", "format": "uri"},
                    "changeset": {"type": "string", "format": "date-time"},
                    "type": {"enum": ["production", "test"]},
                    "formats": {
                        "type": "array",
                        "items": {"enum": ["text/xml", "application/json"]},
                    },
                },
            },
        },
    },
}
POSTED_SCHEMA = {
    "type": "array",
    "minItems": 1,
    "items": {
        "type": "object",
        "required": ["service_request_id"],
        "properties": {
            "service_request_id": {"type": "string"},
            "token": {"type": "string"},
            "service_notice": {"type": ["string", "null"]},
            "account_id": {"type": ["string", "null"]},
        },
    },
}

checker = FormatChecker(formats=())


@checker.checks("date-time")
def _w3c(value) -> bool:
    return not isinstance(value, str) or bool(W3C.match(value))


@checker.checks("uri")
def _uri(value) -> bool:
    if not isinstance(value, str):
        return True
    parts = urlparse(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _load(name: str) -> dict:
    return json.loads((SCHEMA_DIR / name).read_text(encoding="utf-8"))


REGISTRY = Registry().with_resources(
    (name, Resource.from_contents(_load(name), default_specification=DRAFT4))
    for name in ("request.json", "requests.json", "service.json", "services.json")
)
SCHEMAS = {
    "services": _load("services.json"),
    "service_definition": _load("service-definition.json"),
    "service_requests": _load("requests.json"),
    "errors": ERRORS_SCHEMA,
    "discovery": DISCOVERY_SCHEMA,
    "posted": POSTED_SCHEMA,
}


def validate(kind: str, data) -> None:
    Draft4Validator(SCHEMAS[kind], registry=REGISTRY, format_checker=checker).validate(data)


# Containers of the Spark convention and the XML text of typed leaves (everything else is a
# string; an empty element is null).
CONTAINERS = {
    "services": "service",
    "service_requests": "request",
    "attributes": "attribute",
    "values": "value",
    "errors": "error",
    "endpoints": "endpoint",
    "formats": "format",
    "notes": "note",
}
NUMBERS = {"lat", "long"}
INTEGERS = {"order", "supporter_count"}
BOOLEANS = {"metadata", "variable", "required"}


def spark(element, parent: str = "") -> object:
    """XML → JSON by the Spark convention: a container is a list even with one child."""
    children = list(element)
    if element.tag in CONTAINERS:
        assert all(child.tag == CONTAINERS[element.tag] for child in children), element.tag
        return [spark(child, element.tag) for child in children]
    if children:
        tags = [child.tag for child in children]
        assert len(set(tags)) == len(tags), f"repeated child in <{element.tag}>"
        return {child.tag: spark(child, element.tag) for child in children}
    text = element.text
    if text is None:
        return None
    if element.tag in BOOLEANS:
        assert text in ("true", "false"), text
        return text == "true"
    if element.tag in NUMBERS:
        return float(text)
    if element.tag in INTEGERS or (element.tag == "code" and parent == "error"):
        return int(text)
    return text


def from_xml(response) -> object:
    body = response.content.decode()
    assert body.startswith('<?xml version="1.0" encoding="utf-8"?>')
    return spark(SafeET.fromstring(response.content))


def answer(response, fmt: str, kind: str, status: int = 200):
    """The document of a response, checked: status, content type, schema."""
    assert response.status_code == status, response.content
    if fmt == "json":
        assert response["Content-Type"] == "application/json; charset=utf-8"
        data = json.loads(response.content)
    else:
        assert response["Content-Type"] == "text/xml; charset=utf-8"
        data = from_xml(response)
    validate(kind, data)
    return data


def error_descriptions(response, fmt: str, status: int) -> list[str]:
    return [e["description"] for e in answer(response, fmt, "errors", status)]


# Fixtures and helpers -------------------------------------------------------------------------


@pytest.fixture
def place():
    return f.NeighborhoodFactory(name="Old City")


@pytest.fixture
def pothole():
    return f.service_type(
        "pothole",
        questions=QUESTIONS,
        name="Pothole",
        group="Streets",
        keywords="hole, road",
        description="A hole in the road.",
    )


@pytest.fixture
def secret():
    return keys.issue_key("Test client")[1]


def post(client, fmt: str = "json", query: dict | None = None, **data):
    url = f"{BASE}/requests.{fmt}"
    if query:
        url += "?" + urlencode(query)
    return client.post(url, data)


def filing(place, secret, **extra) -> dict:
    lat, lon = f.inside(place)
    data = {"api_key": secret, "service_code": "pothole", "lat": lat, "long": lon}
    data["attribute[size]"] = "large"
    data.update(extra)
    return data


def web_case(place, kind, **kwargs) -> Case:
    """A case filed on the web by a resident (answering the pothole's required question)."""
    return f.case(place, kind=kind, answers={"size": "small"}, **kwargs)


def staff_of(kind):
    return f.CityStaffFactory(department=kind.department).user


def jpeg(name: str = "photo.jpg") -> io.BytesIO:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 40, 40)).save(out, "JPEG")
    out.seek(0)
    out.name = name
    return out


def make_cases(
    kind, place, count: int, *, start: int = 0, photos: bool = True, notes: bool = True
) -> list[Case]:
    """Many cases at once, with a photo and public notes each, without the filing machinery."""
    now = timezone.now()
    lat, lon = f.inside(place)
    cases = Case.objects.bulk_create(
        Case(
            tracking_number=f"26-{900000 + start + n:06d}",
            service_type=kind,
            department=kind.department,
            description=f"Case {n}",
            lat=lat,
            lon=lon,
            neighborhood=place,
            channel=Case.Channel.WEB,
            contact_email=f"person{n}@example.org",
            created_at=now - timedelta(minutes=start + n),
            updated_at=now - timedelta(minutes=start + n),
            expected_at=now + timedelta(days=3),
        )
        for n in range(count)
    )
    if photos:
        CasePhoto.objects.bulk_create(
            CasePhoto(case=case, url=f"https://photos.example.org/{case.pk}.jpg") for case in cases
        )
    if notes:
        CaseNote.objects.bulk_create(
            CaseNote(case=case, kind=CaseNote.Kind.NOTE, text=f"Crew visited {case.pk}.")
            for case in cases
        )
    return cases


# Discovery -------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/open311/discovery", f"{BASE}/discovery"])
def test_discovery_is_served_outside_and_inside_the_endpoint_in_both_formats(client, pothole, url):
    response = client.get(url + ".json")
    assert response["Content-Type"] == "application/json"
    data = json.loads(response.content)
    validate("discovery", data)
    endpoint = data["endpoints"][0]
    assert endpoint["url"] == "http://testserver/open311/v2"
    assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"
    assert endpoint["formats"] == ["text/xml", "application/json"]
    pothole.refresh_from_db()
    expected = timezone.localtime(pothole.updated_at).replace(microsecond=0).isoformat()
    assert data["changeset"] == endpoint["changeset"] == expected

    response = client.get(url + ".xml", {"jurisdiction_id": ""})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/xml"
    xml = from_xml(response)
    validate("discovery", xml)
    assert xml == data
    assert response["Access-Control-Allow-Origin"] == "*"  # public data, readable from any page


def test_discovery_changeset_moves_when_a_service_changes(client, pothole):
    before = json.loads(client.get(f"{BASE}/discovery.json").content)["changeset"]
    ServiceType.objects.filter(pk=pothole.pk).update(
        updated_at=pothole.updated_at + timedelta(hours=1)
    )
    after = json.loads(client.get(f"{BASE}/discovery.json").content)["changeset"]
    assert after > before


# Services and definitions ----------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_services_list_the_active_types_with_one_and_several_items(client, pothole, fmt):
    one = answer(client.get(f"{BASE}/services.{fmt}"), fmt, "services")
    assert one == [
        {
            "service_code": "pothole",
            "service_name": "Pothole",
            "description": "A hole in the road.",
            "metadata": True,
            "type": "realtime",
            "keywords": "hole, road",
            "group": "Streets",
        }
    ]
    f.service_type("graffiti", department=pothole.department, sort_order=1)
    f.service_type("retired", department=pothole.department, is_active=False)
    several = answer(client.get(f"{BASE}/services.{fmt}"), fmt, "services")
    assert [s["service_code"] for s in several] == ["graffiti", "pothole"]
    graffiti = several[0]
    assert graffiti["metadata"] is False
    if fmt == "json":
        assert graffiti["description"] == graffiti["keywords"] == graffiti["group"] == ""


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_a_definition_lists_the_questions_in_order_with_their_values(client, pothole, fmt):
    data = answer(client.get(f"{BASE}/services/pothole.{fmt}"), fmt, "service_definition")
    assert data["service_code"] == "pothole"
    attributes = data["attributes"]
    assert [a["order"] for a in attributes] == [1, 2, 3, 4]
    assert [a["code"] for a in attributes] == ["size", "lanes", "depth", "note"]
    size, lanes, depth, note = attributes
    assert size == {
        "variable": True,
        "code": "size",
        "datatype": "singlevaluelist",
        "required": True,
        "datatype_description": None,
        "order": 1,
        "description": "How big is it?",
        "values": [
            {"key": "small", "name": "Smaller than a plate"},
            {"key": "large", "name": "Larger than a plate"},
        ],
    }
    assert [v["key"] for v in lanes["values"]] == ["bike", "car", "parking"]
    assert lanes["required"] is False and lanes["datatype"] == "multivaluelist"
    assert depth["values"] == [] and depth["datatype"] == "number"
    assert note["variable"] is False and note["required"] is False


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_a_definition_with_one_attribute_and_one_value_is_still_made_of_lists(client, fmt):
    f.service_type(
        "dumping",
        questions=[
            {
                "code": "kind",
                "prompt": "What was dumped?",
                "datatype": "singlevaluelist",
                "datatype_description": "Pick the closest.",
                "values": "tyres|Tyres",
            }
        ],
    )
    data = answer(client.get(f"{BASE}/services/dumping.{fmt}"), fmt, "service_definition")
    assert data["attributes"][0]["values"] == [{"key": "tyres", "name": "Tyres"}]
    assert data["attributes"][0]["datatype_description"] == "Pick the closest."


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_an_unknown_or_retired_service_is_a_404_in_the_asked_format(client, pothole, fmt):
    f.service_type("retired", department=pothole.department, is_active=False)
    for code in ("nothing", "retired"):
        messages = error_descriptions(client.get(f"{BASE}/services/{code}.{fmt}"), fmt, 404)
        assert code in messages[0]


def test_codes_with_dots_and_the_singular_alias_of_old_clients(client, pothole):
    f.service_type("tree.down", department=pothole.department)
    data = answer(client.get(f"{BASE}/services/tree.down.json"), "json", "service_definition")
    assert data == {"service_code": "tree.down", "attributes": []}
    alias = answer(client.get(f"{BASE}/service/pothole.xml"), "xml", "service_definition")
    assert alias["service_code"] == "pothole"


# Filing ------------------------------------------------------------------------------------


def test_a_client_files_a_case_with_single_and_multi_value_attributes(client, place, pothole):
    key, secret = keys.issue_key("FixMyStreet")
    data = filing(place, secret, description="Deep hole\nin the bike lane", account_id="acc-9")
    data["attribute[lanes][]"] = ["bike", "car"]
    data["attribute[depth]"] = "7.5"
    data.update(email="ana@example.org", first_name="Ana", last_name="Ruiz", phone="215-555-0100")
    data["device_id"] = "device-1"
    items = answer(client.post(f"{BASE}/requests.json", data), "json", "posted")
    assert len(items) == 1
    item = items[0]
    case = Case.objects.get(tracking_number=item["service_request_id"])
    assert item["account_id"] == "acc-9"
    assert "Streets Department expects to resolve it by" in item["service_notice"]
    assert case.channel == "open311"
    assert case.api_client == "FixMyStreet"
    assert case.answers == {"size": "large", "lanes": ["bike", "car"], "depth": "7.5"}
    assert case.description == "Deep hole\nin the bike lane"
    assert (case.contact_name, case.contact_email, case.contact_phone) == (
        "Ana Ruiz",
        "ana@example.org",
        "215-555-0100",
    )
    assert case.reporter is None and case.neighborhood == place
    key.refresh_from_db()
    assert key.last_used_at is not None


def test_repeated_attribute_values_without_brackets_also_make_a_list(client, place, pothole):
    secret = keys.issue_key("Old library")[1]
    data = filing(place, secret)
    data["attribute[lanes]"] = ["bike", "parking"]
    items = answer(client.post(f"{BASE}/requests.json", data), "json", "posted")
    case = Case.objects.get(tracking_number=items[0]["service_request_id"])
    assert case.answers["lanes"] == ["bike", "parking"]


def test_a_urlencoded_body_with_the_key_and_jurisdiction_in_the_query_string(
    client, settings, place, pothole, secret
):
    settings.ENGAGEMENT = {"OPEN311_JURISDICTION": "phila.gov"}
    body = filing(place, "", description="Urlencoded")
    del body["api_key"]
    response = client.post(
        f"{BASE}/requests.xml?" + urlencode({"api_key": secret, "jurisdiction_id": "phila.gov"}),
        urlencode(body),
        content_type="application/x-www-form-urlencoded; charset=utf-8",
    )
    items = answer(response, "xml", "posted")
    assert Case.objects.get(tracking_number=items[0]["service_request_id"]).description == (
        "Urlencoded"
    )


def test_post_answers_in_xml(client, place, pothole, secret):
    response = client.post(f"{BASE}/requests.xml", filing(place, secret))
    items = answer(response, "xml", "posted")
    assert re.match(r"^\d{2}-\d{6}$", items[0]["service_request_id"])
    assert items[0]["service_notice"]


def test_posting_needs_no_csrf_token_and_never_meets_a_trailing_slash_redirect(
    place, pothole, secret
):
    client = Client(enforce_csrf_checks=True)
    answer(client.post(f"{BASE}/requests.json", filing(place, secret)), "json", "posted")
    response = client.post(f"{BASE}/requests.json/", filing(place, secret))
    assert error_descriptions(response, "json", 404) == [
        "Remove the slash at the end of the address."
    ]
    assert Case.objects.count() == 1


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_filing_needs_an_active_key(client, place, pothole, fmt):
    data = filing(place, "")
    del data["api_key"]
    assert error_descriptions(post(client, fmt, **data), fmt, 403)
    assert error_descriptions(post(client, fmt, **{**data, "api_key": "wrong"}), fmt, 403)
    secret = keys.issue_key("Revoked")[1]
    assert keys.revoke_key("Revoked")
    messages = error_descriptions(post(client, fmt, **{**data, "api_key": secret}), fmt, 403)
    assert messages == ["api_key: missing, unknown or revoked."]
    assert not Case.objects.exists()


@pytest.mark.usefixtures("frozen_rate_window")
def test_each_key_has_its_own_rate_limit(client, place, pothole):
    slow_key, slow = keys.issue_key("Slow", requests_per_minute=2)
    fast = keys.issue_key("Fast")[1]
    for _ in range(2):
        answer(post(client, **filing(place, slow)), "json", "posted")
    response = post(client, **filing(place, slow))
    messages = error_descriptions(response, "json", 429)
    assert "Too many requests with this api_key" in messages[0]
    assert int(response["Retry-After"]) > 0
    xml = post(client, "xml", **filing(place, slow))
    assert error_descriptions(xml, "xml", 429)
    assert xml["Retry-After"]
    answer(post(client, **filing(place, fast)), "json", "posted")
    assert Case.objects.filter(api_client="Slow").count() == 2


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_a_missing_required_attribute_is_a_400_naming_it(client, place, pothole, secret, fmt):
    data = filing(place, secret)
    del data["attribute[size]"]
    data["attribute[lanes][]"] = ["bike", "boat"]
    messages = error_descriptions(post(client, fmt, **data), fmt, 400)
    assert "attribute[size]: Answer “How big is it?”." in messages
    assert any(m.startswith("attribute[lanes]:") and "boat" in m for m in messages)
    assert not Case.objects.exists()


def test_an_unknown_attribute_is_named_too(client, place, pothole, secret):
    data = filing(place, secret, **{"attribute[colour]": "red"})
    messages = error_descriptions(post(client, **data), "json", 400)
    assert messages == ["attribute[colour]: “colour” is not a question of Pothole."]


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ({"lat": "abc", "long": "1.0"}, "lat: give a decimal number from -90 to 90 (WGS84)."),
        ({"lat": "1.0", "long": "200"}, "long: give a decimal number from -180 to 180 (WGS84)."),
        ({"lat": "1.0"}, "lat, long: give both, or neither."),
        ({"lat": "nan", "long": "1.0"}, "lat: give a decimal number from -90 to 90 (WGS84)."),
        ({"lat": "", "long": ""}, "location: give lat and long, address_string or address_id."),
        ({"lat": "-33.9", "long": "151.2"}, "That place is outside the city's neighborhoods."),
    ],
)
def test_bad_locations_are_a_400_with_one_error_each(
    client, place, pothole, secret, location, expected
):
    data = {"api_key": secret, "service_code": "pothole", "attribute[size]": "small", **location}
    messages = error_descriptions(post(client, **data), "json", 400)
    assert len(messages) == 1 and messages[0].endswith(expected)


def test_several_problems_come_back_together(client, place, pothole, secret):
    data = {"api_key": secret, "service_code": "pothole", "lat": "95", "long": "x"}
    messages = error_descriptions(post(client, "xml", **data), "xml", 400)
    assert messages == [
        "lat: give a decimal number from -90 to 90 (WGS84).",
        "long: give a decimal number from -180 to 180 (WGS84).",
        "attribute[size]: Answer “How big is it?”.",
    ]


@pytest.mark.parametrize("name", ["long", "lon"])
def test_longitude_may_be_called_long_or_lon(client, place, pothole, secret, name):
    lat, lon = f.inside(place)
    data = {"api_key": secret, "service_code": "pothole", "attribute[size]": "small"}
    items = answer(post(client, **data, lat=lat, **{name: lon}), "json", "posted")
    case = Case.objects.get(tracking_number=items[0]["service_request_id"])
    assert (case.lat, case.lon) == (round(lat, 6), round(lon, 6))


def test_an_address_alone_or_an_address_id_alone_is_a_location(client, place, pothole, secret):
    base = {"api_key": secret, "service_code": "pothole", "attribute[size]": "small"}
    first = answer(
        post(client, **base, address_string="12 Market St, Philadelphia"), "json", "posted"
    )
    second = answer(post(client, **base, address_id="ADR-77"), "json", "posted")
    pinned = answer(
        post(client, **filing(place, secret, address_id="#NOTPINPOINTED#")), "json", "posted"
    )
    addresses = dict(Case.objects.values_list("tracking_number", "address"))
    assert addresses[first[0]["service_request_id"]] == "12 Market St, Philadelphia"
    assert addresses[second[0]["service_request_id"]] == "Address id ADR-77"
    assert addresses[pinned[0]["service_request_id"]] == ""
    # FixMyStreet's placeholder is no address id: without a pin it is no location at all.
    alone = post(client, **base, address_id="#NOTPINPOINTED#")
    assert error_descriptions(alone, "json", 400) == [
        "location: give lat and long, address_string or address_id."
    ]


def test_overlong_address_name_and_phone_are_refused_not_cut(client, place, pothole, secret):
    data = filing(
        place,
        secret,
        address_string="1 Market St " * 30,
        first_name="A" * 121,
        phone="2" * 41,
        address_id="x" * 201,
    )
    assert sorted(error_descriptions(post(client, **data), "json", 400)) == [
        "address_id: at most 200 characters."
    ]
    del data["address_id"]
    assert sorted(error_descriptions(post(client, **data), "json", 400)) == [
        "address_string: Keep the address to 250 characters.",
        "first_name: Keep it to 120 characters.",
        "phone: Keep it to 40 characters.",
    ]
    assert not Case.objects.exists()


def test_a_form_body_labelled_latin_1_is_read_in_that_charset(client, place, pothole, secret):
    body = urlencode(filing(place, secret, description="Caf\xe9 corner"), encoding="latin-1")
    response = client.post(
        f"{BASE}/requests.json",
        body,
        content_type="application/x-www-form-urlencoded; charset=ISO-8859-1",
    )
    answer(response, "json", "posted")
    assert "Access-Control-Allow-Origin" not in response  # filing is for servers
    assert Case.objects.get().description == "Caf\xe9 corner"
    unknown = client.generic(
        "POST",
        f"{BASE}/requests.json",
        urlencode(filing(place, secret)).encode(),
        content_type="application/x-www-form-urlencoded; charset=klingon",
    )
    assert error_descriptions(unknown, "json", 400) == ["Content-Type: unknown charset “klingon”."]


def test_an_unknown_service_is_a_404_and_a_missing_one_a_400(client, place, pothole, secret):
    data = filing(place, secret, service_code="volcano")
    assert error_descriptions(post(client, **data), "json", 404) == [
        "service_code: no service “volcano”."
    ]
    data["service_code"] = ""
    assert "service_code: required." in error_descriptions(post(client, **data), "json", 400)


def test_a_malformed_email_is_refused_by_name(client, place, pothole, secret):
    data = filing(place, secret, email="not-an-address")
    assert error_descriptions(post(client, **data), "json", 400) == [
        "email: Enter a valid email address."
    ]


def test_a_description_over_4000_characters_is_refused(client, place, pothole, secret):
    data = filing(place, secret, description="x" * 4001)
    assert error_descriptions(post(client, **data), "json", 400) == [
        "description: Keep it to 4,000 characters."
    ]
    answer(post(client, **filing(place, secret, description="x" * 4000)), "json", "posted")


def test_media_urls_may_repeat_and_are_stripped(client, place, pothole, secret):
    urls = ["  https://photos.example.org/1.jpg ", "https://photos.example.org/2.jpg", ""]
    items = answer(post(client, **filing(place, secret, media_url=urls)), "json", "posted")
    case = Case.objects.get(tracking_number=items[0]["service_request_id"])
    assert list(case.photos.values_list("url", flat=True)) == [
        "https://photos.example.org/1.jpg",
        "https://photos.example.org/2.jpg",
    ]
    record = answer(
        client.get(f"{BASE}/requests/{case.tracking_number}.json"), "json", "service_requests"
    )
    assert record[0]["media_url"] == "https://photos.example.org/1.jpg"
    bad = filing(place, secret, media_url="javascript:alert(1)")
    assert error_descriptions(post(client, **bad), "json", 400)[0].startswith("media_url:")


@pytest.mark.parametrize("field", ["media", "media[]"])
def test_uploaded_photos_go_through_the_photo_pipeline_and_win_over_media_url(
    client, place, pothole, secret, field
):
    data = filing(place, secret, media_url="https://photos.example.org/ignored.jpg")
    data[field] = jpeg()
    items = answer(client.post(f"{BASE}/requests.xml", data), "xml", "posted")
    case = Case.objects.get(tracking_number=items[0]["service_request_id"])
    photo = case.photos.get()
    assert photo.image and not photo.url and photo.width == 64
    record = answer(
        client.get(f"{BASE}/requests/{case.tracking_number}.xml"), "xml", "service_requests"
    )
    assert record[0]["media_url"] == f"http://testserver{photo.image.url}"

    data = filing(place, secret)
    data["media"] = io.BytesIO(b"not a photo")
    data["media"].name = "evil.jpg"
    messages = error_descriptions(client.post(f"{BASE}/requests.json", data), "json", 400)
    assert messages == ["media: That file is not a photo we can read (JPEG, PNG or WebP)."]


def test_a_retry_with_the_same_idempotency_key_gets_the_first_request(
    client, place, pothole, secret
):
    data = filing(place, secret)
    first = answer(
        client.post(f"{BASE}/requests.json", data, HTTP_IDEMPOTENCY_KEY="outbox-1"),
        "json",
        "posted",
    )
    again = answer(
        client.post(f"{BASE}/requests.json", data, HTTP_IDEMPOTENCY_KEY="outbox-1"),
        "json",
        "posted",
    )
    assert first == again
    other = keys.issue_key("Another client")[1]
    answer(
        client.post(f"{BASE}/requests.json", filing(place, other), HTTP_IDEMPOTENCY_KEY="outbox-1"),
        "json",
        "posted",
    )
    assert Case.objects.count() == 2


# Jurisdictions --------------------------------------------------------------------------------


def test_an_empty_jurisdiction_is_absent_and_an_unknown_one_is_a_404(
    client, settings, place, pothole, secret
):
    answer(client.get(f"{BASE}/services.json", {"jurisdiction_id": ""}), "json", "services")
    answer(post(client, **filing(place, secret, jurisdiction_id="")), "json", "posted")
    answer(client.get(f"{BASE}/services.json", {"jurisdiction_id": "any.gov"}), "json", "services")
    settings.ENGAGEMENT = {"OPEN311_JURISDICTION": "phila.gov"}
    answer(client.get(f"{BASE}/services.xml", {"jurisdiction_id": "Phila.gov"}), "xml", "services")
    answer(client.get(f"{BASE}/services.xml", {"jurisdiction_id": ""}), "xml", "services")
    assert error_descriptions(
        client.get(f"{BASE}/services.xml", {"jurisdiction_id": "nyc.gov"}), "xml", 404
    ) == ["jurisdiction_id: this server serves “phila.gov” only."]
    response = post(client, **filing(place, secret, jurisdiction_id="nyc.gov"))
    assert error_descriptions(response, "json", 404)
    assert Case.objects.count() == 1


# Reading requests ------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_request_lists_with_one_and_several_items_are_valid(client, place, pothole, secret, fmt):
    answer(post(client, **filing(place, secret, description="First")), "json", "posted")
    one = answer(client.get(f"{BASE}/requests.{fmt}"), fmt, "service_requests")
    assert len(one) == 1
    record = one[0]
    assert record["status"] == "open"
    assert record["service_code"] == "pothole" and record["service_name"] == "Pothole"
    assert record["agency_responsible"] == "Streets Department"
    assert record["description"] == "First"
    assert isinstance(record["lat"], float) and isinstance(record["long"], float)
    for field in ("requested_datetime", "updated_datetime", "expected_datetime"):
        assert W3C.match(record[field])
    assert record["address_id"] is None and record["zipcode"] is None
    answer(post(client, **filing(place, secret, description="Second")), "json", "posted")
    several = answer(client.get(f"{BASE}/requests.{fmt}"), fmt, "service_requests")
    assert [r["description"] for r in several] == ["Second", "First"]  # newest first


def test_an_empty_list_is_an_empty_array_and_an_empty_element(client, pothole):
    assert answer(client.get(f"{BASE}/requests.json"), "json", "service_requests") == []
    assert answer(client.get(f"{BASE}/requests.xml"), "xml", "service_requests") == []


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_one_request_is_a_one_item_list(client, place, pothole, secret, fmt):
    number = answer(post(client, **filing(place, secret)), "json", "posted")[0][
        "service_request_id"
    ]
    for path in ("requests", "request"):
        data = answer(client.get(f"{BASE}/{path}/{number}.{fmt}"), fmt, "service_requests")
        assert [r["service_request_id"] for r in data] == [number]
    messages = error_descriptions(client.get(f"{BASE}/requests/99-999999.{fmt}"), fmt, 404)
    assert messages == ["service_request_id: no request “99-999999”."]


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_a_token_leads_to_the_request(client, place, pothole, secret, fmt):
    number = answer(post(client, **filing(place, secret)), "json", "posted")[0][
        "service_request_id"
    ]
    case = Case.objects.get(tracking_number=number)
    data = answer(client.get(f"{BASE}/tokens/{case.token}.{fmt}"), fmt, "posted")
    assert data == [{"service_request_id": number, "token": str(case.token)}]
    for token in ("5b0a6a8e-0000-4000-8000-000000000000", "not-a-token"):
        assert error_descriptions(client.get(f"{BASE}/tokens/{token}.{fmt}"), fmt, 404)


def test_statuses_map_to_open_and_closed_with_notes_and_notices(client, place, pothole):
    staff = staff_of(pothole)
    acknowledged, scheduled, closed, duplicate, original = (
        web_case(place, pothole) for _ in range(5)
    )
    services.change_status(acknowledged, user=staff, status="acknowledged", note="Crew told.")
    services.add_note(acknowledged, user=staff, text="Internal only", public=False)
    services.change_status(
        scheduled,
        user=staff,
        status="scheduled",
        scheduled_for=timezone.localdate() + timedelta(days=2),
        note="On the list.",
    )
    services.change_status(
        closed, user=staff, status="closed", resolution="fixed", note="Patched today."
    )
    services.merge_cases(duplicate, original, user=staff, reason="Same hole")
    # Internal work after closing leaves the public last change (the closing) where it was.
    services.add_note(closed, user=staff, text="Crew timesheet filed", public=False)
    services.assign(closed, user=staff, assignee=staff, reason="For the records")
    data = answer(client.get(f"{BASE}/requests.json"), "json", "service_requests")
    by_id = {r["service_request_id"]: r for r in data}
    ack = by_id[acknowledged.tracking_number]
    assert ack["status"] == "open"
    assert ack["status_notes"] == "Crew told."  # the internal note is never shown
    sched = by_id[scheduled.tracking_number]
    assert sched["status"] == "open" and sched["service_notice"].startswith("Work is scheduled")
    done = by_id[closed.tracking_number]
    closed.refresh_from_db()
    assert done["status"] == "closed" and done["status_notes"] == "Patched today."
    assert (
        done["updated_datetime"]
        == timezone.localtime(closed.closed_at).replace(microsecond=0).isoformat()
    )
    dup = by_id[duplicate.tracking_number]
    assert dup["status"] == "closed"
    assert dup["service_notice"] == f"Duplicate of {original.tracking_number}."
    assert dup["status_notes"] == f"Duplicate of {original.tracking_number}: Same hole"
    assert by_id[original.tracking_number]["status_notes"] == (
        f"Case {duplicate.tracking_number} was merged into this one."
    )


def test_extensions_add_the_channel_place_duplicate_support_and_public_timeline(
    client, place, pothole
):
    staff = staff_of(pothole)
    case = web_case(place, pothole)
    services.change_status(case, user=staff, status="acknowledged", note="Crew told.")
    services.add_note(case, user=staff, text="Internal only", public=False)
    for fmt in ("json", "xml"):
        plain = answer(client.get(f"{BASE}/requests.{fmt}"), fmt, "service_requests")[0]
        assert "extended_attributes" not in plain and "notes" not in plain
        url = f"{BASE}/requests/{case.tracking_number}.{fmt}?extensions=true"
        record = answer(client.get(url), fmt, "service_requests")[0]
        assert record["extended_attributes"] == {
            "channel": "web",
            "neighborhood": "Old City",
            "duplicate": None,
            "supporter_count": 1,
        }
        assert [(n["type"], n["summary"], n["description"]) for n in record["notes"]] == [
            ("created", "Request filed", "Filed on the web."),
            ("status", "Status: Acknowledged", "Crew told."),
        ]
        assert all(W3C.match(n["datetime"]) for n in record["notes"])


def test_the_reporter_and_their_contact_never_appear(client, place, pothole, secret):
    data = filing(place, secret, email="hidden@example.org", phone="215-555-0199")
    data.update(first_name="Secretname", last_name="Person", device_id="dev-1")
    answer(post(client, **data), "json", "posted")
    resident = f.forum_member(
        place, user__username="visible-resident", user__email="resident@example.org"
    )
    web_case(place, pothole, reporter=resident, contact_phone="267-555-0123")
    for fmt in ("json", "xml"):
        for query in ("", "extensions=true"):
            body = client.get(f"{BASE}/requests.{fmt}{query}").content.decode()
            for private in (
                "hidden@example.org",
                "215-555-0199",
                "Secretname",
                "visible-resident",
                "resident@example.org",
                "267-555-0123",
                "Test client",
                "dev-1",
            ):
                assert private not in body


# Filters and pages ----------------------------------------------------------------------------


def _ids(client, query: dict | str = "") -> list[str]:
    url = f"{BASE}/requests.json"
    if query:
        url += "?" + (query if isinstance(query, str) else urlencode(query))
    return [r["service_request_id"] for r in answer(client.get(url), "json", "service_requests")]


@pytest.fixture
def spread(place, pothole):
    """Six cases: two pothole, two graffiti, one closed, one old; created an hour apart."""
    graffiti = f.service_type("graffiti", department=pothole.department)
    cases = make_cases(pothole, place, 6, photos=False, notes=False)
    now = timezone.now()
    for n, case in enumerate(cases):
        case.service_type = graffiti if n in (1, 2) else pothole
        case.created_at = case.updated_at = now - timedelta(hours=n + 1)
    cases[3].status = Case.Status.CLOSED
    cases[4].status = Case.Status.IN_PROGRESS
    cases[5].created_at = now - timedelta(days=120)
    cases[5].updated_at = now - timedelta(days=2)
    Case.objects.bulk_update(cases, ["service_type", "created_at", "updated_at", "status"])
    return [c.tracking_number for c in cases]


def test_without_dates_the_list_covers_the_last_90_days_newest_first(client, spread):
    assert _ids(client) == spread[:5]


def test_service_code_is_a_comma_list(client, spread):
    assert _ids(client, {"service_code": "graffiti"}) == spread[1:3]
    assert _ids(client, {"service_code": "graffiti,pothole"}) == spread[:5]
    assert _ids(client, {"service_code": ""}) == spread[:5]
    assert _ids(client, {"service_code": "volcano"}) == []


def test_status_open_means_every_state_before_closing(client, spread):
    assert _ids(client, {"status": "open"}) == [spread[0], spread[1], spread[2], spread[4]]
    assert _ids(client, {"status": "closed"}) == [spread[3]]
    assert _ids(client, {"status": "open,closed"}) == spread[:5]
    assert error_descriptions(
        client.get(f"{BASE}/requests.json", {"status": "pending"}), "json", 400
    ) == ["status: use open, closed or open,closed."]


def test_dates_bound_the_requested_time_within_90_days(client, spread):
    now = timezone.now()

    def w3c(value):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    window = {"start_date": w3c(now - timedelta(hours=3, minutes=30)), "end_date": w3c(now)}
    assert _ids(client, window) == spread[:3]
    assert _ids(client, {"start_date": w3c(now - timedelta(days=121))}) == [spread[5]]
    assert _ids(client, {"end_date": w3c(now - timedelta(hours=2, minutes=30))}) == spread[2:5]
    plus_two = dt_timezone(timedelta(hours=2))
    offset = (now - timedelta(hours=1, minutes=30)).astimezone(plus_two).replace(microsecond=0)
    unencoded = f"start_date={offset.isoformat()}"  # "+hh:mm" arrives as " hh:mm"
    assert _ids(client, unencoded.replace("+", "%2B")) == spread[:1]
    assert _ids(client, unencoded) == spread[:1]
    too_long = {"start_date": w3c(now - timedelta(days=91)), "end_date": w3c(now)}
    assert error_descriptions(client.get(f"{BASE}/requests.json", too_long), "json", 400) == [
        "start_date, end_date: the window may span at most 90 days; "
        "ask for shorter windows one after another."
    ]
    backwards = {"start_date": w3c(now), "end_date": w3c(now - timedelta(days=1))}
    assert error_descriptions(client.get(f"{BASE}/requests.json", backwards), "json", 400)
    garbage = {"start_date": "yesterday", "updated_after": "soon"}
    assert len(error_descriptions(client.get(f"{BASE}/requests.json", garbage), "json", 400)) == 2
    for name, value in (
        ("start_date", "9999-12-31T00:00:00Z"),
        ("end_date", "0001-01-01"),
        ("updated_after", "9999-12-31T23:59:59-05:00"),
        ("updated_before", "0001-01-01T00:00:00+05:00"),
    ):
        assert error_descriptions(
            client.get(f"{BASE}/requests.json", {name: value}), "json", 400
        ) == [f"{name}: give a date between 1970 and 2999."]


def test_updated_after_and_before_filter_on_the_last_change_with_no_default_window(client, spread):
    now = timezone.now()
    after = (now - timedelta(days=3)).isoformat()
    assert _ids(client, {"updated_after": after}) == spread  # includes the 120-day-old case
    assert _ids(
        client, {"updated_after": after, "updated_before": (now - timedelta(days=1)).isoformat()}
    ) == [spread[5]]
    assert _ids(client, {"updated_after": (now - timedelta(minutes=90)).isoformat()}) == [spread[0]]


def test_a_list_of_ids_overrides_every_other_filter(client, spread):
    query = {
        "service_request_id": f"{spread[5]}, {spread[3]},99-999999",
        "status": "open",
        "service_code": "graffiti",
        "start_date": "2000-01-01T00:00:00Z",
        "end_date": "2000-01-02T00:00:00Z",
    }
    assert _ids(client, query) == [spread[3], spread[5]]


def test_pages_follow_the_page_size_with_a_link_to_the_next(client, settings, spread):
    assert _ids(client, {"page_size": 2}) == spread[:2]
    response = client.get(f"{BASE}/requests.json", {"page_size": 2, "page": 2, "status": "open"})
    assert [r["service_request_id"] for r in json.loads(response.content)] == [
        spread[2],
        spread[4],
    ]
    assert "Link" not in response
    response = client.get(f"{BASE}/requests.json", {"page_size": 2})
    assert response["Link"] == (
        '<http://testserver/open311/v2/requests.json?page_size=2&page=2>; rel="next"'
    )
    assert _ids(client, {"page_size": 2, "page": 9}) == []
    settings.ENGAGEMENT = {"OPEN311_PAGE_SIZE": 3, "OPEN311_MAX_PAGE_SIZE": 4}
    assert _ids(client) == spread[:3]
    assert error_descriptions(
        client.get(f"{BASE}/requests.json", {"page_size": 5, "page": 0}), "json", 400
    ) == [
        "page: give a whole number from 1 to 1,000,000.",
        "page_size: give a whole number from 1 to 4.",
    ]


def test_listing_takes_the_same_queries_for_3_and_40_rows(
    client, place, pothole, django_assert_num_queries
):
    make_cases(pothole, place, 3)
    counts = {}
    for query in ("", "extensions=true"):
        with CaptureQueriesContext(connection) as few:
            assert len(_ids(client, query)) == 3
        counts[query] = len(few)
    # The page's ids, their records with their first photos (and their public timelines).
    assert counts == {"": 2, "extensions=true": 3}
    make_cases(pothole, place, 37, start=3)
    for query, count in counts.items():
        with django_assert_num_queries(count):
            assert len(_ids(client, query)) == 40


# Errors and methods -----------------------------------------------------------------------------


def test_anything_else_under_the_prefix_is_an_open311_404(client):
    assert error_descriptions(client.get(f"{BASE}/services"), "xml", 404) == [
        "Add .json or .xml to the address."
    ]
    assert error_descriptions(client.get(f"{BASE}/services.html"), "xml", 404) == [
        "Use .json or .xml."
    ]
    assert error_descriptions(client.get(f"{BASE}/nothing.json"), "json", 404)
    assert error_descriptions(client.get("/open311/v3/services.json"), "json", 404)


def test_other_methods_are_refused_in_the_format(client, pothole):
    response = client.put(f"{BASE}/services.json")
    assert error_descriptions(response, "json", 405) == ["Use GET here."]
    assert response["Allow"] == "GET, HEAD"
    response = client.delete(f"{BASE}/requests.xml")
    assert error_descriptions(response, "xml", 405) == ["Use GET or POST here."]
    assert client.head(f"{BASE}/services.json").status_code == 200


def test_a_failure_inside_is_a_500_in_the_format_not_an_html_page(
    client, pothole, monkeypatch, caplog
):
    from engagement.open311 import render

    def broken(*args, **kwargs):
        raise RuntimeError("database on fire")

    monkeypatch.setattr(render, "service", broken)
    messages = error_descriptions(client.get(f"{BASE}/services.xml"), "xml", 500)
    assert messages == ["The server could not answer. Try again later."]
    assert "database on fire" in caplog.text


# Keys -------------------------------------------------------------------------------------------


def test_the_command_prints_a_key_that_files_a_request(client, place, pothole):
    out, err = io.StringIO(), io.StringIO()
    call_command("open311_key", "Neighbourhood app", "--rate", "5", stdout=out, stderr=err)
    secret = out.getvalue().strip()
    assert "cannot be shown again" in err.getvalue()
    key = Open311Key.objects.get(name="Neighbourhood app")
    assert key.requests_per_minute == 5
    assert key.prefix == secret[:8] and key.key_hash == Open311Key.hash(secret)
    assert secret not in key.key_hash
    answer(post(client, **filing(place, secret)), "json", "posted")
    assert Case.objects.get().api_client == "Neighbourhood app"

    with pytest.raises(CommandError, match="exists"):
        call_command("open311_key", "Neighbourhood app", stdout=io.StringIO())
    replaced = io.StringIO()
    call_command("open311_key", "Neighbourhood app", "--replace", stdout=replaced)
    assert error_descriptions(post(client, **filing(place, secret)), "json", 403)
    new_secret = replaced.getvalue().strip()
    answer(post(client, **filing(place, new_secret)), "json", "posted")

    call_command("open311_key", "--revoke", "Neighbourhood app", stdout=io.StringIO())
    assert error_descriptions(post(client, **filing(place, new_secret)), "json", 403)
    with pytest.raises(CommandError, match="No active key"):
        call_command("open311_key", "--revoke", "Neighbourhood app", stdout=io.StringIO())
    listing = io.StringIO()
    call_command("open311_key", "--list", stdout=listing)
    assert "Neighbourhood app" in listing.getvalue() and "revoked" in listing.getvalue()
    assert new_secret not in listing.getvalue()
