"""Personal notifications: the inbox, and deliveries by e-mail, SMS and push.

Other apps call :func:`notify` (one person) or :func:`notify_many`; alert services call
:func:`notify_alert`. Every notification lands in the in-app inbox (with a live ``notification``
event on the person's ``user`` topic); other channels follow the person's preferences.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import IntegrityError, transaction

from neighborhoods.models import Membership

from . import live
from .models import Alert, Notification, Severity


def unread_count(user) -> int:
    return Notification.objects.filter(user=user, read_at__isnull=True).count()


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
    """Put one notification in a person's inbox (once per ``key``); ``None`` if already there."""
    try:
        with transaction.atomic():
            note = Notification.objects.create(
                user=user,
                kind=kind,
                title=title[:200],
                body=body,
                url=url,
                severity=int(severity),
                alert=alert,
                key=key[:120],
            )
    except IntegrityError:
        return None
    live.publish(
        live.user_topic(user),
        "notification",
        {
            "id": note.pk,
            "kind": kind,
            "title": note.title,
            "body": body,
            "url": url,
            "severity": Severity(note.severity).slug,
            "unread": unread_count(user),
        },
    )
    return note


def notify_alert(alert: Alert, reason: str) -> None:
    """Tell the right people about an alert: members of its neighborhoods on creation,
    corroboration or verification; everyone told before on an update or a retraction."""
    if reason in ("created", "corroborated", "verified"):
        if alert.kind == Alert.Kind.COMMUNITY and reason == "created":
            return  # resident reports notify once corroborated or verified
        recipients: Iterable = (
            Membership.objects.filter(neighborhood__alerts=alert)
            .exclude(user_id=alert.author_id)
            .values_list("user_id", flat=True)
            .distinct()
        )
    else:
        recipients = (
            Notification.objects.filter(alert=alert).values_list("user_id", flat=True).distinct()
        )
    labels = {
        "created": "",
        "corroborated": "Corroborated: ",
        "verified": "Verified: ",
        "updated": "Updated: ",
        "retracted": "Retracted: ",
    }
    from django.contrib.auth import get_user_model

    users = get_user_model().objects.filter(pk__in=list(recipients))
    for user in users:
        notify(
            user,
            kind=f"alert.{reason}",
            title=f"{labels.get(reason, '')}{alert.title}",
            body=alert.provenance,
            url=alert.get_absolute_url(),
            severity=alert.severity,
            alert=alert,
            key=f"alert:{alert.pk}:v{alert.version}:{reason}",
        )
