"""Personal notifications: the inbox, and deliveries by e-mail, SMS and push.

Other apps call :func:`notify` (one person) or :func:`notify_many`; alert services call
:func:`notify_alert`, which hands the fan-out to a background task. Every notification that a
person's preferences let through lands in the in-app inbox (with a live ``notification`` event on
the person's ``user`` topic); other channels get a :class:`~alerts.models.Delivery` each, sent
by background tasks (:mod:`alerts.tasks`) once the transaction commits.

Preferences live on ``Profile.notification_preferences`` (see
``neighborhoods.forms.NotificationPreferencesForm.to_preferences``); a person who never saved
them gets :data:`DEFAULT_PREFERENCES`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.core import signing
from django.db import IntegrityError, transaction
from django.db.models import Count, QuerySet
from django.utils import timezone

from neighborhoods.models import Membership, Profile

from . import live
from .models import Alert, Delivery, Notification, Severity

logger = logging.getLogger(__name__)

CHANNELS = ("email", "sms", "push")
ALERT_REASONS = ("created", "corroborated", "verified", "updated", "retracted")
UNSUBSCRIBE_SALT = "alerts.notifications.unsubscribe"
# People handled per batch when fanning out to a whole neighborhood.
BATCH_SIZE = 500

DEFAULT_PREFERENCES: dict[str, Any] = {
    "inapp": {"min_severity": "info"},
    "email": {"enabled": True, "min_severity": "warning", "digest": "daily"},
    "sms": {"enabled": False},
    "push": {"enabled": False},
    "quiet_hours": None,
}


# Preferences --------------------------------------------------------------------------------


def _severity(value: Any, default: Severity) -> Severity:
    if isinstance(value, int) and value in Severity.values:
        return Severity(value)
    try:
        return Severity.from_name(value)
    except (ValueError, TypeError):
        return default


def _clock(value: Any) -> time | None:
    try:
        parsed = time.fromisoformat(str(value))
    except (TypeError, ValueError):
        return None
    return parsed.replace(second=0, microsecond=0, tzinfo=None)


def _section(data: dict, name: str) -> dict:
    value = data.get(name)
    return value if isinstance(value, dict) else {}


@dataclass(frozen=True)
class Preferences:
    """A person's notification preferences, parsed and with defaults filled in."""

    inapp_min: Severity = Severity.INFO
    email_enabled: bool = True
    email_min: Severity = Severity.WARNING
    email_digest: bool = True
    sms_enabled: bool = False
    push_enabled: bool = False
    quiet_start: time | None = None
    quiet_end: time | None = None

    @classmethod
    def from_json(cls, data: Any) -> Preferences:
        """Read the stored JSON; anything missing or unreadable takes its default."""
        data = data if isinstance(data, dict) else {}
        inapp, email = _section(data, "inapp"), _section(data, "email")
        quiet = _section(data, "quiet_hours")
        start, end = _clock(quiet.get("start")), _clock(quiet.get("end"))
        if start is None or end is None or start == end:
            start = end = None
        return cls(
            inapp_min=_severity(inapp.get("min_severity"), Severity.INFO),
            email_enabled=bool(email.get("enabled", True)),
            email_min=_severity(email.get("min_severity"), Severity.WARNING),
            email_digest=email.get("digest", "daily") != "never",
            sms_enabled=bool(_section(data, "sms").get("enabled", False)),
            push_enabled=bool(_section(data, "push").get("enabled", False)),
            quiet_start=start,
            quiet_end=end,
        )

    def wants(self, channel: str) -> bool:
        """Whether the channel is switched on at all."""
        return {
            "email": self.email_enabled,
            "sms": self.sms_enabled,
            "push": self.push_enabled,
        }.get(channel, False)

    def quiet_until(self, now: datetime | None = None) -> datetime | None:
        """When the quiet hours that ``now`` falls in end; ``None`` outside quiet hours.

        Quiet hours are wall-clock times in the site's time zone (``TIME_ZONE``) and may span
        midnight (22:00–07:00).
        """
        if self.quiet_start is None or self.quiet_end is None:
            return None
        tz = timezone.get_default_timezone()
        local = timezone.localtime(now or timezone.now(), tz)
        clock = local.time().replace(tzinfo=None)
        start, end = self.quiet_start, self.quiet_end
        if start < end:
            if not (start <= clock < end):
                return None
            day = local.date()
        else:  # spans midnight
            if clock >= start:
                day = local.date() + timedelta(days=1)
            elif clock < end:
                day = local.date()
            else:
                return None
        return datetime.combine(day, end, tzinfo=tz)


def preferences_for(user) -> Preferences:
    """One person's preferences (one query)."""
    stored = (
        Profile.objects.filter(user_id=getattr(user, "pk", user))
        .values_list("notification_preferences", flat=True)
        .first()
    )
    return Preferences.from_json(stored)


@dataclass
class Plan:
    """What to do for one person: show in the inbox, and which deliveries to create."""

    inapp: bool = False
    # (channel, status, not_before)
    deliveries: list[tuple[str, str, datetime | None]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.inapp and not self.deliveries


def plan_for(
    prefs: Preferences,
    severity: int,
    *,
    now: datetime | None = None,
    force: dict[str, str] | None = None,
) -> Plan:
    """Decide how one notification reaches one person.

    * in-app: at or above the in-app minimum;
    * e-mail: at or above the e-mail minimum at once, the rest in the daily digest (or never);
    * SMS: emergencies only; web push: whatever reaches the inbox;
    * quiet hours hold immediate sends until they end, except for emergencies.

    ``force`` maps channels that must be used whatever the severity (a retraction reaches
    everyone told about the original, on the channels they were told on) to the status the
    original delivery had; a channel the person has switched off is never forced.
    """
    now = now or timezone.now()
    severity = int(severity)
    force = force or {}
    plan = Plan(inapp=severity >= prefs.inapp_min or bool(force))
    held = None if severity >= Severity.EMERGENCY else prefs.quiet_until(now)
    pending = Delivery.Status.PENDING

    if prefs.email_enabled:
        if "email" in force:
            status = Delivery.Status.DIGEST if force["email"] == Delivery.Status.DIGEST else pending
            plan.deliveries.append(("email", status, held if status == pending else None))
        elif severity >= prefs.email_min:
            plan.deliveries.append(("email", pending, held))
        elif prefs.email_digest:
            plan.deliveries.append(("email", Delivery.Status.DIGEST, None))
    if prefs.sms_enabled and (severity >= Severity.EMERGENCY or "sms" in force):
        plan.deliveries.append(("sms", pending, held))
    if prefs.push_enabled and (severity >= prefs.inapp_min or "push" in force):
        plan.deliveries.append(("push", pending, held))
    return plan


# Creating notifications ---------------------------------------------------------------------


@dataclass(frozen=True)
class Message:
    """What a notification says; the same for every recipient."""

    kind: str
    title: str
    key: str
    body: str = ""
    url: str = ""
    severity: int = Severity.INFO
    alert_id: int | None = None


def unread_count(user) -> int:
    return Notification.objects.filter(user=user, read_at__isnull=True).count()


def _unread_counts(user_ids: Iterable[int]) -> dict[int, int]:
    rows = (
        Notification.objects.filter(user_id__in=list(user_ids), read_at__isnull=True)
        .values("user_id")
        .annotate(n=Count("id"))
        .values_list("user_id", "n")
    )
    return dict(rows)


def _payload(note: Notification, unread: int) -> dict:
    return {
        "id": note.pk,
        "kind": note.kind,
        "title": note.title,
        "body": note.body,
        "url": note.url,
        "severity": Severity(note.severity).slug,
        "unread": unread,
    }


def _deliver(
    user_ids: Sequence[int],
    message: Message,
    *,
    now: datetime | None = None,
    force: dict[int, dict[str, str]] | None = None,
) -> list[Notification]:
    """Create the notifications and deliveries for some people with a few queries per batch.

    Returns the notifications created (people who already had one for ``message.key``, or whose
    preferences let nothing through, get none).
    """
    now = now or timezone.now()
    created: list[Notification] = []
    ids = list(dict.fromkeys(int(pk) for pk in user_ids))
    for start in range(0, len(ids), BATCH_SIZE):
        created.extend(_deliver_batch(ids[start : start + BATCH_SIZE], message, now, force or {}))
    return created


def _deliver_batch(
    ids: list[int], message: Message, now: datetime, force: dict[int, dict[str, str]]
) -> list[Notification]:
    title, key = message.title[:200], message.key[:120]
    stored = dict(
        get_user_model()
        .objects.filter(pk__in=ids)
        .values_list("pk", "engagement_profile__notification_preferences")
    )
    already = set(
        Notification.objects.filter(user_id__in=ids, key=key).values_list("user_id", flat=True)
    )
    plans: dict[int, Plan] = {}
    notes: list[Notification] = []
    for user_id in ids:
        if user_id not in stored or user_id in already:
            continue
        plan = plan_for(
            Preferences.from_json(stored[user_id]),
            message.severity,
            now=now,
            force=force.get(user_id),
        )
        if plan.empty:
            continue
        plans[user_id] = plan
        notes.append(
            Notification(
                user_id=user_id,
                kind=message.kind,
                title=title,
                body=message.body,
                url=message.url,
                severity=int(message.severity),
                alert_id=message.alert_id,
                key=key,
                created_at=now,
                # Wanted on another channel but not in the inbox: kept, already read.
                read_at=None if plan.inapp else now,
            )
        )
    if not notes:
        return []
    with transaction.atomic():
        notes = _insert_notifications(notes)
        deliveries = [
            Delivery(
                notification=note,
                channel=channel,
                status=status,
                not_before=not_before,
                created_at=now,
            )
            for note in notes
            for channel, status, not_before in plans[note.user_id].deliveries
        ]
        deliveries = Delivery.objects.bulk_create(deliveries)
        shown = [note for note in notes if note.read_at is None]
        if shown:
            counts = _unread_counts(note.user_id for note in shown)
            live.publish_many(
                (
                    live.user_topic(note.user_id),
                    "notification",
                    _payload(note, counts.get(note.user_id, 0)),
                )
                for note in shown
            )
        due = [(d.pk, d.not_before) for d in deliveries if d.status == Delivery.Status.PENDING]
        if due:
            transaction.on_commit(lambda: enqueue_deliveries(due), robust=True)
    return notes


def _insert_notifications(notes: list[Notification]) -> list[Notification]:
    """Insert in one query; if someone raced us to a key, insert the others one by one."""
    try:
        with transaction.atomic():
            return Notification.objects.bulk_create(notes)
    except IntegrityError:
        kept = []
        for note in notes:
            try:
                with transaction.atomic():
                    note.save(force_insert=True)
            except IntegrityError:
                continue
            kept.append(note)
        return kept


def enqueue_deliveries(due: Iterable[tuple[int, datetime | None]]) -> None:
    """Enqueue one send task per delivery; never raises (the periodic sweep catches up)."""
    from .tasks import enqueue_send

    for delivery_id, not_before in due:
        enqueue_send(delivery_id, not_before)


def notify(
    user,
    *,
    kind: str,
    title: str,
    key: str,
    body: str = "",
    url: str = "",
    severity: int = Severity.INFO,
    alert: Alert | None = None,
) -> Notification | None:
    """Notify one person (once per ``key``) by their preferences.

    Returns the notification, or ``None`` if the person already had one for ``key`` or their
    preferences let nothing through. Deliveries are sent by background tasks after commit.
    """
    message = Message(
        kind=kind,
        title=title,
        key=key,
        body=body,
        url=url,
        severity=int(severity),
        alert_id=alert.pk if alert is not None else None,
    )
    created = _deliver([getattr(user, "pk", user)], message)
    return created[0] if created else None


def notify_many(
    users: Iterable,
    *,
    kind: str,
    title: str,
    key: str,
    body: str = "",
    url: str = "",
    severity: int = Severity.INFO,
    alert: Alert | None = None,
) -> list[Notification]:
    """Notify many people (users or their ids) with a few queries per 500 people."""
    message = Message(
        kind=kind,
        title=title,
        key=key,
        body=body,
        url=url,
        severity=int(severity),
        alert_id=alert.pk if alert is not None else None,
    )
    return _deliver([getattr(u, "pk", u) for u in users], message)


# Alerts -------------------------------------------------------------------------------------

_LABELS = {
    "created": "",
    "corroborated": "Corroborated: ",
    "verified": "Verified by the city: ",
    "updated": "Updated: ",
    "retracted": "Retracted: ",
}


def notify_alert(alert: Alert, reason: str) -> None:
    """Tell the right people about an alert, in a background task once the transaction commits.

    Official notices reach members of the alert's neighborhoods when created; resident reports
    when corroborated or verified; updates and retractions reach everyone told before.
    """
    if reason not in ALERT_REASONS:
        raise ValueError(f"unknown reason {reason!r}")
    if reason == "created" and alert.kind == Alert.Kind.COMMUNITY:
        return  # resident reports notify once corroborated or verified
    alert_id = alert.pk

    def enqueue() -> None:
        from .tasks import notify_alert_task

        notify_alert_task.enqueue(alert_id, reason)

    transaction.on_commit(enqueue, robust=True)


def alert_recipients(alert: Alert, reason: str) -> list[int]:
    """Ids of the people to tell about ``alert`` for ``reason``."""
    if reason in ("created", "corroborated", "verified"):
        qs = Membership.objects.filter(neighborhood__alerts=alert)
        if alert.author_id:
            qs = qs.exclude(user_id=alert.author_id)
        return sorted(set(qs.values_list("user_id", flat=True)))
    return sorted(set(Notification.objects.filter(alert=alert).values_list("user_id", flat=True)))


def deliver_alert(alert_id: int, reason: str, *, now: datetime | None = None) -> int:
    """The work behind :func:`notify_alert`; returns how many people were notified."""
    alert = Alert.objects.select_related("department").filter(pk=alert_id).first()
    if alert is None:
        return 0
    if reason in ("created", "corroborated", "verified") and alert.status != Alert.Status.ACTIVE:
        return 0
    recipients = alert_recipients(alert, reason)
    if not recipients:
        return 0
    force: dict[int, dict[str, str]] = {}
    if reason == "retracted":
        # Everyone told before is told again on the channels they were told on.
        for user_id, channel, status in (
            Delivery.objects.filter(notification__alert=alert)
            .exclude(status=Delivery.Status.SKIPPED)
            .values_list("notification__user_id", "channel", "status")
        ):
            channels = force.setdefault(user_id, {})
            if channels.get(channel) != Delivery.Status.PENDING:
                channels[channel] = status if status == Delivery.Status.DIGEST else "pending"
        for user_id in recipients:
            force.setdefault(user_id, {"inapp": "pending"})
    if reason in ("retracted", "updated") and alert.status_note:
        body = alert.status_note
    else:
        body = alert.provenance
    message = Message(
        kind=f"alert.{reason}",
        title=f"{_LABELS[reason]}{alert.title}",
        key=f"alert:{alert.pk}:v{alert.version}:{reason}",
        body=body,
        url=alert.get_absolute_url(),
        severity=alert.severity,
        alert_id=alert.pk,
    )
    return len(_deliver(recipients, message, now=now, force=force))


# Reading -------------------------------------------------------------------------------------


def inbox(user) -> QuerySet[Notification]:
    """A person's notifications, newest first."""
    return Notification.objects.filter(user=user).order_by("-created_at", "-id")


def mark_read(user, ids: Iterable[int] | None = None, *, now: datetime | None = None) -> int:
    """Mark some (or, with ``ids=None``, all) of a person's notifications read.

    Only the person's own unread notifications change. Other open tabs are told with a
    ``notification.read`` event carrying the new unread count. Returns how many changed.
    """
    now = now or timezone.now()
    qs = Notification.objects.filter(user=user, read_at__isnull=True)
    if ids is not None:
        ids = [int(pk) for pk in ids]
        qs = qs.filter(pk__in=ids)
    with transaction.atomic():
        changed_ids = list(qs.values_list("pk", flat=True)) if ids is not None else None
        changed = qs.update(read_at=now)
        if changed:
            live.publish(
                live.user_topic(user),
                "notification.read",
                {
                    "ids": changed_ids if changed_ids is not None else "all",
                    "unread": unread_count(user),
                },
            )
    return changed


# Unsubscribing -------------------------------------------------------------------------------


class BadToken(Exception):
    """An unsubscribe link that was tampered with, truncated or names nobody."""


def unsubscribe_token(user, channel: str = "email") -> str:
    """A signed token that unsubscribes ``user`` from ``channel``; it does not expire."""
    return signing.dumps({"u": getattr(user, "pk", user), "c": channel}, salt=UNSUBSCRIBE_SALT)


def read_unsubscribe_token(token: str) -> tuple[Any, str]:
    """``(user, channel)`` named by a token; raises :class:`BadToken`."""
    try:
        data = signing.loads(token, salt=UNSUBSCRIBE_SALT)
    except signing.BadSignature as exc:
        raise BadToken("This link is not valid.") from exc
    if not isinstance(data, dict) or data.get("c") not in CHANNELS:
        raise BadToken("This link is not valid.")
    user = get_user_model().objects.filter(pk=data.get("u")).first()
    if user is None:
        raise BadToken("This link names nobody.")
    return user, data["c"]


def set_channel_enabled(user, channel: str, enabled: bool) -> None:
    """Switch one channel on or off in a person's stored preferences."""
    if channel not in CHANNELS:
        raise ValueError(f"unknown channel {channel!r}")
    with transaction.atomic():
        profile, _ = Profile.objects.select_for_update().get_or_create(user=user)
        prefs = dict(profile.notification_preferences or {})
        section = dict(prefs.get(channel) or {})
        section["enabled"] = bool(enabled)
        prefs[channel] = section
        profile.notification_preferences = prefs
        profile.save(update_fields=["notification_preferences"])


__all__ = [
    "ALERT_REASONS",
    "BadToken",
    "CHANNELS",
    "DEFAULT_PREFERENCES",
    "Preferences",
    "deliver_alert",
    "inbox",
    "mark_read",
    "notify",
    "notify_alert",
    "notify_many",
    "plan_for",
    "preferences_for",
    "read_unsubscribe_token",
    "set_channel_enabled",
    "unread_count",
    "unsubscribe_token",
]
