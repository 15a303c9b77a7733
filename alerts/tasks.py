"""Background work of the alerts app: notification fan-out and delivery, digests, housekeeping.

Every function here has a plain version (``send_delivery``, ``send_digests``...) that does the
work and can be called directly (tests, management commands), and a task (``*_task``) that the
task worker runs. Tasks take only JSON-serialisable arguments and never raise: failures are
recorded on the :class:`~alerts.models.Delivery` rows and logged.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from urllib.parse import urljoin

from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.db.models import F, Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django_tasks import task

from .backends import (
    DeliveryMessage,
    NotificationBackend,
    PermanentDeliveryError,
    get_backend,
)
from .conf import app_settings
from .models import Delivery, Notification, Severity
from .notify import deliver_alert, preferences_for, unsubscribe_token

logger = logging.getLogger(__name__)

# Longest wait between two attempts of one delivery.
MAX_BACKOFF = timedelta(hours=6)
# A pending delivery with no time set is re-enqueued by the sweep after this long (its task
# was lost: a worker died, or the queue was unavailable when it was created).
STALE_AFTER = timedelta(minutes=5)
SWEEP_LIMIT = 5000


# Links in messages ---------------------------------------------------------------------------


def site_url() -> str:
    """The site's public base URL (Wagtail's ``WAGTAILADMIN_BASE_URL``)."""
    from wagtail.admin.utils import get_admin_base_url

    return (get_admin_base_url() or "http://localhost").rstrip("/") + "/"


def absolute(path: str) -> str:
    return urljoin(site_url(), path) if path else ""


def site_name() -> str:
    from neighborhoods.templatetags.engagement_tags import site_name as name

    return name()


def _links(user) -> dict[str, str]:
    unsubscribe = absolute(reverse("alerts:unsubscribe", args=[unsubscribe_token(user, "email")]))
    return {
        "site_name": site_name(),
        "site_url": site_url(),
        "inbox_url": absolute(reverse("alerts:inbox")),
        "preferences_url": absolute(reverse("neighborhoods:profile")) + "#notifications-heading",
        "unsubscribe_url": unsubscribe,
    }


def _mail_headers(unsubscribe_url: str) -> dict[str, str]:
    return {
        "List-Unsubscribe": f"<{unsubscribe_url}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


# Composing -----------------------------------------------------------------------------------


def _subject(note: Notification) -> str:
    if note.severity >= Severity.WARNING:
        return f"{Severity(note.severity).label}: {note.title}"
    return note.title


def compose(note: Notification, channel: str, recipient: str) -> DeliveryMessage:
    """Render one notification for one channel."""
    user = note.user
    severity = Severity(note.severity)
    url = absolute(note.url)
    base = {
        "channel": channel,
        "recipient": recipient,
        "url": url,
        "severity": severity.slug,
        "user_id": user.pk,
        "data": {"notification": note.pk, "kind": note.kind},
    }
    if channel == "email":
        context = {
            **_links(user),
            "notification": note,
            "severity": severity,
            "url": url,
            "user": user,
        }
        return DeliveryMessage(
            subject=_subject(note),
            text=render_to_string("alerts/email/notification.txt", context),
            html=render_to_string("alerts/email/notification.html", context),
            headers=_mail_headers(context["unsubscribe_url"]),
            **base,
        )
    if channel == "sms":
        text = f"{severity.label.upper()}: {note.title}"
        if url:
            text = f"{text} {url}"
        return DeliveryMessage(subject=note.title, text=text[:480], **base)
    # push and any other channel: a short title and body, and a JSON payload.
    base["data"] = {
        **base["data"],
        "title": note.title,
        "body": note.body[:200],
        "url": url,
        "severity": severity.slug,
    }
    return DeliveryMessage(subject=note.title, text=note.body[:200], **base)


def compose_digest(user, notes: list[Notification], recipient: str) -> DeliveryMessage:
    """One e-mail listing several notifications."""
    links = _links(user)
    items = [
        {"notification": n, "severity": Severity(n.severity), "url": absolute(n.url)} for n in notes
    ]
    context = {**links, "items": items, "user": user, "count": len(items)}
    plural = "s" if len(items) != 1 else ""
    return DeliveryMessage(
        channel="email",
        recipient=recipient,
        subject=f"Your daily digest: {len(items)} update{plural} from {links['site_name']}",
        text=render_to_string("alerts/email/digest.txt", context),
        html=render_to_string("alerts/email/digest.html", context),
        url=links["inbox_url"],
        user_id=user.pk,
        headers=_mail_headers(links["unsubscribe_url"]),
        data={"notifications": [n.pk for n in notes], "kind": "digest"},
    )


# Sending one delivery ------------------------------------------------------------------------


def backoff(attempts: int) -> timedelta:
    """Wait before attempt ``attempts + 1``: the retry interval, doubled each time."""
    seconds = app_settings.NOTIFICATION_RETRY_SECONDS * (2 ** max(attempts - 1, 0))
    return min(timedelta(seconds=seconds), MAX_BACKOFF)


def enqueue_send(
    delivery_id: int, not_before: datetime | None = None, *, now: datetime | None = None
) -> bool:
    """Enqueue the send task of one delivery (at ``not_before`` if the queue can defer).

    A queue that cannot defer (the immediate backend) gets nothing for a delivery that is not
    due yet: :func:`send_due_deliveries` enqueues it when it is. Never raises.
    """
    now = now or timezone.now()
    try:
        if not_before is not None and not_before > now:
            if not send_delivery_task.get_backend().supports_defer:
                return False
            send_delivery_task.using(run_after=not_before).enqueue(delivery_id)
        else:
            send_delivery_task.enqueue(delivery_id)
    except Exception:
        logger.exception("Could not enqueue delivery %s; the periodic sweep will", delivery_id)
        return False
    return True


def _finish(delivery: Delivery, status: str, error: str = "", **fields) -> None:
    delivery.status = status
    delivery.last_error = error[:500]
    for name, value in fields.items():
        setattr(delivery, name, value)
    delivery.save(update_fields=["status", "last_error", *fields])


def send_delivery(delivery_id: int, *, now: datetime | None = None) -> str:
    """Send one pending delivery that is due; return its status afterwards.

    Idempotent: the delivery is claimed with a conditional update (which also locks the row
    until the outcome is stored), so it is sent at most once however many tasks run for it.
    Temporary failures are retried with backoff up to ``NOTIFICATION_MAX_ATTEMPTS``.
    """
    now = now or timezone.now()
    retry_at = None
    with transaction.atomic():
        claimed = (
            Delivery.objects.filter(pk=delivery_id, status=Delivery.Status.PENDING)
            .filter(Q(not_before__isnull=True) | Q(not_before__lte=now))
            .update(attempts=F("attempts") + 1)
        )
        if not claimed:
            status = Delivery.objects.filter(pk=delivery_id).values_list("status", flat=True)
            return status.first() or "missing"
        delivery = Delivery.objects.select_related("notification__user").get(pk=delivery_id)
        note = delivery.notification
        user = note.user
        if not preferences_for(user).wants(delivery.channel):
            _finish(delivery, Delivery.Status.SKIPPED, "switched off by the person")
            return delivery.status
        try:
            backend: NotificationBackend = get_backend(delivery.channel)
        except (ImproperlyConfigured, ImportError) as exc:
            logger.error("No usable backend for %s: %s", delivery.channel, exc)
            _finish(delivery, Delivery.Status.FAILED, f"no backend: {exc}")
            return delivery.status
        recipient = backend.recipient_for(user)
        if not recipient:
            _finish(delivery, Delivery.Status.SKIPPED, backend.missing_reason())
            return delivery.status
        try:
            backend.send(compose(note, delivery.channel, recipient))
        except PermanentDeliveryError as exc:
            _finish(delivery, Delivery.Status.FAILED, str(exc) or type(exc).__name__)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            if delivery.attempts >= app_settings.NOTIFICATION_MAX_ATTEMPTS:
                logger.warning("Delivery %s failed for good: %s", delivery.pk, error)
                _finish(delivery, Delivery.Status.FAILED, error)
            else:
                retry_at = now + backoff(delivery.attempts)
                _finish(delivery, Delivery.Status.PENDING, error, not_before=retry_at)
        else:
            _finish(delivery, Delivery.Status.SENT, "", sent_at=now)
    if retry_at is not None:
        enqueue_send(delivery_id, retry_at, now=now)
    return delivery.status


def send_due_deliveries(*, now: datetime | None = None) -> int:
    """Enqueue pending deliveries that are due: after quiet hours, retries, lost tasks."""
    now = now or timezone.now()
    due = list(
        Delivery.objects.filter(status=Delivery.Status.PENDING)
        .filter(
            Q(not_before__lte=now) | Q(not_before__isnull=True, created_at__lte=now - STALE_AFTER)
        )
        .order_by("not_before", "pk")
        .values_list("pk", flat=True)[:SWEEP_LIMIT]
    )
    return sum(enqueue_send(pk, now=now) for pk in due)


# Digests -------------------------------------------------------------------------------------


class _Raced(Exception):
    """Another run claimed some of these deliveries first."""


def send_digests(*, now: datetime | None = None) -> int:
    """Send each person one e-mail with their deliveries waiting for the digest.

    Deliveries are claimed before the mail goes out, so running this twice (or twice at
    once) never sends anything twice. Returns the number of digests sent.
    """
    now = now or timezone.now()
    user_ids = sorted(
        set(
            Delivery.objects.filter(
                channel="email", status=Delivery.Status.DIGEST, created_at__lte=now
            ).values_list("notification__user_id", flat=True)
        )
    )
    sent = 0
    for user_id in user_ids:
        try:
            sent += _send_digest(user_id, now)
        except Exception:
            logger.exception("Digest for user %s failed", user_id)
    return sent


def _send_digest(user_id: int, now: datetime) -> int:
    ids: list[int] = []
    try:
        with transaction.atomic():
            rows = list(
                Delivery.objects.filter(
                    notification__user_id=user_id,
                    channel="email",
                    status=Delivery.Status.DIGEST,
                    created_at__lte=now,
                )
                .select_related("notification__user")
                .order_by("notification__created_at", "notification_id")
            )
            if not rows:
                return 0
            ids = [row.pk for row in rows]
            claimed = Delivery.objects.filter(pk__in=ids, status=Delivery.Status.DIGEST).update(
                status=Delivery.Status.SENT, sent_at=now, last_error=""
            )
            if claimed != len(ids):
                raise _Raced
            user = rows[0].notification.user
            prefs = preferences_for(user)
            if not (prefs.email_enabled and prefs.email_digest):
                Delivery.objects.filter(pk__in=ids).update(
                    status=Delivery.Status.SKIPPED,
                    sent_at=None,
                    last_error="digest switched off by the person",
                )
                return 0
            backend = get_backend("email")
            recipient = backend.recipient_for(user)
            if not recipient:
                Delivery.objects.filter(pk__in=ids).update(
                    status=Delivery.Status.SKIPPED,
                    sent_at=None,
                    last_error=backend.missing_reason(),
                )
                return 0
            backend.send(compose_digest(user, [row.notification for row in rows], recipient))
            Delivery.objects.filter(pk__in=ids).update(attempts=F("attempts") + 1)
            return 1
    except _Raced:
        return 0
    except PermanentDeliveryError as exc:
        Delivery.objects.filter(pk__in=ids, status=Delivery.Status.DIGEST).update(
            status=Delivery.Status.FAILED, attempts=F("attempts") + 1, last_error=str(exc)[:500]
        )
        return 0
    except Exception as exc:
        # The claim was rolled back: the deliveries wait for the next run, up to the limit.
        waiting = Delivery.objects.filter(pk__in=ids, status=Delivery.Status.DIGEST)
        waiting.update(attempts=F("attempts") + 1, last_error=f"{type(exc).__name__}: {exc}"[:500])
        waiting.filter(attempts__gte=app_settings.NOTIFICATION_MAX_ATTEMPTS).update(
            status=Delivery.Status.FAILED
        )
        logger.warning("Digest for user %s not sent: %s", user_id, exc)
        return 0


def digest_due(now: datetime | None = None) -> bool:
    """Whether it is ``DIGEST_HOUR`` or later, local time, today."""
    local = timezone.localtime(now or timezone.now(), timezone.get_default_timezone())
    return local.hour >= int(app_settings.DIGEST_HOUR)


# Tasks --------------------------------------------------------------------------------------


@task()
def notify_alert_task(alert_id: int, reason: str) -> int:
    """Fan an alert out to the people who should hear about it."""
    try:
        return deliver_alert(alert_id, reason)
    except Exception:
        logger.exception("Notifying about alert %s (%s) failed", alert_id, reason)
        return 0


@task()
def send_delivery_task(delivery_id: int) -> str:
    try:
        return send_delivery(delivery_id)
    except Exception:
        logger.exception("Sending delivery %s failed", delivery_id)
        return "error"


@task()
def send_due_deliveries_task() -> int:
    return send_due_deliveries()


@task()
def send_digests_task() -> int:
    return send_digests()


@task()
def expire_alerts_task() -> int:
    from .services import expire_alerts

    return expire_alerts()


@task()
def prune_events_task() -> int:
    from .live import prune_events

    return prune_events()


__all__ = [
    "compose",
    "compose_digest",
    "digest_due",
    "enqueue_send",
    "expire_alerts_task",
    "notify_alert_task",
    "prune_events_task",
    "send_delivery",
    "send_delivery_task",
    "send_digests",
    "send_digests_task",
    "send_due_deliveries",
    "send_due_deliveries_task",
]
