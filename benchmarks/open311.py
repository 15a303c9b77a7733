"""Open311 request list throughput with 100,000 cases in the database.

    python benchmarks/open311.py [--cases 100000] [--requests 300] [--database-url URL]

Fills a throwaway database (SQLite file in a temporary directory unless ``--database-url`` is
given) with Philadelphia's 159 neighborhoods, a catalogue of ten service types and ``--cases``
cases filed over two years (statuses, public notes, photos and private contact details spread
realistically), then requests ``GET /open311/v2/requests.json`` through Django's full stack
(middleware included) and prints requests per second and queries per request: the default list
(the most recent 90 days, one page of 50, newest first), the same in XML, with
``extensions=true``, filtered by status and service, a deep page, and a poll by
``updated_after``. The baseline is a bare view, in the same run and process, that dumps the same
page of 50 records as JSON from a prepared Python list: the cost of answering without any data
access. The ratio is bare requests per second over Open311 requests per second.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import engine_name, print_table, setup_django  # noqa: E402

CATALOGUE = [
    ("pothole", "Pothole", "Streets Department", "Streets"),
    ("streetlight", "Streetlight out", "Streets Department", "Streets"),
    ("graffiti", "Graffiti", "Community Life Improvement Program", "Cleanliness"),
    ("dumping", "Illegal dumping", "Sanitation", "Cleanliness"),
    ("missed-trash", "Missed trash or recycling", "Sanitation", "Sanitation"),
    ("abandoned-vehicle", "Abandoned vehicle", "Police", "Vehicles"),
    ("sidewalk", "Broken sidewalk", "Streets Department", "Streets"),
    ("tree", "Tree down or dangerous", "Parks and Recreation", "Trees"),
    ("rodents", "Rodents", "Health Department", "Health"),
    ("noise", "Noise", "Police", "Quality of life"),
]
STREETS = ["Market", "Arch", "Race", "Vine", "Front", "2nd", "3rd", "Chestnut", "Walnut", "Girard"]
NOTES = ["Crew assigned.", "Inspected on site.", "Parts ordered.", "Work scheduled.", "Done."]
OPEN_STATES = ["open", "acknowledged", "in_progress", "scheduled"]


def fill(total: int, seed: int) -> None:
    from django.db import connection, transaction
    from django.utils import timezone
    from shapely.geometry import shape

    from engagement.models import Case, CaseNote, CasePhoto, ServiceType, TrackingCounter
    from neighborhoods.models import Department, Neighborhood

    rng = random.Random(seed)
    neighborhoods = list(Neighborhood.objects.order_by("pk"))
    centres = {}
    for neighborhood in neighborhoods:
        point = shape(neighborhood.boundary).representative_point()
        centres[neighborhood.pk] = (point.y, point.x)
    types = []
    for order, (code, name, department, group) in enumerate(CATALOGUE):
        dept, _ = Department.objects.get_or_create(
            name=department, defaults={"slug": department.lower().replace(" ", "-")}
        )
        types.append(
            ServiceType.objects.create(
                code=code,
                name=name,
                department=dept,
                group=group,
                description=f"Report a {name.lower()}.",
                sort_order=order,
            )
        )
    now = timezone.now()
    # Filed in order, as in a real system: ids and the table's physical order follow time.
    minutes_ago = sorted((rng.randint(0, 60 * 24 * 730) for _ in range(total)), reverse=True)
    batch = 5_000
    with transaction.atomic():
        for start in range(0, total, batch):
            rows = []
            for n in range(start, min(total, start + batch)):
                kind = rng.choice(types)
                neighborhood = rng.choice(neighborhoods)
                lat, lon = centres[neighborhood.pk]
                created = now - timedelta(minutes=minutes_ago[n])
                closed = created < now - timedelta(days=30) or rng.random() < 0.4
                status = "closed" if closed else rng.choice(OPEN_STATES)
                updated = min(now, created + timedelta(hours=rng.randint(1, 24 * 20)))
                rows.append(
                    Case(
                        tracking_number=f"{created.year % 100:02d}-{n + 1:06d}",
                        service_type=kind,
                        department=kind.department,
                        status=status,
                        resolution="fixed" if closed else "",
                        resolution_note="Repaired by the crew." if closed else "",
                        description=f"{kind.name} near {rng.choice(STREETS)} St ({n}).",
                        lat=round(lat + rng.uniform(-0.001, 0.001), 6),
                        lon=round(lon + rng.uniform(-0.001, 0.001), 6),
                        address=f"{rng.randint(1, 2000)} {rng.choice(STREETS)} St",
                        neighborhood=neighborhood,
                        contact_email=f"resident{n}@example.org",
                        channel=rng.choice(["web", "web", "open311", "phone", "liaison"]),
                        supporter_count=int(rng.paretovariate(1.5)),
                        created_at=created,
                        updated_at=updated,
                        expected_at=created + timedelta(days=7),
                        closed_at=updated if closed else None,
                    )
                )
            cases = Case.objects.bulk_create(rows)
            notes, photos = [], []
            for case in cases:
                notes.append(
                    CaseNote(
                        case=case,
                        kind="created",
                        text="Filed.",
                        status_to="open",
                        created_at=case.created_at,
                    )
                )
                for _ in range(rng.randint(0, 3)):
                    notes.append(
                        CaseNote(
                            case=case,
                            kind="note",
                            text=rng.choice(NOTES),
                            is_public=rng.random() < 0.7,
                            created_at=case.updated_at,
                        )
                    )
                if rng.random() < 0.3:
                    photos.append(
                        CasePhoto(case=case, url=f"https://photos.example.org/{case.pk}.jpg")
                    )
            CaseNote.objects.bulk_create(notes)
            CasePhoto.objects.bulk_create(photos)
        TrackingCounter.objects.update_or_create(year=now.year, defaults={"last": total})
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")  # planner statistics, as a maintained database has them


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()

    setup_django(args.database_url, urlconf="benchmarks.open311_urls")
    from django.test import Client
    from django.utils import timezone

    from engagement.models import Case

    if not Case.objects.exists():
        t0 = time.perf_counter()
        fill(args.cases, args.seed)
        print(f"filled {args.cases:,} cases in {time.perf_counter() - t0:.1f} s")
    total = Case.objects.count()
    recent = Case.objects.filter(created_at__gte=timezone.now() - timedelta(days=90)).count()
    print(
        f"database: {engine_name()}, "
        f"{total:,} cases, {recent:,} in the last 90 days; {args.requests} requests per row"
    )

    from benchmarks import open311_urls

    client = Client()
    base = "/open311/v2/requests"
    first_page = json.loads(client.get(base + ".json").content)
    open311_urls.ROWS[:] = first_page
    polled = (timezone.now() - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    rows = [
        ("bare view, prepared rows (baseline)", "/bench/bare.json"),
        ("requests.json (default page of 50)", base + ".json"),
        ("requests.xml", base + ".xml"),
        ("requests.json?extensions=true", base + ".json?extensions=true"),
        ("status=open&service_code=pothole", base + ".json?status=open&service_code=pothole"),
        ("page=40", base + ".json?page=40"),
        ("updated_after (poll, 2 days)", base + f".json?updated_after={polled}"),
    ]
    print_table(client, rows, args.requests, heading="request")
    print(f"each page: {len(first_page)} records")
    print("ratio = bare requests per second / Open311 requests per second (lower is better)")


if __name__ == "__main__":
    main()
