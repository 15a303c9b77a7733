"""GeoJSON geometry handling without GDAL: validation, bounding boxes and point lookup caches."""

from __future__ import annotations

import json
import math
import threading
from dataclasses import dataclass
from typing import Any

import shapely
from shapely.geometry import mapping, shape
from shapely.validation import explain_validity

AREA_TYPES = ("Polygon", "MultiPolygon")
LON_RANGE = (-180.0, 180.0)
LAT_RANGE = (-90.0, 90.0)


class GeometryError(ValueError):
    """A geometry that cannot be used, with a reason a person can act on."""


@dataclass(frozen=True)
class BBox:
    min_lon: float
    min_lat: float
    max_lon: float
    max_lat: float


def parse_area(value: Any) -> dict:
    """Validate a GeoJSON (Multi)Polygon given as a dict or JSON text; return it as a dict.

    Raises :class:`GeometryError` with the reason when the value is not JSON, not a polygon,
    has coordinates outside longitude/latitude, or is not a valid simple polygon.
    """
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise GeometryError(f"not valid JSON ({exc.msg})") from exc
    if not isinstance(value, dict):
        raise GeometryError("a GeoJSON geometry object is expected")
    if value.get("type") == "Feature":
        value = value.get("geometry") or {}
    geometry_type = value.get("type")
    if geometry_type not in AREA_TYPES:
        raise GeometryError(f"geometry type {geometry_type!r} is not a Polygon or MultiPolygon")
    try:
        geom = shape(value)
    except Exception as exc:  # shapely raises several types on malformed coordinates
        raise GeometryError(f"malformed coordinates ({exc})") from exc
    if geom.is_empty:
        raise GeometryError("the geometry is empty")
    min_lon, min_lat, max_lon, max_lat = geom.bounds
    if not all(math.isfinite(v) for v in geom.bounds):
        raise GeometryError("coordinates must be finite numbers")
    if min_lon < LON_RANGE[0] or max_lon > LON_RANGE[1]:
        raise GeometryError("longitudes must lie between -180 and 180")
    if min_lat < LAT_RANGE[0] or max_lat > LAT_RANGE[1]:
        raise GeometryError("latitudes must lie between -90 and 90")
    if not geom.is_valid:
        raise GeometryError(f"invalid polygon: {explain_validity(geom)}")
    return _as_plain_geojson(geom)


def _as_plain_geojson(geom: shapely.Geometry) -> dict:
    return json.loads(json.dumps(mapping(geom)))


def bbox_of(area: dict) -> BBox:
    min_lon, min_lat, max_lon, max_lat = shape(area).bounds
    return BBox(min_lon, min_lat, max_lon, max_lat)


def validate_point(lat: Any, lon: Any) -> tuple[float, float]:
    """Return ``(lat, lon)`` as floats, or raise :class:`GeometryError`."""
    try:
        lat_f, lon_f = float(lat), float(lon)
    except (TypeError, ValueError) as exc:
        raise GeometryError("lat and lon must be decimal numbers") from exc
    if not (math.isfinite(lat_f) and math.isfinite(lon_f)):
        raise GeometryError("lat and lon must be finite numbers")
    if not LAT_RANGE[0] <= lat_f <= LAT_RANGE[1]:
        raise GeometryError("lat must lie between -90 and 90")
    if not LON_RANGE[0] <= lon_f <= LON_RANGE[1]:
        raise GeometryError("lon must lie between -180 and 180")
    return lat_f, lon_f


class PreparedGeometryCache:
    """Prepared shapely geometries per neighborhood id, rebuilt when the row's version changes.

    One instance lives per process; lookups after the first need no boundary from the database.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[int, tuple[Any, shapely.Geometry]] = {}

    def missing(self, versions: dict[int, Any]) -> list[int]:
        entries = self._entries
        return [pk for pk, version in versions.items() if entries.get(pk, (None,))[0] != version]

    def store(self, pk: int, version: Any, area: dict) -> None:
        geom = shape(area)
        shapely.prepare(geom)
        with self._lock:
            self._entries[pk] = (version, geom)

    def get(self, pk: int) -> shapely.Geometry:
        return self._entries[pk][1]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


prepared_geometries = PreparedGeometryCache()
