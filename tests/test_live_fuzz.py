"""Hostile and broken input on ``/ws/live/``: every bad message gets an error with a code, the
socket stays open and keeps working, and the worker never crashes.

The generator is seeded (``LIVE_FUZZ_SEED`` overrides the seed) so a failure reproduces.
"""

from __future__ import annotations

import json
import logging
import os
import random
from typing import Any

import pytest

from tests import test_live
from tests.factories import NeighborhoodFactory
from tests.test_live import TIMEOUT, Live, db, make_application, scenario

pytestmark = pytest.mark.django_db

SEED = int(os.environ.get("LIVE_FUZZ_SEED", "20261107"))
ERROR_CODES = {
    "bad_message",
    "bad_json",
    "too_large",
    "unknown_type",
    "bad_topic",
    "unknown_topic",
    "not_found",
    "bad_since",
    "already_subscribed",
    "not_subscribed",
    "too_many_subscriptions",
    "auth_required",
    "bad_token",
    "auth_failed",
    "rate_limited",
}


# The consumer tests' fixtures: the in-memory layer and settings overrides.
live_settings = test_live.live_settings
live_config = test_live.live_config


@pytest.fixture(autouse=True)
def fuzz_settings(live_settings, caplog):
    """No rate limit unless a test asks for one; fail on anything the consumer logs as an error."""
    live_settings.ENGAGEMENT = {
        **live_settings.ENGAGEMENT,
        "LIVE_MESSAGES_PER_SECOND": 100_000,
        "LIVE_MESSAGE_BURST": 100_000,
    }
    caplog.set_level(logging.ERROR, logger="alerts")
    yield live_settings
    crashes = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not crashes, [r.getMessage() for r in crashes]


@pytest.fixture
def app():
    return make_application()


def value(rng: random.Random, depth: int = 0) -> Any:
    """A random JSON value of any type."""
    kinds = ["null", "bool", "int", "float", "str", "list", "dict"] if depth < 3 else ["int"]
    kind = rng.choice(kinds)
    if kind == "null":
        return None
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "int":
        return rng.choice([0, -1, 1, 2**31, 2**63, -(2**63), 10**30, rng.randint(-999, 999)])
    if kind == "float":
        return rng.choice([0.5, -1.5, 1e308, 3.0, rng.random()])
    if kind == "str":
        return rng.choice(["", "x", "user", "neighborhood:", "ping", "\u0000", "é" * 5, "🙂"])
    if kind == "list":
        return [value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return {rng.choice(["type", "topic", "since", "token", "x"]): value(rng, depth + 1)}


def bad_messages(rng: random.Random, slug: str) -> list[tuple[str, str | bytes]]:
    """(label, frame) pairs; text frames are ``str``, binary frames ``bytes``."""
    frames: list[tuple[str, str | bytes]] = []
    for n in range(15):
        frames.append((f"random bytes {n}", rng.randbytes(rng.randint(0, 64))))
    for n in range(15):
        text = "".join(chr(rng.randint(1, 0x2FFF)) for _ in range(rng.randint(0, 40)))
        frames.append((f"random text {n}", text))
    frames += [
        ("empty", ""),
        ("whitespace", "   "),
        ("truncated json", '{"type": "subscribe", "topic": '),
        ("json null", "null"),
        ("json number", "42"),
        ("json string", '"subscribe"'),
        ("json list", '[{"type": "ping"}]'),
        ("NaN", '{"type": NaN}'),
        ("no type", json.dumps({"topic": f"neighborhood:{slug}"})),
        ("deeply nested list", "[" * 3000 + "]" * 3000),
        ("deeply nested object", '{"a":' * 900 + "1" + "}" * 900),
        (
            "nested within limit",
            json.dumps({"type": "ping", "x": json.loads("[" * 500 + "]" * 500)}),
        ),
        ("huge", json.dumps({"type": "ping", "pad": "x" * 5000})),
        ("huge multibyte", json.dumps({"type": "ping", "pad": "é" * 2100}, ensure_ascii=False)),
        ("much too huge", json.dumps({"type": "subscribe", "topic": "x" * 200_000})),
        ("lone surrogate", '{"type": "subscribe", "topic": "\\ud800"}'),
        ("lone surrogate raw", '{"type": "subscribe", "topic": "\ud800"}'),
    ]
    for kind in ("", "PING", "Subscribe", "publish", "event", "hello", "x" * 300, "ping "):
        frames.append((f"unknown type {kind[:20]!r}", json.dumps({"type": kind})))
    for kind in (None, 1, 1.5, True, [], {}, ["ping"]):
        frames.append((f"type {kind!r}", json.dumps({"type": kind})))
    topics: list[Any] = [
        None,
        1,
        True,
        [],
        {},
        ["neighborhood", slug],
        {"kind": "neighborhood"},
        "",
        ":",
        "neighborhood:",
        ":" + slug,
        "neighborhood:" + slug + ":x",
        "neighborhood: " + slug,
        "neighborhood:" + slug.upper() + "-nope",
        "NEIGHBORHOOD:" + slug,
        "neighborhood:../../etc",
        "neighborhood:" + "a" * 89,
        "weather:today",
        "user:1",
        "user:",
        "user",  # anonymous: auth_required
        "alert:-1",
        "alert:1e3",
        "alert:" + "9" * 80,
        "alert:0x10",
        "thread:1",
        "case:25-000123",
        "live.neighborhood." + slug,
        "neighborhood:" + slug + "\u0000",
        "neighborhood:" + slug + "\n",
        "neighborhood:ślą",
        "x" * 5000,
    ]
    for topic in topics:
        frames.append(
            (f"subscribe {str(topic)[:30]!r}", json.dumps({"type": "subscribe", "topic": topic}))
        )
        frames.append(
            (
                f"unsubscribe {str(topic)[:30]!r}",
                json.dumps({"type": "unsubscribe", "topic": topic}),
            )
        )
    for since in (
        "5",
        "-1",
        -1,
        True,
        False,
        1.5,
        2.0,
        2**63,
        10**30,
        -(10**30),
        [],
        {},
        "",
        1e308,
    ):
        frames.append(
            (
                f"since {since!r}",
                json.dumps({"type": "subscribe", "topic": f"neighborhood:{slug}", "since": since}),
            )
        )
    for token in (None, 1, True, [], {}, "", "x" * 201, "not-a-token", "\u0000"):
        frames.append((f"token {token!r}", json.dumps({"type": "auth", "token": token})))
    for n in range(60):
        message = {"type": rng.choice(["subscribe", "unsubscribe", "auth", "ping", "x"])}
        for key in rng.sample(["topic", "since", "token", "extra"], rng.randint(0, 3)):
            message[key] = value(rng)
        frames.append((f"random message {n}: {json.dumps(message)[:60]}", json.dumps(message)))
    rng.shuffle(frames)
    return frames


async def send_frame(client: Live, frame: str | bytes) -> None:
    # Straight to the application: the test communicator refuses empty frames.
    key = "bytes" if isinstance(frame, bytes) else "text"
    await client.communicator.send_input({"type": "websocket.receive", key: frame})


async def still_works(client: Live, topic: str) -> None:
    """Ping answers, and the socket can still subscribe and unsubscribe."""
    assert (await client.ping())["type"] == "pong"
    await client.send(type="subscribe", topic=topic)
    assert (await client.until("subscribed"))[-1]["type"] == "subscribed"
    await client.send(type="unsubscribe", topic=topic)
    assert await client.receive() == {"type": "unsubscribed", "topic": topic}


@scenario
async def test_bad_messages_get_an_error_and_the_socket_stays_open(app):
    neighborhood = await db(NeighborhoodFactory)()
    slug = neighborhood.slug
    rng = random.Random(SEED)
    client = await Live(app).connect()
    topic = f"neighborhood:{slug}"
    for label, frame in bad_messages(rng, slug):
        await send_frame(client, frame)
        reply = await client.receive(TIMEOUT)
        context = f"seed {SEED}, frame {label!r}: {reply}"
        if reply["type"] == "subscribed":
            # A valid subscription among the random ones (since 0 on a real slug, say): undo it.
            await client.send(type="unsubscribe", topic=reply["topic"])
            assert (await client.receive())["type"] == "unsubscribed", context
            continue
        if reply["type"] == "pong":
            continue
        assert reply["type"] == "error", context
        assert reply["code"] in ERROR_CODES, context
        assert isinstance(reply["message"], str) and reply["message"], context
        assert await client.nothing(0.005), context
    await still_works(client, topic)
    await client.close()


@scenario
async def test_specific_errors(app, live_config):
    live_config(LIVE_MAX_SUBSCRIPTIONS=2)
    places = [await db(NeighborhoodFactory)() for _ in range(3)]
    client = await Live(app).connect()

    async def error_for(frame: str | bytes) -> str:
        await send_frame(client, frame)
        reply = await client.receive()
        assert reply["type"] == "error", reply
        return reply["code"]

    assert await error_for(b"\x00\x01") == "bad_message"
    assert await error_for("{") == "bad_json"
    # Deeper than some Pythons' JSON parser recurses (an error there), valid elsewhere (a list).
    assert await error_for("[" * 2000 + "]" * 2000) in ("bad_json", "bad_message")
    assert await error_for(json.dumps({"type": "ping", "pad": "x" * 5000})) == "too_large"
    assert await error_for("[1]") == "bad_message"
    assert await error_for('{"type": "dance"}') == "unknown_type"
    assert await error_for('{"type": "subscribe", "topic": ["a"]}') == "bad_topic"
    assert await error_for('{"type": "subscribe", "topic": "nope:x"}') == "unknown_topic"
    assert await error_for('{"type": "subscribe", "topic": "neighborhood:nope"}') == "not_found"
    assert await error_for('{"type": "subscribe", "topic": "user"}') == "auth_required"
    for since in ('"5"', "-1", "true", "1.5", "2.0", str(2**63), str(10**30)):
        frame = (
            f'{{"type": "subscribe", "topic": "neighborhood:{places[0].slug}", "since": {since}}}'
        )
        assert await error_for(frame) == "bad_since", since
    for place in places[:2]:
        _, reply = await client.subscribe(f"neighborhood:{place.slug}")
        assert reply["type"] == "subscribed"
    assert (
        await error_for(
            json.dumps({"type": "subscribe", "topic": f"neighborhood:{places[0].slug}"})
        )
        == "already_subscribed"
    )
    assert (
        await error_for(
            json.dumps({"type": "subscribe", "topic": f"neighborhood:{places[2].slug}"})
        )
        == "too_many_subscriptions"
    )
    assert (
        await error_for('{"type": "unsubscribe", "topic": "neighborhood:nope"}') == "not_subscribed"
    )
    assert await error_for('{"type": "auth", "token": 5}') == "bad_token"
    assert await error_for('{"type": "auth", "token": "guess"}') == "auth_failed"
    assert (await client.ping())["type"] == "pong"
    await client.close()


@scenario
async def test_bursts_over_the_rate_limit_are_refused_then_allowed_again(app, live_config):
    live_config(LIVE_MESSAGES_PER_SECOND=20, LIVE_MESSAGE_BURST=5)
    client = await Live(app).connect()
    for _ in range(30):
        await client.send(type="ping")
    replies = [await client.receive() for _ in range(30)]
    kinds = [r["type"] if r["type"] == "pong" else r["code"] for r in replies]
    assert kinds[:5] == ["pong"] * 5
    assert kinds.count("rate_limited") >= 20
    limited = next(r for r in replies if r["type"] == "error")
    assert limited["retry_after"] > 0
    assert await client.nothing(0.3)  # 0.3 s at 20/s refills the burst
    assert (await client.ping())["type"] == "pong"
    await client.close()


@scenario
async def test_many_sockets_of_random_garbage_never_take_the_worker_down(app):
    neighborhood = await db(NeighborhoodFactory)()
    rng = random.Random(SEED + 1)
    frames = bad_messages(rng, neighborhood.slug)
    clients = [await Live(app).connect() for _ in range(4)]
    for n, client in enumerate(clients):
        for _, frame in frames[n::4][:40]:
            await send_frame(client, frame)
    # Every socket answers each frame (an error, or a pong/subscribed for the valid ones).
    for n, client in enumerate(clients):
        for _ in frames[n::4][:40]:
            reply = await client.receive()
            assert reply["type"] in {"error", "pong", "subscribed", "resync", "unsubscribed"}
    for client in clients:
        while not await client.nothing(0.01):
            await client.receive()
        assert (await client.ping())["type"] == "pong"
        await client.close()
