"""The live layer end to end: ``/ws/live/`` through the real ASGI application.

Sockets go through the origin check, the session middleware and the consumer exactly as daphne
would run them; the channel layer is the in-memory one and the database is real (transactional
tests, because the consumer reads what other threads committed). Every event is published by the
real services, or by :func:`alerts.live.publish` where a test needs events of its own.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings
from django.core.asgi import get_asgi_application
from django.db import connection, transaction
from django.test import Client, TestCase
from django.utils import timezone

from alerts import live
from alerts.models import Alert, Event
from engagement.asgi import build_application
from tests.factories import (
    CityStaffFactory,
    MembershipFactory,
    NeighborhoodFactory,
    VerifiedUserFactory,
    official_notice,
    resident_report,
)

# Each test body runs on an event loop in a helper thread while the test's own thread serves the
# consumer's database calls (asgiref's thread-sensitive mode), so sockets see the test's data
# without commits and every test rolls back. Tests about commits use real transactions.
pytestmark = pytest.mark.django_db
db = database_sync_to_async
TIMEOUT = 3


def scenario(test):
    """Run an ``async def`` test body through ``async_to_sync`` (see the module comment)."""

    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> None:
        async_to_sync(test)(*args, **kwargs)

    return run


def committed(fn):
    """``fn`` as an async call whose ``on_commit`` callbacks run when it returns, as at commit.

    (In a transactional test the callbacks run at the real commit and nothing is left to run.)
    """

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any):
        with TestCase.captureOnCommitCallbacks(execute=True):
            return fn(*args, **kwargs)

    return db(run)


# Helpers (the fuzz tests use them too) ---------------------------------------------------------


def ensure_categories() -> None:
    """The alert categories the migrations install (a transactional test's flush removes them)."""
    migration = importlib.import_module("alerts.migrations.0002_default_categories")
    from django.apps import apps

    migration.add_categories(apps, None)


def make_application(**kwargs: Any):
    """The host's ASGI application as ``engagement.asgi`` builds it (origins read from settings)."""
    return build_application(get_asgi_application(), tune_gc=False, **kwargs)


def session_cookie(user) -> bytes:
    """A ``Cookie`` header value that signs ``user`` in, made by logging in a test client."""
    client = Client()
    client.force_login(user)
    name = django_settings.SESSION_COOKIE_NAME
    return f"{name}={client.cookies[name].value}".encode()


class Live:
    """A WebSocket client of ``/ws/live/`` speaking the JSON protocol."""

    def __init__(self, application, *, cookie: bytes | None = None, origin: str | None = None):
        headers = []
        if cookie:
            headers.append((b"cookie", cookie))
        if origin:
            headers.append((b"origin", origin.encode()))
        self.communicator = WebsocketCommunicator(application, "/ws/live/", headers=headers)
        self.hello: dict = {}

    async def connect(self) -> Live:
        connected, code = await self.communicator.connect(timeout=TIMEOUT)
        assert connected, f"refused with close code {code}"
        self.hello = await self.receive()
        assert self.hello["type"] == "hello"
        return self

    async def close(self) -> None:
        await self.communicator.disconnect()

    async def send(self, **message: Any) -> None:
        await self.communicator.send_json_to(message)

    async def send_text(self, text: str) -> None:
        await self.communicator.send_to(text_data=text)

    async def receive(self, timeout: float = TIMEOUT) -> dict:
        return await self.communicator.receive_json_from(timeout=timeout)

    async def nothing(self, timeout: float = 0.2) -> bool:
        return await self.communicator.receive_nothing(timeout=timeout)

    async def until(self, kind: str, timeout: float = TIMEOUT) -> list[dict]:
        """Messages up to and including the first of type ``kind`` (or an error)."""
        messages = []
        while True:
            message = await self.receive(timeout)
            messages.append(message)
            if message["type"] in (kind, "error"):
                return messages

    async def subscribe(self, topic: str, since: int | None = None) -> tuple[list[dict], dict]:
        """Subscribe; return the replayed events and the ``subscribed`` (or error) reply."""
        message: dict[str, Any] = {"type": "subscribe", "topic": topic}
        if since is not None:
            message["since"] = since
        await self.send(**message)
        *events, reply = await self.until("subscribed")
        return events, reply

    async def ping(self) -> dict:
        await self.send(type="ping")
        return await self.receive()

    async def events(self, count: int, timeout: float = TIMEOUT) -> list[dict]:
        return [await self.receive(timeout) for _ in range(count)]


def event_ids(messages: list[dict]) -> list[int]:
    return [m["id"] for m in messages if "id" in m and m["type"] not in ("hello",)]


# Fixtures --------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def live_settings(settings, monkeypatch):
    """The in-memory layer (also where CI sets ``REDIS_URL``) and quiet, generous defaults."""
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    settings.ENGAGEMENT = {
        **getattr(settings, "ENGAGEMENT", {}),
        "LIVE_HEARTBEAT_SECONDS": 60,
        "LIVE_AUTH_TIMEOUT_SECONDS": 60,
    }
    # The consumer's calls close "obsolete" connections; the test's is in a transaction on purpose.
    monkeypatch.setattr(connection, "close_if_unusable_or_obsolete", lambda: None)
    ensure_categories()
    # A flushed log still has its id sequence; an event keeps "the newest id" meaningful.
    with TestCase.captureOnCommitCallbacks(execute=True):
        live.publish("neighborhood:seed", "test.seed", {})
    return settings


@pytest.fixture
def live_config(live_settings):
    """``live_config(NAME=value, ...)`` overrides the live layer's ``ENGAGEMENT`` settings."""

    def override(**values: Any) -> None:
        live_settings.ENGAGEMENT = {**live_settings.ENGAGEMENT, **values}

    return override


@pytest.fixture
def app():
    return make_application()


@pytest.fixture
def neighborhood():
    return NeighborhoodFactory()


# Connecting ------------------------------------------------------------------------------------


@scenario
async def test_hello_describes_the_protocol_and_its_limits(app, live_config):
    live_config(LIVE_MAX_SUBSCRIPTIONS=7, LIVE_HEARTBEAT_SECONDS=30)
    client = await Live(app).connect()
    assert client.hello == {
        "type": "hello",
        "protocol": 1,
        "user": None,
        "heartbeat": 30,
        "limits": {
            "max_message_bytes": 4096,
            "max_subscriptions": 7,
            "messages_per_second": 10,
        },
    }
    pong = await client.ping()
    assert pong["type"] == "pong" and pong["time"]
    await client.close()


@scenario
async def test_session_cookie_signs_the_socket_in(app):
    user = await db(VerifiedUserFactory)()
    cookie = await db(session_cookie)(user)
    client = await Live(app, cookie=cookie).connect()
    assert client.hello["user"] == user.pk
    events, reply = await client.subscribe("user")
    assert reply["type"] == "subscribed" and events == []
    await client.close()


@scenario
async def test_a_forged_session_cookie_is_anonymous(app):
    client = await Live(app, cookie=b"sessionid=not-a-session").connect()
    assert client.hello["user"] is None
    _, reply = await client.subscribe("user")
    assert reply["code"] == "auth_required"
    await client.close()


@scenario
async def test_token_auth_message(app):
    from neighborhoods.services import issue_api_token

    user = await db(VerifiedUserFactory)()
    _, key = await db(issue_api_token)(user=user)
    client = await Live(app).connect()
    _, reply = await client.subscribe("user")
    assert reply == {
        "type": "error",
        "code": "auth_required",
        "message": reply["message"],
        "topic": "user",
    }
    await client.send(type="auth", token=key)
    assert await client.receive() == {"type": "auth.ok", "user": user.pk}
    _, reply = await client.subscribe("user")
    assert reply["type"] == "subscribed"
    await client.close()


@scenario
async def test_bad_tokens_are_refused_and_the_socket_stays_open(app):
    from neighborhoods.services import issue_api_token

    me, other = await db(VerifiedUserFactory)(), await db(VerifiedUserFactory)()
    _, other_key = await db(issue_api_token)(user=other)
    client = await Live(app, cookie=await db(session_cookie)(me)).connect()
    for message in ({"token": "wrong"}, {"token": 12}, {"token": ""}, {}):
        await client.send(type="auth", **message)
        reply = await client.receive()
        assert reply["type"] == "error"
        assert reply["code"] in {"auth_failed", "bad_token"}
    # A socket signed in as one person cannot become another.
    await client.send(type="auth", token=other_key)
    assert (await client.receive())["code"] == "auth_failed"
    assert (await client.ping())["type"] == "pong"
    await client.close()


@scenario
async def test_an_idle_anonymous_socket_is_closed(app, live_config):
    live_config(LIVE_AUTH_TIMEOUT_SECONDS=0.1)
    idle = await Live(app).connect()
    busy = await Live(app).connect()
    neighborhood = await db(NeighborhoodFactory)()
    await busy.subscribe(f"neighborhood:{neighborhood.slug}")
    error = await idle.receive()
    assert error["type"] == "error" and error["code"] == "auth_timeout"
    closed = await idle.communicator.receive_output(TIMEOUT)
    assert closed == {"type": "websocket.close", "code": 4408}
    await asyncio.sleep(0.15)
    assert await busy.nothing(0.05)
    assert (await busy.ping())["type"] == "pong"
    await busy.close()


@scenario
async def test_heartbeat(app, live_config):
    live_config(LIVE_HEARTBEAT_SECONDS=0.05)
    client = await Live(app).connect()
    assert client.hello["heartbeat"] == 0.05
    first, second = await client.receive(1), await client.receive(1)
    assert first["type"] == second["type"] == "heartbeat"
    await client.close()


# Origins ---------------------------------------------------------------------------------------


@pytest.fixture
def strict_hosts(settings):
    settings.ALLOWED_HOSTS = ["city.example.org", ".neighbors.example"]
    settings.CSRF_TRUSTED_ORIGINS = ["https://partner.example.com"]
    return make_application()


@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example",
        "https://city.example.org.evil.example",
        "null",
        "file://",
        "http://partner.example.com",  # trusted for https only
    ],
)
@scenario
async def test_a_foreign_origin_is_refused(strict_hosts, origin):
    communicator = WebsocketCommunicator(
        strict_hosts, "/ws/live/", headers=[(b"origin", origin.encode())]
    )
    connected, code = await communicator.connect(timeout=TIMEOUT)
    # Closed before the handshake is accepted: daphne answers the upgrade with HTTP 403.
    assert (connected, code) == (False, 1000)
    await communicator.disconnect()


@pytest.mark.parametrize(
    "origin",
    [
        None,  # programs send no Origin
        "https://city.example.org",
        "http://city.example.org:8000",
        "https://www.neighbors.example",
        "https://partner.example.com",
    ],
)
@scenario
async def test_allowed_and_missing_origins_connect(strict_hosts, origin):
    client = await Live(strict_hosts, origin=origin).connect()
    assert (await client.ping())["type"] == "pong"
    await client.close()


# Subscribing -----------------------------------------------------------------------------------


@scenario
async def test_subscribe_and_unsubscribe(app, neighborhood):
    client = await Live(app).connect()
    topic = f"neighborhood:{neighborhood.slug}"
    events, reply = await client.subscribe(topic)
    assert events == []
    assert reply == {
        "type": "subscribed",
        "topic": topic,
        "replayed": 0,
        "last_id": await db(live.latest_event_id)(),
    }
    _, again = await client.subscribe(topic)
    assert again["code"] == "already_subscribed"

    alert = await committed(official_notice)(neighborhood)
    created = await client.receive()
    assert created["type"] == "alert.created"
    assert created["topic"] == topic
    assert created["data"]["id"] == alert.pk
    assert created["data"]["neighborhoods"] == [neighborhood.slug]
    assert created["data"]["title"] == "Water main break"

    await client.send(type="unsubscribe", topic=topic)
    assert await client.receive() == {"type": "unsubscribed", "topic": topic}
    await committed(official_notice)(neighborhood)
    assert await client.nothing()
    await client.send(type="unsubscribe", topic=topic)
    assert (await client.receive())["code"] == "not_subscribed"
    await client.close()


@scenario
async def test_every_subscriber_gets_the_event_once_and_others_none(app):
    here, there = await db(NeighborhoodFactory)(), await db(NeighborhoodFactory)()
    clients = [await Live(app).connect() for _ in range(3)]
    for client in clients[:2]:
        await client.subscribe(f"neighborhood:{here.slug}")
    await clients[2].subscribe(f"neighborhood:{there.slug}")
    alert = await committed(official_notice)(here)
    for client in clients[:2]:
        event = await client.receive()
        assert (event["type"], event["data"]["id"]) == ("alert.created", alert.pk)
        assert await client.nothing(0.05)
    assert await clients[2].nothing()
    for client in clients:
        await client.close()


@scenario
async def test_alert_topic_follows_one_alert(app, neighborhood):
    alert = await committed(official_notice)(neighborhood)
    client = await Live(app).connect()
    _, reply = await client.subscribe(f"alert:{alert.pk}")
    assert reply["type"] == "subscribed"

    def edit():
        from alerts.services import retract_alert

        staff = CityStaffFactory(is_supervisor=True).user
        retract_alert(Alert.objects.get(pk=alert.pk), user=staff, reason="Fixed early")

    await committed(edit)()
    event = await client.receive()
    assert event["topic"] == f"alert:{alert.pk}"
    assert event["type"] == "alert.retracted"
    assert event["data"]["status"] == "retracted"
    await client.close()


@scenario
async def test_who_may_follow_which_topic(app, neighborhood):
    user = await db(VerifiedUserFactory)()
    anonymous = await Live(app).connect()
    signed_in = await Live(app, cookie=await db(session_cookie)(user)).connect()
    alert = await committed(official_notice)(neighborhood)
    cases = [
        # topic, anonymous, signed in
        (f"neighborhood:{neighborhood.slug}", "subscribed", "subscribed"),
        (f"alert:{alert.pk}", "subscribed", "subscribed"),
        ("user", "auth_required", "subscribed"),
        (f"user:{user.pk}", "bad_topic", "bad_topic"),
        ("neighborhood:no-such-place", "not_found", "not_found"),
        ("neighborhood", "bad_topic", "bad_topic"),
        ("alert:999999999", "not_found", "not_found"),
        ("alert:abc", "not_found", "not_found"),
        ("alert:" + "9" * 40, "not_found", "not_found"),
        ("weather:today", "unknown_topic", "unknown_topic"),
        ("cases", "subscribed", "subscribed"),  # every 311 request, public data only
        ("cases:all", "bad_topic", "bad_topic"),
        ("Neighborhood:x", "bad_topic", "bad_topic"),
        ("neighborhood:" + "a" * 100, "bad_topic", "bad_topic"),
        ("", "bad_topic", "bad_topic"),
    ]
    for topic, for_anonymous, for_user in cases:
        for client, expected in ((anonymous, for_anonymous), (signed_in, for_user)):
            _, reply = await client.subscribe(topic)
            got = reply["type"] if reply["type"] == "subscribed" else reply["code"]
            assert got == expected, (topic, client.hello["user"], reply)
            if reply["type"] == "error":
                assert reply["topic"] == topic
    await anonymous.close()
    await signed_in.close()


@scenario
async def test_notifications_reach_only_their_person(app):
    me, other = await db(VerifiedUserFactory)(), await db(VerifiedUserFactory)()
    mine = await Live(app, cookie=await db(session_cookie)(me)).connect()
    theirs = await Live(app, cookie=await db(session_cookie)(other)).connect()
    await mine.subscribe("user")
    await theirs.subscribe("user")
    await committed(live.publish)(live.user_topic(me), "notification", {"title": "Hi", "unread": 1})
    event = await mine.receive()
    assert event["topic"] == "user"
    assert (event["type"], event["data"]) == ("notification", {"title": "Hi", "unread": 1})
    assert await theirs.nothing()
    await mine.close()
    await theirs.close()


@scenario
async def test_staff_only_events_reach_only_staff(app, neighborhood):
    staff = (await db(CityStaffFactory)()).user
    resident = (await db(MembershipFactory)(neighborhood=neighborhood)).user
    topic = f"neighborhood:{neighborhood.slug}"
    staff_client = await Live(app, cookie=await db(session_cookie)(staff)).connect()
    resident_client = await Live(app, cookie=await db(session_cookie)(resident)).connect()
    _, staff_reply = await staff_client.subscribe(topic)
    _, resident_reply = await resident_client.subscribe(topic)
    since = staff_reply["last_id"]

    await committed(live.publish)(topic, "moderation.flagged", {"n": 1}, audience="staff")
    await committed(live.publish)(topic, "public.note", {"n": 2})
    assert [m["type"] for m in await staff_client.events(2)] == [
        "moderation.flagged",
        "public.note",
    ]
    assert [m["type"] for m in await resident_client.events(1)] == ["public.note"]
    assert await resident_client.nothing()

    # Nor are they replayed to residents.
    await staff_client.close()
    await resident_client.close()
    staff_client = await Live(app, cookie=await db(session_cookie)(staff)).connect()
    resident_client = await Live(app, cookie=await db(session_cookie)(resident)).connect()
    staff_events, _ = await staff_client.subscribe(topic, since=since)
    resident_events, _ = await resident_client.subscribe(topic, since=since)
    assert [m["type"] for m in staff_events] == ["moderation.flagged", "public.note"]
    assert [m["type"] for m in resident_events] == ["public.note"]
    await staff_client.close()
    await resident_client.close()


@scenario
async def test_a_dismissed_report_is_not_found_for_residents(app, neighborhood):
    def dismissed():
        from alerts.services import dismiss_alert

        report = resident_report(neighborhood)
        staff = CityStaffFactory().user
        dismiss_alert(report, user=staff, note="Spam")
        resident = MembershipFactory(neighborhood=neighborhood).user
        return report, report.author, resident, staff

    report, author, resident, staff = await committed(dismissed)()
    topic = f"alert:{report.pk}"
    for user, expected in (
        (None, "not_found"),
        (resident, "not_found"),
        (author, "subscribed"),
        (staff, "subscribed"),
    ):
        cookie = await db(session_cookie)(user) if user else None
        client = await Live(app, cookie=cookie).connect()
        _, reply = await client.subscribe(topic)
        assert (reply["type"] if reply["type"] == "subscribed" else reply["code"]) == expected
        await client.close()


@scenario
async def test_too_many_subscriptions(app, live_config):
    live_config(LIVE_MAX_SUBSCRIPTIONS=3)
    places = [await db(NeighborhoodFactory)() for _ in range(4)]
    client = await Live(app).connect()
    for place in places[:3]:
        _, reply = await client.subscribe(f"neighborhood:{place.slug}")
        assert reply["type"] == "subscribed"
    _, reply = await client.subscribe(f"neighborhood:{places[3].slug}")
    assert reply["code"] == "too_many_subscriptions"
    await client.send(type="unsubscribe", topic=f"neighborhood:{places[0].slug}")
    await client.receive()
    _, reply = await client.subscribe(f"neighborhood:{places[3].slug}")
    assert reply["type"] == "subscribed"
    await client.close()


# After commit only -----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@scenario
async def test_events_are_sent_only_after_commit(app, neighborhood):
    client = await Live(app).connect()
    await client.subscribe(f"neighborhood:{neighborhood.slug}")
    before = await db(Event.objects.count)()

    def rolled_back():
        with transaction.atomic():
            official_notice(neighborhood, title="Never happened")
            transaction.set_rollback(True)

    await db(rolled_back)()
    assert await client.nothing(0.3)
    assert await db(Event.objects.count)() == before
    assert not await db(Alert.objects.filter(title="Never happened").exists)()

    release = asyncio.Event()

    def committed_late():
        with transaction.atomic():
            official_notice(neighborhood, title="Happened")
            # Logged, but not sent while the transaction is open.
            assert Event.objects.filter(data__title="Happened").exists()
            asyncio.run_coroutine_threadsafe(release.wait(), loop).result(TIMEOUT)

    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(db(committed_late)())
    assert await client.nothing(0.3)
    release.set()
    await task
    event = await client.receive()
    assert event["data"]["title"] == "Happened"
    await client.close()


# Resuming --------------------------------------------------------------------------------------


@scenario
async def test_resume_replays_missed_events_in_order_then_live_ones(app, neighborhood):
    topic = f"neighborhood:{neighborhood.slug}"
    client = await Live(app).connect()
    _, reply = await client.subscribe(topic)
    start = reply["last_id"]
    first = await committed(official_notice)(neighborhood, title="First")
    seen = (await client.receive())["id"]
    await client.close()

    missed = [await committed(official_notice)(neighborhood, title=f"Missed {n}") for n in range(3)]
    await committed(official_notice)(await db(NeighborhoodFactory)(), title="Elsewhere")

    client = await Live(app).connect()
    replayed, reply = await client.subscribe(topic, since=seen)
    assert [e["data"]["title"] for e in replayed] == ["Missed 0", "Missed 1", "Missed 2"]
    assert [e["data"]["id"] for e in replayed] == [a.pk for a in missed]
    ids = event_ids(replayed)
    assert ids == sorted(ids) and ids[0] > seen
    assert reply["replayed"] == 3 and reply["last_id"] >= ids[-1]

    live_alert = await committed(official_notice)(neighborhood, title="Live")
    event = await client.receive()
    assert event["data"]["id"] == live_alert.pk and event["id"] > ids[-1]
    assert await client.nothing()

    # Resuming from before the first one replays everything on the topic, once each.
    again = await Live(app).connect()
    replayed, _ = await again.subscribe(topic, since=start)
    expected = [first.pk, *[a.pk for a in missed], live_alert.pk]
    assert [e["data"]["id"] for e in replayed] == expected
    await again.close()
    await client.close()


@pytest.mark.parametrize("when", ["before the log is read", "after the log is read"])
@scenario
async def test_an_event_published_while_the_replay_runs_arrives_once(
    app, neighborhood, monkeypatch, when
):
    topic = f"neighborhood:{neighborhood.slug}"

    def publish(*args: Any) -> None:
        with TestCase.captureOnCommitCallbacks(execute=True):
            live.publish(*args)

    since = await db(live.latest_event_id)()
    for n in range(3):
        await db(publish)(topic, "test.event", {"n": n})
    original = live.events_since

    def racing(internal_topic: str, since: int, *, staff: bool = False):
        # Runs while the consumer waits for the log: the live copy of this event is
        # queued for the socket before (or after) the replay reads the log.
        if when == "before the log is read":
            publish(topic, "test.event", {"n": 3})
            return original(internal_topic, since, staff=staff)
        replay = original(internal_topic, since, staff=staff)
        publish(topic, "test.event", {"n": 3})
        return replay

    monkeypatch.setattr(live, "events_since", racing)
    client = await Live(app).connect()
    replayed, reply = await client.subscribe(topic, since=since)
    monkeypatch.setattr(live, "events_since", original)
    await db(publish)(topic, "test.event", {"n": 4})
    received = [*replayed]
    while not await client.nothing(0.2):
        received.append(await client.receive())
    numbers = [m["data"]["n"] for m in received]
    assert numbers == [0, 1, 2, 3, 4]
    ids = event_ids(received)
    assert ids == sorted(set(ids))
    if when == "before the log is read":
        assert reply["replayed"] == 4
    else:
        assert reply["replayed"] == 3
    await client.close()


@scenario
async def test_resume_after_pruning_asks_for_a_resync(app, neighborhood):
    topic = f"neighborhood:{neighborhood.slug}"
    since = await db(live.latest_event_id)()
    for n in range(3):
        await committed(live.publish)(topic, "test.event", {"n": n})

    def age_and_prune() -> list[int]:
        ids = list(Event.objects.filter(id__gt=since).order_by("id").values_list("id", flat=True))
        Event.objects.filter(id__lte=ids[1]).update(created_at=timezone.now() - timedelta(days=2))
        live.prune_events()
        return ids

    ids = await db(age_and_prune)()
    client = await Live(app).connect()
    replayed, reply = await client.subscribe(topic, since=since)
    assert replayed == [] and reply["replayed"] == 0
    resync = await client.receive()
    assert resync["type"] == "resync"
    assert resync["topic"] == topic
    assert resync["reason"] == "pruned"
    assert resync["last_id"] == ids[-1]
    # A client that had seen the pruned events resumes normally.
    other = await Live(app).connect()
    replayed, _ = await other.subscribe(topic, since=ids[1])
    assert [e["data"]["n"] for e in replayed] == [2]
    assert await other.nothing(0.05)
    await other.close()
    await client.close()


@scenario
async def test_pruning_keeps_the_newest_event(neighborhood):
    def run() -> None:
        event = live.publish(f"neighborhood:{neighborhood.slug}", "test.event", {})
        Event.objects.update(created_at=timezone.now() - timedelta(days=3))
        live.prune_events()
        assert list(Event.objects.values_list("id", flat=True)) == [event.pk]
        assert live.events_since(event.topic, 0).reason in ("", "pruned")
        assert live.events_since(event.topic, event.pk - 1).events == [event]

    await db(run)()


@scenario
async def test_resume_beyond_the_replay_limit_asks_for_a_resync(app, neighborhood, live_config):
    live_config(LIVE_REPLAY_LIMIT=3)
    topic = f"neighborhood:{neighborhood.slug}"
    since = await db(live.latest_event_id)()
    for n in range(3):
        await committed(live.publish)(topic, "test.event", {"n": n})
    client = await Live(app).connect()
    replayed, reply = await client.subscribe(topic, since=since)
    assert [e["data"]["n"] for e in replayed] == [0, 1, 2]
    assert await client.nothing(0.05)
    await client.close()

    await committed(live.publish)(topic, "test.event", {"n": 3})
    client = await Live(app).connect()
    replayed, reply = await client.subscribe(topic, since=since)
    assert replayed == []
    resync = await client.receive()
    assert (resync["type"], resync["reason"]) == ("resync", "too_many")
    # Live events after the resync point still arrive.
    await committed(live.publish)(topic, "test.event", {"n": 4})
    event = await client.receive()
    assert event["data"] == {"n": 4} and event["id"] > resync["last_id"]
    await client.close()


@scenario
async def test_resume_from_an_unknown_future_id_asks_for_a_resync(app, neighborhood):
    client = await Live(app).connect()
    topic = f"neighborhood:{neighborhood.slug}"
    latest = await db(live.latest_event_id)()
    replayed, reply = await client.subscribe(topic, since=latest + 1_000)
    assert replayed == [] and reply["type"] == "subscribed"
    resync = await client.receive()
    assert (resync["reason"], resync["last_id"]) == ("unknown_since", latest)
    await committed(live.publish)(topic, "test.event", {"n": 1})
    assert (await client.receive())["data"] == {"n": 1}
    await client.close()


@pytest.mark.django_db
def test_gaps_in_ids_are_not_mistaken_for_pruning():
    from datetime import timedelta

    from django.utils import timezone

    from alerts.models import Event

    # Ids jump (rolled-back transactions, a flushed log whose counter kept going).
    Event.objects.create(id=500, topic="neighborhood:gap", type="alert.created", data={})
    Event.objects.create(id=900, topic="neighborhood:gap", type="alert.updated", data={})
    replay = live.events_since("neighborhood:gap", 0)
    assert replay.complete and [e.pk for e in replay.events] == [500, 900]
    # Once pruning really deleted events after a position, resuming from it is incomplete.
    Event.objects.filter(pk=500).update(created_at=timezone.now() - timedelta(days=30))
    live.prune_events()
    assert live.events_since("neighborhood:gap", 0).reason == "pruned"
    assert live.events_since("neighborhood:gap", 500).complete
