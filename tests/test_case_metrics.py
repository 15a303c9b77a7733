"""Service-level figures on a handmade set of cases with known times, the metrics page, and the
open data exports (CSV and GeoJSON, no personal data)."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.db import connections
from django.test import AsyncClient
from django.utils import timezone

from engagement import exports, metrics, services
from engagement.models import Case, SurveyResponse
from tests import factories as f

pytestmark = pytest.mark.django_db

ADMIN = ["wagtailadmin.access_admin"]
METRICS = "/admin/case-desk/metrics/"
CSV = "/cases/export.csv"
GEOJSON = "/cases/export.geojson"
HOUR = timedelta(hours=1)


@pytest.fixture
def streets():
    return f.DepartmentFactory(name="Streets Department")


@pytest.fixture
def pothole(streets):
    return f.service_type("pothole", department=streets, name="Pothole")


@pytest.fixture
def streetlight(streets):
    return f.service_type("streetlight", department=streets, name="Streetlight out")


@pytest.fixture
def places():
    return f.NeighborhoodFactory(name="Alder Park"), f.NeighborhoodFactory(name="Birch Hill")


def made(kind, place, number: int, filed, **fields) -> Case:
    """A case written directly with the given times (the services would stamp the real ones)."""
    lat, lon = f.inside(place)
    return Case.objects.create(
        tracking_number=f"26-{number:06d}",
        service_type=kind,
        department=kind.department,
        description="Test case",
        lat=lat,
        lon=lon,
        neighborhood=place,
        created_at=filed,
        updated_at=filed,
        **fields,
    )


def answer(case: Case, rating: int, fixed: bool) -> None:
    SurveyResponse.objects.create(case=case, user=f.UserFactory(), satisfaction=rating, fixed=fixed)


@pytest.fixture
def handmade(pothole, streetlight, places):
    """Six cases: five filed ten days ago (the period), one 200 days ago (open and overdue)."""
    alder, birch = places
    now = timezone.now()
    filed = now - timedelta(days=10)
    due = filed + 48 * HOUR
    closed = {"status": "closed", "resolution": "fixed"}
    cases = [
        made(
            pothole,
            alder,
            1,
            filed,
            acknowledged_at=filed + HOUR,
            closed_at=filed + 10 * HOUR,
            expected_at=due,
            **closed,
        ),  # fmt: skip
        made(
            pothole,
            alder,
            2,
            filed,
            acknowledged_at=filed + 2 * HOUR,
            closed_at=filed + 20 * HOUR,
            expected_at=due,
            **closed,
        ),  # fmt: skip
        made(
            pothole,
            birch,
            3,
            filed,
            channel="phone",
            acknowledged_at=filed + 3 * HOUR,
            closed_at=filed + 100 * HOUR,
            expected_at=due,
            contested_count=2,
            **closed,
        ),  # fmt: skip
        made(
            pothole,
            birch,
            4,
            filed,
            channel="api",
            status="acknowledged",
            acknowledged_at=filed + 4 * HOUR,
            expected_at=due,
        ),  # fmt: skip
        made(streetlight, alder, 5, filed, expected_at=now + 24 * HOUR),
        made(pothole, alder, 6, now - timedelta(days=200), expected_at=now - timedelta(days=190)),
    ]
    answer(cases[0], 5, True)
    answer(cases[0], 4, True)
    answer(cases[2], 1, False)
    answer(cases[5], 2, False)  # outside the period
    return now, cases


def test_percentiles_interpolate_between_the_closest_ranks():
    assert metrics.percentile([], 0.9) is None
    assert metrics.percentile([7.0], 0.9) == 7.0
    assert metrics.percentile([1.0, 2.0, 3.0, 4.0], 0.9) == pytest.approx(3.7)
    assert metrics.percentile([4.0, 1.0, 3.0, 2.0], 0.5) == pytest.approx(2.5)


def test_metrics_of_a_handmade_set_of_cases(handmade):
    now, _ = handmade
    report = metrics.case_metrics(
        Case.objects.all(), start=now - timedelta(days=90), end=now, now=now
    )
    assert (report.open_now, report.overdue_now) == (3, 2)

    total = report.total
    assert (total.filed, total.open, total.overdue) == (5, 2, 1)
    assert total.acknowledge == metrics.Spread(4, 2.5 * HOUR, 3.7 * HOUR)
    assert total.close == metrics.Spread(3, 20 * HOUR, 84 * HOUR)
    assert (total.sla_met, total.sla_known, total.sla_percent) == (2, 4, 50.0)
    assert total.satisfaction == pytest.approx(10 / 3) and total.satisfaction_n == 3
    assert total.fixed_percent == pytest.approx(200 / 3)
    assert (total.contested_cases, total.contested_closures) == (1, 2)

    by_type = {group.label: group for group in report.by_type}
    assert [group.label for group in report.by_type] == ["Pothole", "Streetlight out"]
    pothole = by_type["Pothole"]
    assert (pothole.filed, pothole.sla_percent) == (4, 50.0)
    assert pothole.acknowledge.median == 2.5 * HOUR and pothole.close.p90 == 84 * HOUR
    light = by_type["Streetlight out"]
    assert (light.filed, light.open, light.overdue, light.sla_known) == (1, 1, 0, 0)
    assert light.acknowledge == metrics.Spread(0, None, None) and light.sla_percent is None

    by_place = {group.label: group for group in report.by_neighborhood}
    alder, birch = by_place["Alder Park"], by_place["Birch Hill"]
    assert alder.filed == 3 and alder.acknowledge == metrics.Spread(2, 1.5 * HOUR, 1.9 * HOUR)
    assert alder.close == metrics.Spread(2, 15 * HOUR, 19 * HOUR)
    assert alder.sla_percent == 100.0 and (alder.satisfaction, alder.satisfaction_n) == (4.5, 2)
    assert birch.acknowledge == metrics.Spread(2, 3.5 * HOUR, 3.9 * HOUR)
    assert birch.close == metrics.Spread(1, 100 * HOUR, 100 * HOUR)
    assert (birch.sla_met, birch.sla_known, birch.overdue) == (0, 2, 1)
    assert (birch.satisfaction, birch.contested_cases) == (1.0, 1)

    shares = [(share.channel, share.count, share.percent) for share in report.channels]
    assert shares == [("web", 3, 60.0), ("api", 1, 20.0), ("phone", 1, 20.0)]


def test_cases_filed_outside_the_period_are_left_out(handmade):
    now, _ = handmade
    report = metrics.case_metrics(
        Case.objects.all(), start=now - timedelta(days=5), end=now, now=now
    )
    assert report.total.filed == 0 and report.by_type == [] and report.channels == []
    assert (report.open_now, report.overdue_now) == (3, 2)


def test_human_durations():
    assert metrics.human_duration(None) == "—"
    assert metrics.human_duration(timedelta(minutes=45)) == "45 min"
    assert metrics.human_duration(2.5 * HOUR) == "2.5 h"
    assert metrics.human_duration(84 * HOUR) == "3.5 days"


def test_the_metrics_page_is_scoped_to_the_department(client, handmade, streets):
    staff = f.CityStaffFactory(department=streets, user__permissions=ADMIN).user
    client.force_login(staff)
    shown = client.get(METRICS).content.decode()
    assert "<strong>3</strong> open now" in shown and "<strong>2</strong> overdue now" in shown
    assert "<strong>50%</strong> service level met (2 of 4)" in shown
    assert "<strong>3.3</strong> satisfaction (3 answers)" in shown
    assert "<strong>2.5 h</strong> median time to acknowledge" in shown
    assert "Alder Park" in shown and "Streetlight out" in shown and "3.5 days" in shown
    shown = client.get(METRICS, {"period": "30"}).content.decode()
    assert "<strong>5</strong> filed" in shown
    other = f.CityStaffFactory(department=f.DepartmentFactory(name="Sanitation"))
    client.force_login(other.user)
    other.user.user_permissions.add(*staff.user_permissions.all())
    shown = client.get(METRICS).content.decode()
    assert "<strong>0</strong> open now" in shown and "Alder Park" not in shown


def test_supervisors_choose_the_department_and_dates(client, handmade, streets):
    supervisor = f.CityStaffFactory(is_supervisor=True, user__permissions=ADMIN).user
    client.force_login(supervisor)
    assert "<strong>5</strong> filed" in client.get(METRICS).content.decode()
    other = f.DepartmentFactory(name="Sanitation")
    shown = client.get(METRICS, {"department": other.pk}).content.decode()
    assert "<strong>0</strong> filed" in shown
    today = timezone.localdate()
    shown = client.get(
        METRICS,
        {"start": (today - timedelta(days=3)).isoformat(), "end": today.isoformat()},
    ).content.decode()
    assert "<strong>0</strong> filed" in shown
    shown = client.get(
        METRICS, {"start": today.isoformat(), "end": (today - timedelta(days=3)).isoformat()}
    ).content.decode()
    assert "End on or after the start." in shown


# Open data ------------------------------------------------------------------------------------

PERSONAL = ("reporter", "contact", "pat@example.org", "215-555-0199", "Pat Caller", "Secret")


@pytest.fixture
def public_cases(pothole, streetlight, places):
    alder, birch = places
    staff = f.CityStaffFactory(department=pothole.department).user
    reporter = f.forum_member(alder)
    lat, lon = f.inside(alder)
    web = services.file_case(
        service_type=pothole,
        reporter=reporter,
        lat=round(lat, 4) + 0.0000456,
        lon=round(lon, 4) - 0.0000345,
        description="Secret: pothole outside my house at number 12",
        address="12 Secret Street",
    ).case
    phoned = services.file_case(
        service_type=streetlight,
        description="Secret lamp",
        address="5 Birch Street",
        channel="phone",
        filed_by=staff,
        contact_name="Pat Caller",
        contact_phone="215-555-0199",
        contact_email="pat@example.org",
    ).case
    services.change_status(phoned, user=staff, status="closed", resolution="fixed")
    return reporter, web, phoned


def _csv(response) -> list[dict]:
    assert response.status_code == 200 and response.streaming
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text)))


def _geojson(response) -> dict:
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == "application/geo+json"
    return json.loads(b"".join(response.streaming_content))


def test_csv_export_has_the_documented_columns_and_no_personal_data(client, public_cases):
    reporter, web, phoned = public_cases
    response = client.get(CSV)
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = _csv(response)
    assert list(rows[0]) == [name for name, _ in exports.COLUMNS]
    assert [row["tracking_number"] for row in rows] == [web.tracking_number, phoned.tracking_number]
    first, second = rows
    assert (first["lat"], first["lon"]) == (str(round(web.lat, 4)), str(round(web.lon, 4)))
    assert len(first["lat"].split(".")[1]) <= 4
    assert first["service_code"] == "pothole" and first["department"] == "Streets Department"
    assert first["neighborhood_name"] == "Alder Park" and first["supporters"] == "1"
    assert second["status"] == "closed" and second["resolution"] == "fixed"
    assert second["channel"] == "phone" and second["lat"] == "" and second["closed_at"]
    raw = json.dumps(rows)
    for value in (*PERSONAL, reporter.email, reporter.username, str(web.token)):
        assert value not in raw


def test_geojson_export_parses_and_has_no_personal_data(client, public_cases):
    reporter, web, phoned = public_cases
    data = _geojson(client.get(GEOJSON))
    assert data["type"] == "FeatureCollection"
    first, second = data["features"]
    assert first["geometry"] == {
        "type": "Point",
        "coordinates": [round(web.lon, 4), round(web.lat, 4)],
    }
    assert first["properties"]["tracking_number"] == web.tracking_number
    assert set(first["properties"]) == {name for name, _ in exports.COLUMNS}
    assert second["geometry"] is None
    raw = json.dumps(data)
    for value in (*PERSONAL, reporter.email, reporter.username):
        assert value not in raw


def test_exports_filter_like_the_tracker(client, public_cases, places):
    _, web, phoned = public_cases

    def numbers(**query) -> list[str]:
        return [row["tracking_number"] for row in _csv(client.get(CSV, query))]

    assert numbers(status="open") == [web.tracking_number]
    assert numbers(status="closed") == [phoned.tracking_number]
    assert numbers(type="streetlight") == [phoned.tracking_number]
    assert numbers(type="pothole,streetlight") == [web.tracking_number, phoned.tracking_number]
    assert numbers(neighborhood=places[0].slug) == [web.tracking_number]
    today = timezone.localdate()
    assert len(numbers(start_date=today.isoformat(), end_date=today.isoformat())) == 2
    assert numbers(end_date=(today - timedelta(days=1)).isoformat()) == []
    assert numbers(start_date=(today + timedelta(days=1)).isoformat()) == []
    features = _geojson(client.get(GEOJSON, {"status": "open"}))["features"]
    assert [feature["id"] for feature in features] == [web.tracking_number]
    bad = client.get(CSV, {"status": "lost"})
    assert bad.status_code == 400 and b"status" in bad.content
    assert client.get(GEOJSON, {"start_date": "yesterday"}).status_code == 400
    assert client.post(CSV).status_code == 405


@pytest.mark.django_db(transaction=True)
async def test_exports_stream_asynchronously_under_asgi(pothole, places):
    alder, _ = places
    await sync_to_async(f.case)(alder, kind=pothole)
    response = await AsyncClient().get(CSV)
    assert response.status_code == 200 and response.is_async
    lines = [chunk async for chunk in response.streaming_content]
    assert len(lines) == 2 and lines[0].startswith(b"tracking_number,")
    response = await AsyncClient().get(GEOJSON)
    chunks = b"".join([chunk async for chunk in response.streaming_content])
    assert len(json.loads(chunks)["features"]) == 1
    # The rows were read in the thread that holds the database connection; close it there.
    await sync_to_async(connections.close_all)()
