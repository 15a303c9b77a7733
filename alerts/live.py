"""The live layer's public face: :func:`publish` and the topic registry.

Other apps never talk to the channel layer; they call :func:`publish` (inside their transaction)
and register their topic kinds with :func:`register_topic`. An event is written to the
:class:`~alerts.models.Event` log first, and sent to subscribers only after the transaction that
caused it commits, serialised to JSON once for every socket.

Topics are ``kind:key`` (``neighborhood:old-city``, ``alert:12``, ``thread:7``,
``case:25-000123``) plus ``user``, which a client uses for its own notifications; internally a
person's topic is ``user:<id>``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connections, router, transaction
from django.utils import timezone

from .conf import app_settings
from .models import Event, EventLogMark

logger = logging.getLogger(__name__)

TOPIC_RE = re.compile(
    r"^(?P<kind>[a-z][a-z_]{0,30})(?::(?P<key>[A-Za-z0-9][A-Za-z0-9_.\-]{0,80}))?$"
)
# Channel-layer group names must be shorter than 100 characters; ``live.`` plus the topic.
MAX_TOPIC_LENGTH = 90
# Any 64-bit number will do; it names the lock that orders event ids by commit.
_EVENT_ORDER_LOCK = 0x6C697665  # "live"


class TopicError(ValueError):
    """A topic a client may not subscribe to; ``code`` is sent to the client."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


Authorizer = Callable[[Any, str], None]


@dataclass(frozen=True)
class TopicKind:
    name: str
    authorize: Authorizer
    needs_key: bool = True


_registry: dict[str, TopicKind] = {}


def register_topic(name: str, authorize: Authorizer, *, needs_key: bool = True) -> None:
    """Declare a topic kind. ``authorize(user, key)`` raises :class:`TopicError` to refuse.

    It runs in a worker thread for every subscription, so it may query the database.
    """
    _registry[name] = TopicKind(name, authorize, needs_key)


def topic_kinds() -> list[str]:
    return sorted(_registry)


def parse_topic(topic: Any) -> tuple[str, str]:
    """``"neighborhood:old-city"`` → ``("neighborhood", "old-city")``; raises :class:`TopicError`."""
    if not isinstance(topic, str):
        raise TopicError("bad_topic", "A topic is a string such as “neighborhood:old-city”.")
    if len(topic) > MAX_TOPIC_LENGTH:
        raise TopicError("bad_topic", f"A topic is at most {MAX_TOPIC_LENGTH} characters.")
    match = TOPIC_RE.match(topic)
    if not match:
        raise TopicError("bad_topic", f"“{topic[:60]}” is not a topic.")
    kind_name, key = match["kind"], match["key"]
    kind = _registry.get(kind_name)
    if kind is None:
        known = ", ".join(topic_kinds())
        raise TopicError("unknown_topic", f"Unknown topic kind “{kind_name}”; known: {known}.")
    if kind.needs_key and not key:
        raise TopicError("bad_topic", f"“{kind_name}” topics need a key, as in “{kind_name}:…”.")
    if not kind.needs_key and key:
        raise TopicError("bad_topic", f"“{kind_name}” takes no key.")
    return kind_name, key or ""


def authorize(user, topic: str) -> str:
    """Check that ``user`` may follow ``topic``; return the internal topic (``user`` → ``user:7``)."""
    kind_name, key = parse_topic(topic)
    _registry[kind_name].authorize(user, key)
    if kind_name == "user":
        return f"user:{user.pk}"
    return topic


def group_name(internal_topic: str) -> str:
    """Channel-layer group of an internal topic (only ASCII letters, digits, ``-_.`` allowed)."""
    return "live." + internal_topic.replace(":", ".")


def client_topic(internal_topic: str) -> str:
    return "user" if internal_topic.startswith("user:") else internal_topic


def user_topic(user_or_id: Any) -> str:
    pk = getattr(user_or_id, "pk", user_or_id)
    return f"user:{pk}"


def _encode(event: Event) -> str:
    return json.dumps(
        {
            "id": event.pk,
            "topic": client_topic(event.topic),
            "type": event.type,
            "data": event.data,
        },
        cls=DjangoJSONEncoder,
        separators=(",", ":"),
        ensure_ascii=False,
    )


def _lock_event_order(using: str) -> None:
    """Hold a transaction-scoped lock so that event ids are handed out in commit order.

    Without it two PostgreSQL transactions could commit ids 11 then 10, and a client that saw 11
    before reconnecting would never be sent 10. SQLite allows one writer at a time anyway.
    """
    connection = connections[using]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_EVENT_ORDER_LOCK])


def publish(topic: str, type: str, data: dict, *, audience: str = "") -> Event:
    """Log an event on ``topic`` and send it to subscribers once the transaction commits.

    ``data`` must be JSON-serialisable and already sanitised (it goes to browsers as is).
    ``audience="staff"`` limits live delivery to city staff. Returns the logged event.
    """
    return publish_many([(topic, type, data)], audience=audience)[0]


def publish_many(items: Iterable[tuple[str, str, dict]], *, audience: str = "") -> list[Event]:
    """Log several events in one insert (ids in the given order) and send them after commit."""
    using = router.db_for_write(Event)
    rows = [
        Event(topic=topic, type=type_, data=data, audience=audience) for topic, type_, data in items
    ]
    if not rows:
        return []
    with transaction.atomic(using=using):
        _lock_event_order(using)
        # Stamped under the lock, so that times follow ids and pruning by time removes a prefix.
        now = timezone.now()
        for row in rows:
            row.created_at = now
        if connections[using].features.can_return_rows_from_bulk_insert:
            Event.objects.using(using).bulk_create(rows)
        else:  # pragma: no cover - every supported backend returns ids
            for row in rows:
                row.save(using=using)
        messages = [
            (
                group_name(row.topic),
                {
                    "type": "live.event",
                    "id": row.pk,
                    "topic": client_topic(row.topic),
                    "audience": audience,
                    "text": _encode(row),
                },
            )
            for row in rows
        ]
        transaction.on_commit(lambda: _send(messages), using=using, robust=True)
    return rows


def _send(messages: list[tuple[str, dict]]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            async_to_sync(_send_all)(layer, messages)
        else:
            # Called from a thread that runs an event loop (a sync call inside async code):
            # send from a helper thread rather than block that loop's thread with a new loop.
            sender = threading.Thread(
                target=async_to_sync(_send_all), args=(layer, messages), daemon=True
            )
            sender.start()
            sender.join()
    except Exception:  # the event is logged; clients get it on resume
        logger.exception("Could not send %d live event(s) to the channel layer", len(messages))


async def _send_all(layer, messages: list[tuple[str, dict]]) -> None:
    for group, message in messages:
        await layer.group_send(group, message)


def mark_cursor(request) -> int:
    """Remember, before a view reads what it shows, where the page's socket must resume.

    Read first, so that an event committed while the page is being built is replayed to it.
    The earliest mark of a request wins; ``{% live_cursor %}`` renders it.
    """
    cursor = getattr(request, "live_cursor", None)
    if cursor is None:
        cursor = request.live_cursor = latest_event_id()
    return cursor


def latest_event_id() -> int:
    """The id of the newest event: a page renders it so its socket resumes from there."""
    return Event.objects.order_by("-id").values_list("id", flat=True).first() or 0


@dataclass
class Replay:
    """What a subscription with ``since`` is sent.

    ``events``: the topic's events after ``since`` up to ``upto``, oldest first.
    ``complete``: ``False`` when the client must reload the topic's data instead (``reason``
    says why, and ``events`` is then empty). ``upto``: the newest event id when the log was read;
    the subscriber is up to date to there, and events after it arrive live.
    """

    events: list[Event]
    complete: bool
    upto: int = 0
    reason: str = ""  # "" | "pruned" | "too_many" | "unknown_since"


def events_since(internal_topic: str, since: int, *, staff: bool = False) -> Replay:
    """Events on a topic after ``since`` within the retention window, oldest first.

    The replay is all or nothing: if events after ``since`` were pruned, or there are more than
    ``LIVE_REPLAY_LIMIT`` of them, or ``since`` is newer than any event (the log was reset), no
    event is returned and ``complete`` is ``False``.
    """
    upto = latest_event_id()
    if since > upto:
        return Replay([], False, upto, "unknown_since")
    if since < pruned_upto():
        # Events after ``since`` were deleted by pruning: they cannot be replayed.
        return Replay([], False, upto, "pruned")
    limit = app_settings.LIVE_REPLAY_LIMIT
    rows = Event.objects.filter(topic=internal_topic, id__gt=since, id__lte=upto)
    if not staff:
        rows = rows.filter(audience="")
    rows = list(rows.order_by("id")[: limit + 1])
    if len(rows) > limit:
        return Replay([], False, upto, "too_many")
    return Replay(rows, True, upto)


def prune_events(now=None) -> int:
    """Delete events older than the retention window; return how many went.

    What goes is always a prefix of the log (by id), and the newest event is always kept, so
    :func:`events_since` can tell a client that resumes from before the oldest kept event that it
    missed some.
    """
    now = now or timezone.now()
    cutoff = now - timedelta(hours=app_settings.LIVE_RETENTION_HOURS)
    newest = latest_event_id()
    last_old = (
        Event.objects.filter(created_at__lt=cutoff)
        .order_by("-id")
        .values_list("id", flat=True)
        .first()
    )
    if last_old is None:
        return 0
    cut = min(last_old, newest - 1)
    with transaction.atomic():
        deleted, _ = Event.objects.filter(id__lte=cut).delete()
        mark, _ = EventLogMark.objects.select_for_update().get_or_create(pk=1)
        if cut > mark.pruned_upto:
            mark.pruned_upto = cut
            mark.save(update_fields=["pruned_upto"])
    return deleted


def pruned_upto() -> int:
    """The highest event id pruning has deleted (0 when nothing was ever pruned)."""
    return EventLogMark.objects.filter(pk=1).values_list("pruned_upto", flat=True).first() or 0
