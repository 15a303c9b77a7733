"""Point lookup: which neighborhood contains a point.

A bounding-box pre-filter in SQL narrows 159 boundaries to one or two candidates; the exact test
uses prepared shapely geometries cached per process, refreshed when a boundary is edited. A point on
an edge shared by two neighborhoods belongs to the one with the lowest id (stable and documented).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import shapely
from django.db import connections, router
from shapely import STRtree

from .geometry import prepared_geometries, validate_point
from .models import Neighborhood

_FIELDS = ("id", "name", "slug", "updated_at")


def _candidate_sql(connection) -> str:
    """The pre-filter query, written once per backend: Django's ORM costs ~10x the query itself."""
    quote = connection.ops.quote_name
    table = quote(Neighborhood._meta.db_table)
    columns = ", ".join(quote(Neighborhood._meta.get_field(f).column) for f in _FIELDS)
    return (
        f"SELECT {columns} FROM {table} "
        f"WHERE {quote('min_lon')} <= %s AND {quote('max_lon')} >= %s "
        f"AND {quote('min_lat')} <= %s AND {quote('max_lat')} >= %s "
        f"ORDER BY {quote('id')}"
    )


def _candidates(lat: float, lon: float) -> list[tuple]:
    connection = connections[router.db_for_read(Neighborhood)]
    sql = _SQL.get(connection.vendor)
    if sql is None:
        sql = _SQL[connection.vendor] = _candidate_sql(connection)
    with connection.cursor() as cursor:
        cursor.execute(sql, [lon, lon, lat, lat])
        rows = cursor.fetchall()
    field = Neighborhood._meta.get_field("updated_at")
    converters = connection.ops.get_db_converters(field.get_col(Neighborhood._meta.db_table))
    if rows and converters:
        # SQLite hands back naive datetimes; convert them as the ORM would.
        rows = [
            (pk, name, slug, _convert(value, converters, field, connection))
            for pk, name, slug, value in rows
        ]
    return rows


def _convert(value, converters, field, connection):
    for converter in converters:
        value = converter(value, field, connection)
    return value


_SQL: dict[str, str] = {}


def _ensure_prepared(versions: dict[int, object]) -> None:
    missing = prepared_geometries.missing(versions)
    if missing:
        rows = Neighborhood.objects.filter(pk__in=missing).values_list(
            "pk", "updated_at", "boundary"
        )
        for pk, updated_at, boundary in rows:
            prepared_geometries.store(pk, updated_at, boundary)


def locate(lat: float, lon: float) -> Neighborhood | None:
    """The neighborhood containing (lat, lon), or ``None`` outside every boundary.

    The returned instance carries ``name``, ``slug`` and ``updated_at``; other fields load on
    access. Raises :class:`~neighborhoods.geometry.GeometryError` for coordinates that are not a
    point.
    """
    lat, lon = validate_point(lat, lon)
    candidates = _candidates(lat, lon)
    if not candidates:
        return None
    _ensure_prepared({row[0]: row[3] for row in candidates})
    point = shapely.Point(lon, lat)
    for row in candidates:
        if prepared_geometries.get(row[0]).covers(point):
            return Neighborhood.from_db(router.db_for_read(Neighborhood), _FIELDS, row)
    return None


class BulkLocator:
    """Vectorised lookup of many points at once (imports, analytics, benchmarks)."""

    def __init__(self, neighborhoods: Iterable[Neighborhood] | None = None) -> None:
        rows = list(
            neighborhoods if neighborhoods is not None else Neighborhood.objects.order_by("pk")
        )
        self.neighborhoods: list[Neighborhood] = rows
        self._geoms = [shapely.geometry.shape(n.boundary) for n in rows]
        self._tree = STRtree(self._geoms)

    def locate_many(self, points: Sequence[tuple[float, float]]) -> list[Neighborhood | None]:
        """For each ``(lat, lon)``, the neighborhood containing it (lowest id on shared edges)."""
        coords = np.asarray(points, dtype=float).reshape(-1, 2)
        geoms = shapely.points(coords[:, 1], coords[:, 0])
        point_idx, geom_idx = self._tree.query(geoms, predicate="covered_by")
        result: list[Neighborhood | None] = [None] * len(coords)
        # Compare ids rather than tree positions: the caller may pass rows in any order.
        for p, g in zip(point_idx.tolist(), geom_idx.tolist(), strict=True):
            candidate = self.neighborhoods[g]
            if result[p] is None or candidate.pk < result[p].pk:
                result[p] = candidate
        return result


def intersecting(area: dict) -> list[Neighborhood]:
    """Neighborhoods whose boundary overlaps a GeoJSON (Multi)Polygon by more than an edge.

    Bounding boxes narrow the candidates in SQL; the exact test uses the prepared geometries.
    Ordered by name.
    """
    geom = shapely.geometry.shape(area)
    min_lon, min_lat, max_lon, max_lat = geom.bounds
    candidates = list(
        Neighborhood.objects.filter(
            min_lon__lte=max_lon, max_lon__gte=min_lon, min_lat__lte=max_lat, max_lat__gte=min_lat
        ).only("id", "name", "slug", "updated_at")
    )
    _ensure_prepared({n.pk: n.updated_at for n in candidates})
    shapely.prepare(geom)
    touching = []
    for neighborhood in candidates:
        boundary = prepared_geometries.get(neighborhood.pk)
        if boundary.intersects(geom) and not boundary.touches(geom):
            touching.append(neighborhood)
    return sorted(touching, key=lambda n: n.name)
