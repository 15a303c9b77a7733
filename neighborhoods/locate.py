"""Point lookup: which neighborhood contains a point.

A bounding-box pre-filter in SQL narrows 159 boundaries to one or two candidates; the exact test
uses prepared shapely geometries cached per process, refreshed when a boundary is edited. A point on
an edge shared by two neighborhoods belongs to the one with the lowest id (stable and documented).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import shapely
from shapely import STRtree

from .geometry import prepared_geometries, validate_point
from .models import Neighborhood


def _candidates(lat: float, lon: float):
    return (
        Neighborhood.objects.filter(
            min_lon__lte=lon, max_lon__gte=lon, min_lat__lte=lat, max_lat__gte=lat
        )
        .order_by("pk")
        .only("pk", "name", "slug", "updated_at")
    )


def _ensure_prepared(versions: dict[int, object]) -> None:
    missing = prepared_geometries.missing(versions)
    if missing:
        rows = Neighborhood.objects.filter(pk__in=missing).values_list("pk", "updated_at", "boundary")
        for pk, updated_at, boundary in rows:
            prepared_geometries.store(pk, updated_at, boundary)


def locate(lat: float, lon: float) -> Neighborhood | None:
    """The neighborhood containing (lat, lon), or ``None`` outside every boundary.

    Raises :class:`~neighborhoods.geometry.GeometryError` for coordinates that are not a point.
    """
    lat, lon = validate_point(lat, lon)
    candidates = list(_candidates(lat, lon))
    if not candidates:
        return None
    _ensure_prepared({n.pk: n.updated_at for n in candidates})
    point = shapely.Point(lon, lat)
    for neighborhood in candidates:
        if prepared_geometries.get(neighborhood.pk).covers(point):
            return neighborhood
    return None


class BulkLocator:
    """Vectorised lookup of many points at once (imports, analytics, benchmarks)."""

    def __init__(self, neighborhoods: Iterable[Neighborhood] | None = None) -> None:
        rows = list(neighborhoods if neighborhoods is not None else Neighborhood.objects.order_by("pk"))
        self.neighborhoods: list[Neighborhood] = rows
        self._geoms = [shapely.geometry.shape(n.boundary) for n in rows]
        self._tree = STRtree(self._geoms)

    def locate_many(self, points: Sequence[tuple[float, float]]) -> list[Neighborhood | None]:
        """For each ``(lat, lon)``, the neighborhood that contains it (lowest id on shared edges)."""
        coords = np.asarray(points, dtype=float).reshape(-1, 2)
        geoms = shapely.points(coords[:, 1], coords[:, 0])
        point_idx, geom_idx = self._tree.query(geoms, predicate="covered_by")
        result: list[Neighborhood | None] = [None] * len(coords)
        # The tree keeps rows in id order, so the first hit per point is the lowest id.
        for p, g in sorted(zip(point_idx.tolist(), geom_idx.tolist(), strict=True)):
            if result[p] is None:
                result[p] = self.neighborhoods[g]
        return result
