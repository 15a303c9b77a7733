"""Open data: every 311 case as CSV and as GeoJSON, without personal data.

Public, read-only and streamed (rows are read from the database in chunks as they are sent, so
the size of the export does not matter). The same filters as the public tracker:

- ``status``: ``open`` (every open state) or one status;
- ``type``: service codes, comma-separated;
- ``neighborhood``: a neighborhood's slug;
- ``start_date`` / ``end_date``: filed on or after / on or before (``YYYY-MM-DD``, inclusive).

Never exported: the reporter, contact details, who filed it, the description and address (free
text that may name people or homes), answers, photos and notes. Locations are rounded to four
decimals (about 10 metres). :data:`COLUMNS` documents each column; the GeoJSON features carry the
same names as properties, with the point as geometry (``null`` for cases given by address only).
"""

from __future__ import annotations

import csv
import json
from collections.abc import AsyncIterator, Iterator
from datetime import date, datetime, time, timedelta
from itertools import islice

from asgiref.sync import sync_to_async
from django.core.exceptions import ValidationError
from django.core.handlers.asgi import ASGIRequest
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.utils import timezone
from django.utils.dateparse import parse_date
from django.views.decorators.http import require_GET

from . import services
from .models import Case

COORDINATE_DECIMALS = 4
CHUNK = 2000
GEOJSON_CONTENT_TYPE = "application/geo+json"

COLUMNS: list[tuple[str, str]] = [
    ("tracking_number", "The case's tracking number, e.g. 26-000123 (year, then a counter)."),
    ("service_code", "Code of the service type (the Open311 service_code)."),
    ("service_name", "Name of the service type, e.g. Pothole."),
    ("department", "The city department responsible."),
    ("status", "open, acknowledged, in_progress, scheduled or closed."),
    (
        "resolution",
        "How a closed case ended: fixed, not_fixed, duplicate, not_city (another party's "
        "responsibility) or unable_to_locate; empty while open.",
    ),
    ("neighborhood", "Slug of the neighborhood the case lies in; empty when unknown."),
    ("neighborhood_name", "Name of that neighborhood."),
    ("lat", "Latitude (WGS 84) rounded to 4 decimals, about 10 m; empty for an address only."),
    ("lon", "Longitude (WGS 84) rounded to 4 decimals; empty for an address only."),
    ("created_at", "When the case was filed (ISO 8601 with the UTC offset)."),
    ("acknowledged_at", "When the department first acknowledged it; empty if not yet."),
    ("closed_at", "When it was closed; empty while open."),
    ("expected_at", "When it is due under the service level (working days)."),
    ("supporters", "People who reported it or said they have the same problem."),
    ("channel", "How it arrived: web, api, phone (call taker), liaison or open311."),
]
_FIELDS = (
    "tracking_number",
    "service_type__code",
    "service_type__name",
    "department__name",
    "status",
    "resolution",
    "neighborhood__slug",
    "neighborhood__name",
    "lat",
    "lon",
    "created_at",
    "acknowledged_at",
    "closed_at",
    "expected_at",
    "supporter_count",
    "channel",
)
_DATES = {10, 11, 12, 13}
_COORDINATES = {8, 9}


def exported_cases(params) -> QuerySet[Case]:
    """The cases to export for query ``params``, oldest first. Raises ``ValidationError``."""
    cases = services.filter_cases(
        Case.objects.all(),
        status=params.get("status", "").strip(),
        service_code=params.get("type", "").strip(),
        neighborhood=params.get("neighborhood", "").strip(),
    )
    tz = timezone.get_current_timezone()
    start, end = _date(params, "start_date"), _date(params, "end_date")
    if start:
        cases = cases.filter(created_at__gte=datetime.combine(start, time.min, tzinfo=tz))
    if end:
        next_day = datetime.combine(end + timedelta(days=1), time.min, tzinfo=tz)
        cases = cases.filter(created_at__lt=next_day)
    return cases.order_by("created_at", "id")


def _date(params, name: str) -> date | None:
    value = params.get(name, "").strip()
    if not value:
        return None
    try:
        parsed = parse_date(value[:10])
    except ValueError:
        parsed = None
    if parsed is None:
        raise ValidationError({name: "Give a date as YYYY-MM-DD."})
    return parsed


def public_row(values: tuple) -> list:
    """One case as exported: coordinates rounded, times in ISO 8601."""
    row = list(values)
    for index in _COORDINATES:
        if row[index] is not None:
            row[index] = round(row[index], COORDINATE_DECIMALS)
    for index in _DATES:
        if row[index] is not None:
            row[index] = timezone.localtime(row[index]).isoformat()
    return row


def _rows(cases: QuerySet[Case]) -> Iterator[list]:
    for values in cases.values_list(*_FIELDS).iterator(chunk_size=CHUNK):
        yield public_row(values)


def _take(rows: Iterator[list]) -> list[list]:
    return list(islice(rows, CHUNK))


async def _arows(cases: QuerySet[Case]) -> AsyncIterator[list]:
    """The rows of :func:`_rows`, each chunk read in the thread that holds the database
    connection (``QuerySet.aiterator`` cannot stream ``values_list`` rows)."""
    rows = _rows(cases)
    while True:
        chunk = await sync_to_async(_take)(rows)
        for row in chunk:
            yield row
        if len(chunk) < CHUNK:
            return


class _Echo:
    """A file whose ``write`` returns what it is given: ``csv.writer`` then yields lines."""

    def write(self, value: str) -> str:
        return value


_HEADER = [name for name, _ in COLUMNS]


def _csv_line(writer, row: list) -> str:
    return writer.writerow(["" if value is None else value for value in row])


def _csv_lines(cases: QuerySet[Case]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(_HEADER)
    for row in _rows(cases):
        yield _csv_line(writer, row)


async def _acsv_lines(cases: QuerySet[Case]) -> AsyncIterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(_HEADER)
    async for row in _arows(cases):
        yield _csv_line(writer, row)


def _feature(row: list) -> str:
    lat, lon = row[8], row[9]
    geometry = {"type": "Point", "coordinates": [lon, lat]} if lat is not None else None
    feature = {
        "type": "Feature",
        "id": row[0],
        "geometry": geometry,
        "properties": dict(zip(_HEADER, row, strict=True)),
    }
    return json.dumps(feature, ensure_ascii=False, separators=(",", ":"))


_GEOJSON_START = '{"type":"FeatureCollection","features":['
_GEOJSON_END = "]}\n"


def _geojson_chunks(cases: QuerySet[Case]) -> Iterator[str]:
    yield _GEOJSON_START
    separator = ""
    for row in _rows(cases):
        yield separator + _feature(row)
        separator = ",\n"
    yield _GEOJSON_END


async def _ageojson_chunks(cases: QuerySet[Case]) -> AsyncIterator[str]:
    yield _GEOJSON_START
    separator = ""
    async for row in _arows(cases):
        yield separator + _feature(row)
        separator = ",\n"
    yield _GEOJSON_END


def _export(request: HttpRequest, sync_body, async_body, content_type: str, filename: str):
    try:
        cases = exported_cases(request.GET)
    except ValidationError as exc:
        message = "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
        return HttpResponse(message, status=400, content_type="text/plain; charset=utf-8")
    # Under ASGI a synchronous iterator would be read whole before sending: stream asynchronously.
    body = async_body(cases) if isinstance(request, ASGIRequest) else sync_body(cases)
    response = StreamingHttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Access-Control-Allow-Origin"] = "*"
    return response


@require_GET
def cases_csv(request: HttpRequest) -> HttpResponse:
    """``/cases/export.csv``: one line per case, the columns of :data:`COLUMNS`."""
    filename = f"cases-{timezone.localdate():%Y-%m-%d}.csv"
    return _export(request, _csv_lines, _acsv_lines, "text/csv; charset=utf-8", filename)


@require_GET
def cases_geojson(request: HttpRequest) -> HttpResponse:
    """``/cases/export.geojson``: a FeatureCollection, one Point feature per case."""
    filename = f"cases-{timezone.localdate():%Y-%m-%d}.geojson"
    return _export(request, _geojson_chunks, _ageojson_chunks, GEOJSON_CONTENT_TYPE, filename)
