"""Concurrent support is counted exactly: parallel HTTP requests against a real server.

Runs on PostgreSQL (``DATABASE_URL``), where requests really overlap; SQLite serialises writers,
so there the test is skipped.
"""

from __future__ import annotations

import json
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from forums.models import Thread, Vote
from neighborhoods.services import issue_api_token
from tests import factories as f

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="needs PostgreSQL for truly parallel writers"
    ),
]

PEOPLE = 24


def call(base: str, method: str, path: str, key: str) -> tuple[int, dict]:
    request = urllib.request.Request(
        base + path,
        method=method,
        data=b"{}" if method == "POST" else None,
        headers={"Authorization": f"Token {key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        body = response.read()
        return response.status, json.loads(body) if body else {}


def test_parallel_votes_are_all_counted_once_each(live_server, settings):
    settings.ENGAGEMENT = {"FORUM_VOTE_RATE": (1000, 3600)}
    thread = f.thread()
    people = [f.forum_member(thread.neighborhood) for _ in range(PEOPLE)]
    keys = [issue_api_token(user=person)[1] for person in people]
    path = f"/api/v1/threads/{thread.pk}/vote/"

    # Everyone votes twice at once (a double click); then a third withdraws, also doubled.
    jobs = [("POST", key) for key in keys for _ in range(2)]
    jobs += [("DELETE", key) for key in keys[: PEOPLE // 3] for _ in range(2)]
    with ThreadPoolExecutor(max_workers=16) as pool:
        first = list(pool.map(lambda job: call(live_server.url, job[0], path, job[1]), jobs[:48]))
        second = list(pool.map(lambda job: call(live_server.url, job[0], path, job[1]), jobs[48:]))

    assert {status for status, _ in first + second} <= {200, 201}
    expected = PEOPLE - PEOPLE // 3
    thread.refresh_from_db()
    assert Vote.objects.filter(thread=thread, reply=None).count() == expected
    assert thread.vote_count == expected
    status, body = call(live_server.url, "GET", f"/api/v1/threads/{thread.pk}/", keys[-1])
    assert body["vote_count"] == expected


def test_parallel_replies_keep_the_reply_count_exact(live_server, settings):
    thread = f.thread()
    people = [f.forum_member(thread.neighborhood) for _ in range(12)]
    keys = [issue_api_token(user=person)[1] for person in people]

    def post(key: str) -> int:
        request = urllib.request.Request(
            f"{live_server.url}/api/v1/threads/{thread.pk}/replies/",
            method="POST",
            data=json.dumps({"body": "Seen it too, on my way to work."}).encode(),
            headers={"Authorization": f"Token {key}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status

    with ThreadPoolExecutor(max_workers=12) as pool:
        statuses = list(pool.map(post, keys))
    assert statuses == [201] * 12
    assert Thread.objects.get(pk=thread.pk).reply_count == 12
