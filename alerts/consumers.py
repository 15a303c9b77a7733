"""The WebSocket consumer behind ``/ws/live/``; the protocol is documented in docs/live.md."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.contrib.auth.models import AnonymousUser
from django.utils import timezone

from neighborhoods.permissions import is_authenticated, is_city_staff

from . import live
from .conf import app_settings

logger = logging.getLogger(__name__)

PROTOCOL_VERSION = 1
# Event ids are PostgreSQL ``bigint`` values.
MAX_EVENT_ID = 2**63 - 1
# Close codes (4000–4999 are the application's own).
CLOSE_AUTH_TIMEOUT = 4408


@dataclass
class Subscription:
    internal_topic: str
    group: str
    # The subscriber is up to date to this event id (replayed, or logged before it subscribed);
    # live copies of events up to it are dropped, so nothing arrives twice.
    replayed_upto: int = 0


RESYNC_MESSAGES = {
    "pruned": "Some events after “since” are no longer kept; reload this topic's data.",
    "too_many": "Too many events were missed to replay; reload this topic's data.",
    "unknown_since": "“since” is newer than any event (the log was reset); reload.",
}


class ClientError(Exception):
    def __init__(self, code: str, message: str, **extra) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.extra = extra


def _user_from_token(key: str):
    from neighborhoods.services import user_for_token

    return user_for_token(key)


def _is_staff(user) -> bool:
    return is_city_staff(user)


class LiveConsumer(AsyncWebsocketConsumer):
    """One socket per browser tab: subscribe to topics, resume with ``since``, get events."""

    async def connect(self) -> None:
        self.user = self.scope.get("user") or AnonymousUser()
        self.is_staff = await database_sync_to_async(_is_staff)(self.user)
        self.subscriptions: dict[str, Subscription] = {}
        self.allowance = float(app_settings.LIVE_MESSAGE_BURST)
        self.last_check = time.monotonic()
        await self.accept()
        await self._send_json(
            {
                "type": "hello",
                "protocol": PROTOCOL_VERSION,
                "user": self.user.pk if is_authenticated(self.user) else None,
                "heartbeat": app_settings.LIVE_HEARTBEAT_SECONDS,
                "limits": {
                    "max_message_bytes": app_settings.LIVE_MAX_MESSAGE_BYTES,
                    "max_subscriptions": app_settings.LIVE_MAX_SUBSCRIPTIONS,
                    "messages_per_second": app_settings.LIVE_MESSAGES_PER_SECOND,
                },
            }
        )
        self.heartbeat = asyncio.ensure_future(self._heartbeat())
        self.auth_deadline = asyncio.get_running_loop().call_later(
            app_settings.LIVE_AUTH_TIMEOUT_SECONDS, self._check_idle
        )

    async def disconnect(self, code) -> None:
        for task in (getattr(self, "heartbeat", None), getattr(self, "auth_deadline", None)):
            if task:
                task.cancel()
        for sub in getattr(self, "subscriptions", {}).values():
            await self.channel_layer.group_discard(sub.group, self.channel_name)

    async def dispatch(self, message) -> None:
        # Broadcasts do not touch the database: skip Channels' per-message connection cleanup,
        # which costs a thread hop per socket (measured to double fan-out time).
        if message.get("type") == "live.event":
            await self.live_event(message)
            return
        await super().dispatch(message)

    # Client messages ---------------------------------------------------------------------

    async def receive(self, text_data=None, bytes_data=None) -> None:
        try:
            await self._handle(text_data, bytes_data)
        except ClientError as error:
            await self._error(error.code, error.message, **error.extra)
        except Exception:  # never let one message kill the socket or the worker
            logger.exception("Live message failed")
            await self._error("internal", "Something went wrong handling that message.")

    async def _handle(self, text_data, bytes_data) -> None:
        self._throttle()
        if text_data is None:
            raise ClientError("bad_message", "Send JSON text, not binary frames.")
        if len(text_data.encode("utf-8", "surrogatepass")) > app_settings.LIVE_MAX_MESSAGE_BYTES:
            raise ClientError(
                "too_large",
                f"Messages may be at most {app_settings.LIVE_MAX_MESSAGE_BYTES} bytes.",
            )
        try:
            message = json.loads(text_data)
        except (ValueError, RecursionError):
            raise ClientError("bad_json", "That is not valid JSON.") from None
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            raise ClientError("bad_message", "A message is a JSON object with a “type”.")
        kind = message["type"]
        handler = {
            "subscribe": self._subscribe,
            "unsubscribe": self._unsubscribe,
            "auth": self._auth,
            "ping": self._ping,
        }.get(kind)
        if handler is None:
            raise ClientError(
                "unknown_type",
                "Unknown message type; use subscribe, unsubscribe, auth or ping.",
            )
        await handler(message)

    def _throttle(self) -> None:
        rate = app_settings.LIVE_MESSAGES_PER_SECOND
        burst = app_settings.LIVE_MESSAGE_BURST
        now = time.monotonic()
        self.allowance = min(burst, self.allowance + (now - self.last_check) * rate)
        self.last_check = now
        if self.allowance < 1:
            wait = round((1 - self.allowance) / rate, 2)
            raise ClientError(
                "rate_limited",
                f"Too many messages; at most {rate} per second.",
                retry_after=wait,
            )
        self.allowance -= 1

    async def _ping(self, message) -> None:
        await self._send_json({"type": "pong", "time": timezone.now().isoformat()})

    async def _auth(self, message) -> None:
        token = message.get("token")
        if not isinstance(token, str) or not token or len(token) > 200:
            raise ClientError("bad_token", "“token” must be an API token string.")
        user = await database_sync_to_async(_user_from_token)(token)
        if user is None:
            raise ClientError("auth_failed", "Invalid or revoked token.")
        if is_authenticated(self.user) and self.user.pk != user.pk:
            raise ClientError("auth_failed", "This socket is already signed in as someone else.")
        self.user = user
        self.is_staff = await database_sync_to_async(_is_staff)(user)
        await self._send_json({"type": "auth.ok", "user": user.pk})

    async def _subscribe(self, message) -> None:
        topic = message.get("topic")
        since = message.get("since")
        if not isinstance(topic, str):
            raise ClientError("bad_topic", "“topic” is a string such as “neighborhood:old-city”.")
        if since is not None and (
            isinstance(since, bool) or not isinstance(since, int) or not 0 <= since <= MAX_EVENT_ID
        ):
            raise ClientError(
                "bad_since",
                "“since” is the id of the last event seen: a whole number from 0.",
                topic=topic,
            )
        if topic in self.subscriptions:
            raise ClientError("already_subscribed", "Already subscribed.", topic=topic)
        if len(self.subscriptions) >= app_settings.LIVE_MAX_SUBSCRIPTIONS:
            raise ClientError(
                "too_many_subscriptions",
                f"At most {app_settings.LIVE_MAX_SUBSCRIPTIONS} subscriptions per connection.",
                topic=topic if isinstance(topic, str) else None,
            )
        try:
            internal = await database_sync_to_async(live.authorize)(self.user, topic)
        except live.TopicError as error:
            raise ClientError(error.code, error.message, topic=topic) from None
        sub = Subscription(internal_topic=internal, group=live.group_name(internal))
        self.subscriptions[topic] = sub
        try:
            # Join first, then read the log: live events that arrive meanwhile wait in the
            # channel (messages are handled one at a time) and are dropped if already sent.
            await self.channel_layer.group_add(sub.group, self.channel_name)
            if since is None:
                replay = live.Replay([], True, await database_sync_to_async(live.latest_event_id)())
            else:
                replay = await database_sync_to_async(live.events_since)(
                    internal, since, staff=self.is_staff
                )
        except BaseException:
            self.subscriptions.pop(topic, None)
            await self.channel_layer.group_discard(sub.group, self.channel_name)
            raise
        for event in replay.events:
            await self.send(text_data=live._encode(event))
        sub.replayed_upto = replay.upto
        await self._send_json(
            {
                "type": "subscribed",
                "topic": topic,
                "replayed": len(replay.events),
                "last_id": replay.upto,
            }
        )
        if not replay.complete:
            await self._send_json(
                {
                    "type": "resync",
                    "topic": topic,
                    "reason": replay.reason,
                    "last_id": replay.upto,
                    "message": RESYNC_MESSAGES.get(replay.reason, "Reload this topic's data."),
                }
            )

    async def _unsubscribe(self, message) -> None:
        topic = message.get("topic")
        if not isinstance(topic, str):
            raise ClientError("bad_topic", "“topic” is a string such as “neighborhood:old-city”.")
        sub = self.subscriptions.pop(topic, None)
        if sub is None:
            raise ClientError("not_subscribed", "Not subscribed to that topic.", topic=topic)
        await self.channel_layer.group_discard(sub.group, self.channel_name)
        await self._send_json({"type": "unsubscribed", "topic": topic})

    # Server side ------------------------------------------------------------------------

    async def live_event(self, message) -> None:
        sub = self.subscriptions.get(message["topic"])
        if sub is None or message["id"] <= sub.replayed_upto:
            return
        if message.get("audience") == "staff" and not self.is_staff:
            return
        await self.send(text_data=message["text"])

    def _check_idle(self) -> None:
        """Close a socket that neither signed in nor subscribed within the allowed time."""
        if is_authenticated(self.user) or self.subscriptions:
            return
        asyncio.ensure_future(self._close_idle())

    async def _close_idle(self) -> None:
        try:
            await self._error(
                "auth_timeout",
                "Sign in or subscribe within "
                f"{app_settings.LIVE_AUTH_TIMEOUT_SECONDS} seconds of connecting.",
            )
            await self.close(code=CLOSE_AUTH_TIMEOUT)
        except Exception:  # the socket went away meanwhile
            logger.debug("Idle socket already closed", exc_info=True)

    async def _heartbeat(self) -> None:
        interval = app_settings.LIVE_HEARTBEAT_SECONDS
        try:
            while True:
                await asyncio.sleep(interval)
                await self._send_json({"type": "heartbeat", "time": timezone.now().isoformat()})
        except asyncio.CancelledError:
            pass
        except Exception:  # the socket went away
            logger.debug("Heartbeat stopped", exc_info=True)

    async def _error(self, code: str, message: str, **extra) -> None:
        payload = {"type": "error", "code": code, "message": message}
        payload.update({k: v for k, v in extra.items() if v is not None})
        await self._send_json(payload)

    async def _send_json(self, payload: dict) -> None:
        await self.send(text_data=json.dumps(payload, separators=(",", ":")))
