"""What the page benchmarks share: a Django set up on a throwaway database holding Philadelphia's
neighborhoods, and a table of requests per second against a baseline measured in the same run."""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def setup_django(database_url: str = "", *, urlconf: str | None = None) -> Path:
    """Set Django up on ``database_url`` (default: an SQLite file in a new temporary directory),
    migrate it and import the 159 neighborhoods when it has none; return the working directory."""
    workdir = Path(tempfile.mkdtemp(prefix="engagement-bench-"))
    os.environ["DATABASE_URL"] = database_url or f"sqlite:///{workdir}/bench.sqlite3"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo.settings")
    os.environ["DJANGO_DEBUG"] = "0"
    os.environ.setdefault("ENGAGEMENT_DATA_DIR", str(workdir))
    import django
    from django.conf import settings

    django.setup()
    settings.ALLOWED_HOSTS = ["*"]
    if urlconf:
        settings.ROOT_URLCONF = urlconf
    from django.core.management import call_command

    from neighborhoods.importer import import_neighborhoods, read_feature_collection
    from neighborhoods.models import Neighborhood

    call_command("migrate", verbosity=0, interactive=False)
    if not Neighborhood.objects.exists():
        data = read_feature_collection(
            ROOT / "neighborhoods/data/philadelphia-neighborhoods.geojson"
        )
        import_neighborhoods(data, name_property="LISTNAME")
    return workdir


def engine_name() -> str:
    from django.conf import settings

    return settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]


def measure(client, url: str, requests: int) -> tuple[float, float, int, int]:
    """(requests per second, median ms, queries per request, bytes) over ``requests`` GETs."""
    from django.db import connection, reset_queries
    from django.test.utils import CaptureQueriesContext

    response = client.get(url)  # warm-up (templates, prepared statements)
    if response.status_code != 200:
        raise SystemExit(f"{url} answered {response.status_code}: {response.content[:300]!r}")
    reset_queries()  # each request resets the log, so start the capture from an empty one
    with CaptureQueriesContext(connection) as captured:
        client.get(url)
    queries = len(captured.captured_queries)
    timings = []
    start = time.perf_counter()
    for _ in range(requests):
        t0 = time.perf_counter()
        response = client.get(url)
        timings.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - start
    return requests / elapsed, statistics.median(timings) * 1000, queries, len(response.content)


def print_table(client, rows: list[tuple[str, str]], requests: int, *, heading: str) -> None:
    """Measure each (label, url); the first row is the baseline the others' ratios divide."""
    print(f"{heading:<38}{'req/s':>9}{'median ms':>11}{'queries':>9}{'ratio':>8}")
    baseline = None
    for label, url in rows:
        rps, median_ms, queries, _size = measure(client, url, requests)
        baseline = baseline or rps
        print(f"{label:<38}{rps:>9.0f}{median_ms:>11.2f}{queries:>9}{baseline / rps:>7.1f}x")
