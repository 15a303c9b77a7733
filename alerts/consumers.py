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


@dataclass
class Subscription:
    internal_topic: str
    group: str
    # Events up to this id were sent during replay; live copies of them are dropped.
    replayed_upto: int = 0


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

    async def disconnect(self, code) -> None:
        heartbeat = getattr(self, "heartbeat", None)
        if heartbeat:
            heartbeat.cancel()
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
        if bytes_data is not None:
            raise ClientError("bad_message", "Send JSON text, not binary frames.")
        if len(text_data.encode()) > app_settings.LIVE_MAX_MESSAGE_BYTES:
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
        if since is not None and (
            isinstance(since, bool) or not isinstance(since, int) or since < 0
        ):
            raise ClientError("bad_since", "“since” is the id of the last event seen, an integer.")
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
            raise ClientError(
                error.code, error.message, topic=topic if isinstance(topic, str) else None
            ) from None
        sub = Subscription(internal_topic=internal, group=live.group_name(internal))
        self.subscriptions[topic] = sub
        # Join first, then replay: live events that arrive meanwhile wait in the channel and
        # are dropped if the replay already sent them.
        await self.channel_layer.group_add(sub.group, self.channel_name)
        replayed = 0
        complete = True
        if since is not None:
            replay = await database_sync_to_async(live.events_since)(
                internal, since, staff=self.is_staff
            )
            complete = replay.complete
            for event in replay.events:
                await self.send(text_data=live._encode(event))
                sub.replayed_upto = event.pk
                replayed += 1
        reply = {"type": "subscribed", "topic": topic, "replayed": replayed}
        await self._send_json(reply)
        if not complete:
            await self._send_json(
                {
                    "type": "resync",
                    "topic": topic,
                    "message": "Some events are no longer kept; reload this topic's data.",
                }
            )

    async def _unsubscribe(self, message) -> None:
        topic = message.get("topic")
        sub = self.subscriptions.pop(topic, None) if isinstance(topic, str) else None
        if sub is None:
            raise ClientError("not_subscribed", "Not subscribed to that topic.")
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
