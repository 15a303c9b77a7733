"""Concurrent escalation of one thread creates one case (PostgreSQL: truly parallel writers)."""

from __future__ import annotations

import threading

import pytest
from django.db import close_old_connections, connection

from engagement import services
from engagement.models import Case, TrackingCounter
from neighborhoods.models import Membership
from tests import factories as f

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="needs PostgreSQL for truly parallel writers"
    ),
]


def run_at_once(calls) -> list:
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def worker(n, call):
        try:
            barrier.wait()
            results[n] = call()
        except Exception as exc:  # reported below
            results[n] = exc
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=worker, args=(n, c)) for n, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


def test_two_organizers_and_the_author_escalating_at_once_get_one_case():
    f.forum_category()
    thread = f.thread()
    kind = f.service_type()
    organizers = [
        f.forum_member(thread.neighborhood, role=Membership.Role.ORGANIZER) for _ in range(5)
    ]
    people = [thread.author, *organizers]
    results = run_at_once(
        [
            (lambda person=person: services.escalate_thread(thread, user=person, service_type=kind))
            for person in people
        ]
    )
    errors = [r for r in results if isinstance(r, Exception)]
    assert errors == []
    cases = {r.case.pk for r in results}
    assert len(cases) == 1 and sum(r.created for r in results) == 1
    assert Case.objects.count() == 1
    # No tracking number was used up by the losers.
    assert TrackingCounter.objects.get().last == 1


def test_parallel_retries_with_one_idempotency_key_file_one_case():
    neighborhood = f.NeighborhoodFactory()
    kind = f.service_type()
    reporter = f.forum_member(neighborhood)
    lat, lon = f.inside(neighborhood)
    results = run_at_once(
        [
            lambda: services.file_case(
                service_type=kind,
                reporter=reporter,
                lat=lat,
                lon=lon,
                description="Retry storm",
                idempotency_key="app-7f3a",
            )
            for _ in range(6)
        ]
    )
    assert [r for r in results if isinstance(r, Exception)] == []
    assert len({r.case.pk for r in results}) == 1
    assert Case.objects.count() == 1
