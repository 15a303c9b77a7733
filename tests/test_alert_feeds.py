"""Alert feeds for other systems: Atom, GeoJSON and CAP 1.2, parsed back and checked."""

from __future__ import annotations

import json
from datetime import timedelta
from xml.etree import ElementTree as ET

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from alerts import cap, services
from alerts.models import Alert, Severity
from tests.factories import (
    CityStaffFactory,
    DepartmentFactory,
    NeighborhoodFactory,
    category,
    official_notice,
    resident_report,
    square_polygon,
)

ATOM = "{http://www.w3.org/2005/Atom}"
GEORSS = "{http://www.georss.org/georss}"
CAP = "{urn:oasis:names:tc:emergency:cap:1.2}"

pytestmark = pytest.mark.django_db

# The xs:sequence of each CAP 1.2 element (OASIS CAP-v1.2.xsd).
CAP_ALERT_SEQUENCE = [
    "identifier",
    "sender",
    "sent",
    "status",
    "msgType",
    "source",
    "scope",
    "restriction",
    "addresses",
    "code",
    "note",
    "references",
    "incidents",
    "info",
]
CAP_INFO_SEQUENCE = [
    "language",
    "category",
    "event",
    "responseType",
    "urgency",
    "severity",
    "certainty",
    "audience",
    "eventCode",
    "effective",
    "onset",
    "expires",
    "senderName",
    "headline",
    "description",
    "instruction",
    "web",
    "contact",
    "parameter",
    "resource",
    "area",
]
CAP_AREA_SEQUENCE = ["areaDesc", "polygon", "circle", "geocode", "altitude", "ceiling"]


def children(element: ET.Element) -> list[str]:
    return [child.tag.replace(CAP, "") for child in element]


def assert_cap_order(element: ET.Element, sequence: list[str]) -> None:
    tags = children(element)
    assert all(tag in sequence for tag in tags), tags
    positions = [sequence.index(tag) for tag in tags]
    assert positions == sorted(positions), f"out of schema order: {tags}"


def atom(response) -> ET.Element:
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/atom+xml")
    return ET.fromstring(response.content)


def get_cap(client, alert: Alert) -> ET.Element:
    response = client.get(f"/alerts/{alert.pk}/cap.xml")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/cap+xml")
    return ET.fromstring(response.content)


def text(element: ET.Element, path: str) -> str | None:
    found = element.find(path.replace("cap:", CAP))
    return found.text if found is not None else None


@pytest.fixture
def place():
    return NeighborhoodFactory(name="Fairmount", lat=1.0, lon=1.0)


@pytest.fixture
def streets():
    return CityStaffFactory(department=DepartmentFactory(name="Streets Department")).user


# Atom -----------------------------------------------------------------------------------------


def test_city_atom_lists_active_alerts_newest_first_with_provenance_and_content(
    client, place, streets
):
    older = official_notice(
        place,
        staff=streets,
        title="Paving on Green Street",
        body="Expect **delays**. <script>x()</script>",
        severity=Severity.ADVISORY,
        starts_at=timezone.now() - timedelta(hours=2),
    )
    report = resident_report(place, title="Fallen tree")
    expired = official_notice(place, staff=streets, title="Old closure")
    Alert.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(minutes=1))

    feed = atom(client.get("/alerts/feed.atom"))

    entries = feed.findall(f"{ATOM}entry")
    assert [e.findtext(f"{ATOM}title") for e in entries] == [
        "Fallen tree",
        "Paving on Green Street",
    ]
    paving = entries[1]
    assert paving.findtext(f"{ATOM}author/{ATOM}name") == "Official · Streets Department"
    assert entries[0].findtext(f"{ATOM}author/{ATOM}name") == "Resident report"
    assert paving.find(f"{ATOM}link").get("href") == f"http://testserver/alerts/{older.pk}/"
    assert paving.findtext(f"{ATOM}id") == f"http://testserver/alerts/{older.pk}/"
    assert paving.findtext(f"{ATOM}updated")
    content = paving.find(f"{ATOM}content")
    assert content.get("type") == "html"
    assert "<strong>delays</strong>" in content.text
    assert "<script>" not in content.text
    terms = {(c.get("term"), c.get("label")) for c in paving.findall(f"{ATOM}category")}
    assert ("advisory", "Advisory") in terms
    assert ("utilities", "Water, power and gas") in terms
    assert "Official · Streets Department · Advisory" in paving.findtext(f"{ATOM}summary")
    # Point alerts carry a GeoRSS point and radius.
    assert entries[0].findtext(f"{GEORSS}point") == f"{report.lat:.6f} {report.lon:.6f}"
    assert entries[0].findtext(f"{GEORSS}radius") == str(report.radius_m)


def test_atom_polygon_is_in_georss_lat_lon_order(client, place, streets):
    official_notice(staff=streets, area=square_polygon(1.0, 1.0, half=0.005))

    (entry,) = atom(client.get("/alerts/feed.atom")).findall(f"{ATOM}entry")

    numbers = [float(v) for v in entry.findtext(f"{GEORSS}polygon").split()]
    assert numbers[:2] == [0.995, 0.995]
    assert numbers[2:4] == [0.995, 1.005]  # lat stays, lon moves east: lat first


def test_retracted_notice_stays_in_the_atom_feed_marked_until_it_expires(client, place, streets):
    alert = official_notice(place, staff=streets, title="Boil water")
    services.retract_alert(alert, user=streets, reason="Issued by mistake")

    (entry,) = atom(client.get("/alerts/feed.atom")).findall(f"{ATOM}entry")
    assert entry.findtext(f"{ATOM}title") == "[Retracted] Boil water"
    assert "Retracted: Issued by mistake" in entry.findtext(f"{ATOM}summary")

    Alert.objects.filter(pk=alert.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert atom(client.get("/alerts/feed.atom")).findall(f"{ATOM}entry") == []


def test_neighborhood_atom_has_only_that_neighborhoods_alerts(client, place, streets):
    other = NeighborhoodFactory()
    official_notice(place, staff=streets, title="Here")
    official_notice(other, staff=streets, title="Elsewhere")

    feed = atom(client.get(f"/neighborhoods/{place.slug}/alerts/feed.atom"))

    assert [e.findtext(f"{ATOM}title") for e in feed.findall(f"{ATOM}entry")] == ["Here"]
    assert feed.findtext(f"{ATOM}title") == "Alerts in Fairmount"
    assert client.get("/neighborhoods/nowhere/alerts/feed.atom").status_code == 404


def test_feeds_are_public_and_named(client, place):
    from django.urls import reverse

    assert reverse("alerts:feed-atom") == "/alerts/feed.atom"
    assert reverse("alerts:feed-geojson") == "/alerts/active.geojson"
    assert reverse("alerts:cap-index") == "/alerts/cap.atom"
    assert reverse("alerts:cap", args=[3]) == "/alerts/3/cap.xml"
    assert (
        reverse("alerts:neighborhood-feed-atom", args=[place.slug])
        == f"/neighborhoods/{place.slug}/alerts/feed.atom"
    )
    for url in ("/alerts/feed.atom", "/alerts/active.geojson", "/alerts/cap.atom"):
        assert client.get(url).status_code == 200


# GeoJSON --------------------------------------------------------------------------------------


def test_geojson_features_have_the_area_as_geometry_and_the_payload_as_properties(
    client, place, streets
):
    notice = official_notice(place, staff=streets, title="Water main break")
    resident_report(place)

    response = client.get("/alerts/active.geojson")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/geo+json"
    collection = json.loads(response.content)
    assert collection["type"] == "FeatureCollection"
    assert len(collection["features"]) == 2
    feature = next(f for f in collection["features"] if f["id"] == notice.pk)
    assert feature["type"] == "Feature"
    assert feature["geometry"] == notice.area
    assert "area" not in feature["properties"]
    expected = services.alert_payload(notice)
    expected.pop("area")
    assert json.loads(json.dumps(feature["properties"])) == json.loads(json.dumps(expected))


def test_geojson_filters_by_neighborhood_kind_and_category(client, place, streets):
    other = NeighborhoodFactory()
    official_notice(place, staff=streets, title="Official here")
    resident_report(place, title="Report here")
    official_notice(other, staff=streets, title="Elsewhere", category=category("traffic"))

    def titles(query: str) -> list[str]:
        response = client.get(f"/alerts/active.geojson?{query}")
        assert response.status_code == 200
        return sorted(f["properties"]["title"] for f in json.loads(response.content)["features"])

    assert titles(f"neighborhood={place.slug}") == ["Official here", "Report here"]
    assert titles(f"neighborhood={place.slug}&kind=official") == ["Official here"]
    assert titles("kind=community") == ["Report here"]
    assert titles("category=traffic") == ["Elsewhere"]
    assert client.get("/alerts/active.geojson?kind=rumour").status_code == 400
    assert client.get("/alerts/active.geojson?category=nope").status_code == 400
    assert client.get("/alerts/active.geojson?neighborhood=nowhere").status_code == 404


@pytest.mark.parametrize("url", ["/alerts/active.geojson", "/alerts/feed.atom", "/alerts/cap.atom"])
def test_feed_query_count_does_not_grow_with_the_number_of_alerts(
    client, place, streets, django_assert_num_queries, url
):
    for n in range(3):
        official_notice(place, staff=streets, title=f"Notice {n}")
    services.edit_alert(Alert.objects.first(), user=streets, title="Edited notice")
    with CaptureQueriesContext(connection) as with_three:
        assert client.get(url).status_code == 200
    for n in range(27):
        official_notice(place, staff=streets, title=f"More {n}")

    with django_assert_num_queries(len(with_three)):
        response = client.get(url)

    assert response.content.count(b"More ") == 27


# CAP 1.2 --------------------------------------------------------------------------------------


def test_cap_message_has_the_required_fields_in_schema_order(client, place, streets, settings):
    settings.ENGAGEMENT = {**getattr(settings, "ENGAGEMENT", {}), "CAP_SENDER": "alerts@city.test"}
    alert = official_notice(
        place,
        staff=streets,
        title="Water main break",
        body="Crews are on site. Expect **low pressure**.",
        severity=Severity.WARNING,
    )

    message = get_cap(client, alert)

    assert message.tag == f"{CAP}alert"
    assert_cap_order(message, CAP_ALERT_SEQUENCE)
    (info,) = message.findall(f"{CAP}info")
    assert_cap_order(info, CAP_INFO_SEQUENCE)
    (area,) = info.findall(f"{CAP}area")
    assert_cap_order(area, CAP_AREA_SEQUENCE)
    assert text(message, "cap:identifier") == f"alerts@city.test:alert-{alert.pk}"
    assert text(message, "cap:sender") == "alerts@city.test"
    assert text(message, "cap:status") == "Actual"
    assert text(message, "cap:msgType") == "Alert"
    assert text(message, "cap:scope") == "Public"
    assert message.find(f"{CAP}references") is None
    sent = text(message, "cap:sent")
    assert sent.endswith("-00:00") and "." not in sent  # CAP forbids "Z" and fractions
    assert text(info, "cap:category") == "Infra"
    assert text(info, "cap:event") == "Water, power and gas"
    assert text(info, "cap:urgency") == "Immediate"
    assert text(info, "cap:severity") == "Severe"
    assert text(info, "cap:certainty") == "Observed"
    assert text(info, "cap:effective") == cap.cap_time(alert.starts_at)
    assert text(info, "cap:expires") == cap.cap_time(alert.expires_at)
    assert text(info, "cap:senderName") == "Streets Department"
    assert text(info, "cap:headline") == "Water main break"
    assert text(info, "cap:description") == "Crews are on site. Expect low pressure."
    assert text(info, "cap:web") == f"http://testserver/alerts/{alert.pk}/"
    assert text(area, "cap:areaDesc") == "Fairmount"
    # Our own parser (the ingester's) accepts the message.
    assert cap.parse_cap(message).info.headline == "Water main break"


def test_cap_polygon_is_a_closed_ring_of_lat_lon_pairs(client, streets):
    NeighborhoodFactory(lat=1.0, lon=2.0)
    alert = official_notice(staff=streets, area=square_polygon(1.0, 2.0, half=0.005))

    polygon = text(get_cap(client, alert), "cap:info/cap:area/cap:polygon")

    pairs = [tuple(float(v) for v in pair.split(",")) for pair in polygon.split()]
    expected = [(lat, lon) for lon, lat in alert.area["coordinates"][0]]
    assert pairs == expected
    assert pairs[0] == pairs[-1] and len(pairs) >= 4
    assert all(0.99 < lat < 1.01 and 1.99 < lon < 2.01 for lat, lon in pairs)


def test_cap_point_alert_is_a_circle_in_kilometres(client, streets, place):
    alert = official_notice(staff=streets, lat=1.0, lon=1.0, radius_m=750)

    area = get_cap(client, alert).find(f"{CAP}info/{CAP}area")

    assert text(area, "cap:circle") == "1,1 0.75"
    assert area.find(f"{CAP}polygon") is None


def test_edited_notice_is_an_update_referencing_the_earlier_message(client, place, streets):
    alert = official_notice(place, staff=streets, title="Water main break")
    first = get_cap(client, alert)
    services.edit_alert(alert, user=streets, title="Water main break: road closed")

    message = get_cap(client, alert)

    assert text(message, "cap:msgType") == "Update"
    assert text(message, "cap:identifier") == f"{text(first, 'cap:identifier')}:v2"
    assert text(message, "cap:references") == ",".join(
        [text(first, "cap:sender"), text(first, "cap:identifier"), text(first, "cap:sent")]
    )
    assert text(message, "cap:info/cap:headline") == "Water main break: road closed"
    assert_cap_order(message, CAP_ALERT_SEQUENCE)


def test_retracted_notice_is_a_cancel_referencing_every_earlier_message(client, place, streets):
    alert = official_notice(place, staff=streets)
    services.edit_alert(alert, user=streets, title="Corrected title")
    services.retract_alert(alert, user=streets, reason="Issued for the wrong street")

    message = get_cap(client, alert)

    assert text(message, "cap:msgType") == "Cancel"
    assert text(message, "cap:note") == "Issued for the wrong street"
    references = text(message, "cap:references").split()
    assert [r.split(",")[1] for r in references] == [
        cap.base_identifier(alert),
        f"{cap.base_identifier(alert)}:v2",
    ]
    assert text(message, "cap:identifier") == f"{cap.base_identifier(alert)}:v3"
    assert text(message, "cap:info/cap:urgency") == "Past"
    assert_cap_order(message, CAP_ALERT_SEQUENCE)
    parsed = cap.parse_cap(message)
    assert parsed.msg_type == "Cancel"


def test_ingested_notice_keeps_its_original_cap_identifier(client, place):
    alert = services.create_official_notice(
        author=None,
        category=category("weather"),
        severity=Severity.EMERGENCY,
        title="Flash flood warning",
        neighborhoods=[place],
        source=Alert.Source.FEED,
        source_name="National Weather Service",
        external_id="urn:oid:2.49.0.1.840.0.abc",
    )

    message = get_cap(client, alert)

    assert text(message, "cap:identifier") == "urn:oid:2.49.0.1.840.0.abc"
    assert text(message, "cap:source") == "National Weather Service"
    assert text(message, "cap:info/cap:category") == "Met"
    assert text(message, "cap:info/cap:severity") == "Extreme"
    assert text(message, "cap:info/cap:senderName") == "National Weather Service"


def test_resident_reports_have_no_cap_message(client, place):
    report = resident_report(place)

    assert client.get(f"/alerts/{report.pk}/cap.xml").status_code == 404
    assert client.get("/alerts/999999/cap.xml").status_code == 404


def test_cap_index_links_each_official_notice_to_its_cap_message(client, place, streets):
    notice = official_notice(place, staff=streets, title="Water main break")
    retracted = official_notice(place, staff=streets, title="Wrong notice")
    services.retract_alert(retracted, user=streets, reason="Mistake")
    resident_report(place, title="Pothole")

    feed = atom(client.get("/alerts/cap.atom"))

    entries = {e.findtext(f"{ATOM}title"): e for e in feed.findall(f"{ATOM}entry")}
    assert set(entries) == {"Water main break", "[Retracted] Wrong notice"}
    link = entries["Water main break"].find(f"{ATOM}link[@rel='alternate']")
    assert link.get("type") == "application/cap+xml"
    assert link.get("href") == f"http://testserver/alerts/{notice.pk}/cap.xml"
    assert entries["Water main break"].findtext(f"{CAP}severity") == "Severe"
    assert entries["[Retracted] Wrong notice"].findtext(f"{CAP}msgType") == "Cancel"
    assert entries["Water main break"].findtext(f"{CAP}identifier") == cap.base_identifier(notice)
    # Each linked message is served.
    for entry in entries.values():
        href = entry.find(f"{ATOM}link[@rel='alternate']").get("href")
        assert client.get(href.replace("http://testserver", "")).status_code == 200
