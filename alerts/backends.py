"""Notification channel backends: how a message leaves the platform.

Each channel (``email``, ``sms``, ``push``) is sent by the backend named in the
``NOTIFICATION_BACKENDS`` setting (``{channel: dotted path}``, inside ``ENGAGEMENT``). A backend
subclasses :class:`NotificationBackend` and implements two methods:

``recipient_for(user) -> str | None``
    The address to send to (an e-mail address, a phone number in E.164, a push subscription
    endpoint), or ``None`` when the person has none: the delivery is then *skipped* with a
    reason, never retried.

``send(message: DeliveryMessage) -> None``
    Send one message. Return normally once the message is accepted. Raise
    :class:`TemporaryDeliveryError` for failures worth retrying (timeouts, rate limits, a
    provider's 5xx): the delivery is retried with exponential backoff up to
    ``NOTIFICATION_MAX_ATTEMPTS`` times. Raise :class:`PermanentDeliveryError` when retrying cannot
    help (an address the provider refuses): the delivery fails at once. Any other exception is
    treated as temporary. ``send`` must not touch the :class:`~alerts.models.Delivery` row;
    the task that calls it records the outcome.

The platform ships :class:`EmailBackend` (Django's mail framework), :class:`ConsoleBackend`
(prints, for development) and :class:`RecordingBackend` (stores a
:class:`~alerts.models.RecordedMessage` row: what an SMS gateway or a web push service would have
been sent). A city wires a real SMS or push provider by subclassing :class:`NotificationBackend`.

Phone numbers and push subscriptions are not stored by the platform. A backend finds them with
:meth:`NotificationBackend.recipient_for`; the default looks for a ``phone_number`` (SMS) or
``push_subscription`` (push) attribute on the user and then on its profile, so a site that
adds such a field (or overrides ``recipient_for``) gets deliveries, and everyone else's SMS and
push deliveries are skipped with "no phone number" / "no push subscription".
"""

from __future__ import annotations

import smtplib
import sys
from dataclasses import dataclass, field
from typing import Any, TextIO

from django.core.exceptions import ImproperlyConfigured
from django.core.mail import EmailMultiAlternatives
from django.utils.module_loading import import_string

from .conf import app_settings
from .models import RecordedMessage


class DeliveryError(Exception):
    """Base class of the errors a backend raises."""


class TemporaryDeliveryError(DeliveryError):
    """The message could not be sent now; try again later."""


class PermanentDeliveryError(DeliveryError):
    """The message can never be sent as it is; do not retry."""


@dataclass
class DeliveryMessage:
    """One message to one person on one channel, fully rendered."""

    channel: str
    recipient: str
    subject: str
    text: str
    html: str = ""
    url: str = ""
    severity: str = "info"
    user_id: int | None = None
    # Extra mail headers (List-Unsubscribe, ...); ignored by non-mail channels.
    headers: dict[str, str] = field(default_factory=dict)
    # Anything else a channel may use: notification ids, the kind, a push payload.
    data: dict[str, Any] = field(default_factory=dict)


_ADDRESS_ATTRIBUTES = {"sms": "phone_number", "push": "push_subscription"}
_MISSING = {
    "email": "no e-mail address",
    "sms": "no phone number",
    "push": "no push subscription",
}


class NotificationBackend:
    """The interface every channel backend implements (see the module's documentation)."""

    def __init__(self, channel: str) -> None:
        self.channel = channel

    def recipient_for(self, user) -> str | None:
        if self.channel == "email":
            return (getattr(user, "email", "") or "").strip() or None
        attribute = _ADDRESS_ATTRIBUTES.get(self.channel, f"{self.channel}_address")
        for holder in (user, getattr(user, "engagement_profile", None)):
            value = getattr(holder, attribute, None) if holder is not None else None
            if value:
                return str(value)
        return None

    def missing_reason(self) -> str:
        """Why a person without a recipient address is skipped."""
        return _MISSING.get(self.channel, f"no {self.channel} address")

    def send(self, message: DeliveryMessage) -> None:  # pragma: no cover - interface
        raise NotImplementedError


class EmailBackend(NotificationBackend):
    """Sends through Django's configured mail backend: plain text with an HTML alternative."""

    def send(self, message: DeliveryMessage) -> None:
        email = EmailMultiAlternatives(
            subject=message.subject,
            body=message.text,
            to=[message.recipient],
            headers=message.headers,
        )
        if message.html:
            email.attach_alternative(message.html, "text/html")
        try:
            email.send()
        except smtplib.SMTPRecipientsRefused as exc:
            raise PermanentDeliveryError(f"address refused: {exc}") from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise TemporaryDeliveryError(f"mail server: {exc}") from exc


class ConsoleBackend(NotificationBackend):
    """Prints every message (for development)."""

    stream: TextIO | None = None

    def send(self, message: DeliveryMessage) -> None:
        stream = self.stream or sys.stdout
        stream.write(
            f"[{message.channel}] to {message.recipient} ({message.severity}): "
            f"{message.subject}\n{message.text}\n{'-' * 60}\n"
        )
        stream.flush()


class RecordingBackend(NotificationBackend):
    """Stores what would have been sent as a :class:`~alerts.models.RecordedMessage`.

    The default for SMS and web push: the platform never reaches an outside service unless a
    city configures one. For SMS, ``text`` is the short message body; for push, ``data`` holds
    the JSON payload a service worker would receive.
    """

    def send(self, message: DeliveryMessage) -> None:
        RecordedMessage.objects.create(
            channel=message.channel,
            user_id=message.user_id,
            recipient=message.recipient[:255],
            subject=message.subject[:255],
            body=message.text,
            data={**message.data, "url": message.url, "severity": message.severity},
        )


def get_backend(channel: str) -> NotificationBackend:
    """The backend configured for ``channel``."""
    paths = app_settings.NOTIFICATION_BACKENDS or {}
    path = paths.get(channel)
    if not path:
        raise ImproperlyConfigured(f"NOTIFICATION_BACKENDS has no backend for {channel!r}")
    cls = import_string(path)
    return cls(channel=channel)


__all__ = [
    "ConsoleBackend",
    "DeliveryError",
    "DeliveryMessage",
    "EmailBackend",
    "NotificationBackend",
    "PermanentDeliveryError",
    "RecordingBackend",
    "TemporaryDeliveryError",
    "get_backend",
]
