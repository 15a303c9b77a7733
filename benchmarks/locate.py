"""Point lookup throughput on Philadelphia's 159 real neighborhoods.

    python benchmarks/locate.py [--points 100000] [--naive-sample 5000] [--seed 7]

Draws random points over the city's bounding box (plus a margin, so some fall outside) and prints
lookups per second for

* ``locate()``: the SQL bounding-box pre-filter plus prepared shapely geometries (one query per
  point, the path the API and the home-location form take),
* ``BulkLocator``: an STRtree over all boundaries, vectorised (imports, analytics),
* the baseline: a naive loop testing the point against every boundary in turn (shapely, not
  prepared), timed on a sample of the same points because it is slow,

then the ratios against the baseline, and checks that all three agree on the sample. The database
is a throwaway in-memory SQLite one unless ``--database-url`` is given.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--naive-sample", type=int, default=5_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--database-url", default="sqlite://:memory:")
    args = parser.parse_args()

    os.environ["DATABASE_URL"] = args.database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo.settings")
    os.environ.setdefault("DJANGO_DEBUG", "0")
    import django

    django.setup()
    import shapely
    from django.core.management import call_command
    from shapely.geometry import shape

    from neighborhoods.importer import import_neighborhoods, read_feature_collection
    from neighborhoods.locate import BulkLocator, locate
    from neighborhoods.models import Neighborhood

    call_command("migrate", verbosity=0, interactive=False)
    if not Neighborhood.objects.exists():
        data = read_feature_collection(
            ROOT / "neighborhoods/data/philadelphia-neighborhoods.geojson"
        )
        import_neighborhoods(data, name_property="LISTNAME")
    neighborhoods = list(Neighborhood.objects.order_by("pk"))
    box = (
        min(n.min_lon for n in neighborhoods),
        min(n.min_lat for n in neighborhoods),
        max(n.max_lon for n in neighborhoods),
        max(n.max_lat for n in neighborhoods),
    )
    margin = 0.01
    rng = random.Random(args.seed)
    points = [
        (
            rng.uniform(box[1] - margin, box[3] + margin),
            rng.uniform(box[0] - margin, box[2] + margin),
        )
        for _ in range(args.points)
    ]
    sample = points[: min(args.naive_sample, len(points))]
    print(
        f"{len(neighborhoods)} neighborhoods, {len(points):,} random points "
        f"(bounding box {box[0]:.4f},{box[1]:.4f} to {box[2]:.4f},{box[3]:.4f} ± {margin}°)"
    )

    # Baseline: every boundary, in order, for every point.
    plain = [(n, shape(n.boundary)) for n in neighborhoods]
    started = time.perf_counter()
    naive = []
    for lat, lon in sample:
        point = shapely.Point(lon, lat)
        naive.append(next((n for n, geom in plain if geom.covers(point)), None))
    naive_rate = len(sample) / (time.perf_counter() - started)

    # The naive loop as a request handler would run it: read every boundary, then loop.
    per_request_sample = sample[: max(1, len(sample) // 25)]
    started = time.perf_counter()
    for lat, lon in per_request_sample:
        point = shapely.Point(lon, lat)
        next(
            (
                pk
                for pk, boundary in Neighborhood.objects.values_list("pk", "boundary")
                if shape(boundary).covers(point)
            ),
            None,
        )
    per_request_rate = len(per_request_sample) / (time.perf_counter() - started)

    locate(*points[0])  # fill the per-process cache, as a running server has it
    started = time.perf_counter()
    located = [locate(lat, lon) for lat, lon in points]
    locate_rate = len(points) / (time.perf_counter() - started)

    started = time.perf_counter()
    bulk = BulkLocator(neighborhoods).locate_many(points)
    bulk_rate = len(points) / (time.perf_counter() - started)

    def ids(rows):
        return [row.pk if row else None for row in rows]

    inside = sum(1 for row in located if row is not None)
    agree_locate = ids(located[: len(sample)]) == ids(naive)
    agree_bulk = ids(bulk) == ids(located)
    print(f"points inside a neighborhood: {inside:,} of {len(points):,}")
    print(
        f"naive loop, boundaries read per lookup: {per_request_rate:9,.0f} lookups/s  "
        f"(sample of {len(per_request_sample):,})"
    )
    print(
        f"naive loop, boundaries kept in memory:  {naive_rate:9,.0f} lookups/s  "
        f"(sample of {len(sample):,}; the baseline)"
    )
    print(
        f"locate(), SQL bbox + prepared cache:    {locate_rate:9,.0f} lookups/s  "
        f"ratio {locate_rate / naive_rate:5.2f}x in-memory loop, "
        f"{locate_rate / per_request_rate:,.0f}x per-lookup loop"
    )
    print(
        f"BulkLocator, STRtree vectorised:        {bulk_rate:9,.0f} lookups/s  "
        f"ratio {bulk_rate / naive_rate:5.2f}x in-memory loop"
    )
    print(f"results agree: locate vs naive {agree_locate}, bulk vs locate {agree_bulk}")
    if not (agree_locate and agree_bulk):
        sys.exit(1)


if __name__ == "__main__":
    main()
