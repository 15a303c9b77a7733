"""Neighborhood discussion feed throughput with 100,000 threads in the database.

    python benchmarks/threads.py [--threads 100000] [--requests 300] [--database-url URL]

Fills a throwaway database (SQLite file in a temporary directory unless ``--database-url`` is
given) with Philadelphia's 159 neighborhoods and ``--threads`` threads, a quarter of them in Old
City (with tags, authors, votes and replies spread realistically), then requests the Old City
discussion page through Django's full stack (middleware, sessions, templates) and prints requests
per second and queries per request for the default "hot" order, "new", "top this week" and a
deep page. The baseline is a bare view, in the same run and process, that renders the same page
of rows (title, category, tags, author, counts, age) from a prepared Python list with the same
base template: the cost of the page without any data access. The ratio is feed time over bare
time.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import engine_name, print_table, setup_django  # noqa: E402

BARE_TEMPLATE = """{% extends "base.html" %}
{% block content %}
<h1>{{ neighborhood.name }}: discussions</h1>
<ol class="thread-list">
{% for row in rows %}
  <li class="thread-row">
    <a href="{{ row.url }}">{{ row.title }}</a>
    <span>{{ row.category }}</span>
    {% for tag in row.tags %}<span class="tag">{{ tag }}</span>{% endfor %}
    <span>{{ row.author }}</span>
    <span>{{ row.vote_count }} supporters</span> <span>{{ row.reply_count }} replies</span>
    <time datetime="{{ row.created_at|date:'c' }}">{{ row.created_at|timesince }}</time>
  </li>
{% endfor %}
</ol>
{% endblock %}
"""

TITLES = [
    "Streetlight out on {street}",
    "Pothole on {street} near the corner",
    "Illegal dumping behind {street}",
    "Crosswalk paint gone at {street}",
    "Noise from the bar on {street}",
    "Tree roots lifting the sidewalk on {street}",
    "Graffiti on the wall at {street}",
    "Bus stop shelter broken on {street}",
]
STREETS = ["Market", "Arch", "Race", "Vine", "Front", "2nd", "3rd", "Chestnut", "Walnut", "Girard"]
TAGS = ["potholes", "streetlights", "dumping", "crosswalk", "noise", "trees", "graffiti", "transit"]


def fill(total: int, seed: int) -> None:
    from django.contrib.auth import get_user_model
    from django.contrib.contenttypes.models import ContentType
    from django.db import transaction
    from django.utils import timezone
    from taggit.models import Tag, TaggedItem

    from forums.defaults import ensure_default_categories
    from forums.models import ForumCategory, Thread, hot_score
    from neighborhoods.models import Neighborhood, Profile

    rng = random.Random(seed)
    ensure_default_categories()
    categories = list(ForumCategory.objects.all())
    neighborhoods = list(Neighborhood.objects.order_by("pk"))
    old_city = next(n for n in neighborhoods if n.slug == "old-city")
    User = get_user_model()
    users = User.objects.bulk_create(
        [User(username=f"bench{n}", email=f"bench{n}@example.org") for n in range(500)]
    )
    Profile.objects.bulk_create([Profile(user=u, display_name=f"Neighbor {u.pk}") for u in users])
    tags = [Tag.objects.get_or_create(name=name, slug=name)[0] for name in TAGS]
    content_type = ContentType.objects.get_for_model(Thread)
    now = timezone.now()
    batch = 5_000
    with transaction.atomic():
        for start in range(0, total, batch):
            rows = []
            for n in range(start, min(total, start + batch)):
                neighborhood = old_city if n % 4 == 0 else rng.choice(neighborhoods)
                created = now - timedelta(minutes=rng.randint(0, 60 * 24 * 720))
                votes = int(rng.paretovariate(1.3)) - 1
                replies = int(rng.paretovariate(1.5)) - 1
                title = rng.choice(TITLES).format(street=rng.choice(STREETS))
                rows.append(
                    Thread(
                        neighborhood=neighborhood,
                        author=rng.choice(users),
                        category=rng.choice(categories),
                        title=f"{title} ({n})",
                        body="Seen on my way to work.",
                        body_html="<p>Seen on my way to work.</p>",
                        vote_count=votes,
                        reply_count=replies,
                        hot=hot_score(votes, replies, created),
                        created_at=created,
                        last_activity_at=created,
                    )
                )
            created_rows = Thread.objects.bulk_create(rows)
            TaggedItem.objects.bulk_create(
                [
                    TaggedItem(tag=rng.choice(tags), content_type=content_type, object_id=t.pk)
                    for t in created_rows
                    if rng.random() < 0.6
                ]
            )


def bare_rows(slug: str, page_size: int) -> list[dict]:
    """The first page of the hot order, read once before timing: the bare view's data."""
    from forums import services
    from neighborhoods.models import Neighborhood

    neighborhood = Neighborhood.objects.get(slug=slug)
    threads = services.with_tag_names(services.feed(neighborhood, sort="hot")[:page_size])
    return [
        {
            "url": t.get_absolute_url(),
            "title": t.title,
            "category": t.category.name,
            "tags": t._tag_names,
            "author": services.author_name(t.author),
            "vote_count": t.vote_count,
            "reply_count": t.reply_count,
            "created_at": t.created_at,
        }
        for t in threads
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()

    setup_django(args.database_url, urlconf="benchmarks.threads_urls")
    from django.test import Client

    from forums.models import Thread

    if not Thread.objects.exists():
        t0 = time.perf_counter()
        fill(args.threads, args.seed)
        print(f"filled {args.threads:,} threads in {time.perf_counter() - t0:.1f} s")
    total = Thread.objects.count()
    in_old_city = Thread.objects.filter(neighborhood__slug="old-city").count()
    print(
        f"database: {engine_name()}, "
        f"{total:,} threads, {in_old_city:,} in Old City; {args.requests} requests per row"
    )

    from benchmarks import threads_urls
    from forums.conf import app_settings

    threads_urls.ROWS[:] = bare_rows("old-city", app_settings.FORUM_PAGE_SIZE)
    client = Client()
    base = "/neighborhoods/old-city/discussions/"
    cases = [
        ("bare view, prepared rows (baseline)", "/bench/bare/"),
        ("feed, hot (default)", base),
        ("feed, new", base + "?sort=new"),
        ("feed, top this week", base + "?sort=top&period=week"),
        ("feed, hot, page 40", base + "?page=40"),
    ]
    print_table(client, cases, args.requests, heading="page")
    print("ratio = bare requests per second / feed requests per second (lower is better)")


if __name__ == "__main__":
    main()
