"""Business rules of alerts. Views, the API, feeds, commands and consumers call these."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from datetime import datetime, timedelta

import shapely
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from shapely import affinity
from shapely.geometry import mapping

from neighborhoods.geometry import GeometryError, bbox_of, parse_area, validate_point
from neighborhoods.images import process_photo
from neighborhoods.locate import intersecting, locate
from neighborhoods.models import Department, Neighborhood, VerificationLevel
from neighborhoods.permissions import (
    can,
    is_city_staff,
    is_supervisor,
    membership_of,
    residency_level,
    staff_record,
)
from neighborhoods.ratelimit import check_rate
from neighborhoods.text import render_markdown

from . import live
from .conf import app_settings
from .models import (
    Alert,
    AlertCategory,
    AlertConfirmation,
    AlertRevision,
    Delivery,
    Event,
    Notification,
    Severity,
)

METERS_PER_DEGREE = 111_320.0


# Geometry ------------------------------------------------------------------------------------


def circle_area(lat: float, lon: float, radius_m: float, segments: int = 32) -> dict:
    """A GeoJSON polygon approximating a circle of ``radius_m`` metres around (lat, lon)."""
    lat, lon = validate_point(lat, lon)
    radius_m = float(radius_m)
    if not math.isfinite(radius_m) or radius_m <= 0:
        raise GeometryError("the radius must be a positive number of metres")
    if radius_m > app_settings.ALERT_MAX_RADIUS_M:
        raise GeometryError(f"the radius may be at most {app_settings.ALERT_MAX_RADIUS_M} metres")
    unit = shapely.Point(lon, lat).buffer(1.0, quad_segs=max(segments // 4, 2))
    dlat = radius_m / METERS_PER_DEGREE
    dlon = radius_m / (METERS_PER_DEGREE * max(math.cos(math.radians(lat)), 0.01))
    ellipse = affinity.scale(unit, xfact=dlon, yfact=dlat, origin=(lon, lat))
    return {
        "type": "Polygon",
        "coordinates": [
            [[round(x, 7), round(y, 7)] for x, y in mapping(ellipse)["coordinates"][0]]
        ],
    }


def _union_of(neighborhoods: Iterable[Neighborhood]) -> dict:
    geoms = [shapely.geometry.shape(n.boundary) for n in neighborhoods]
    merged = shapely.union_all(geoms)
    return parse_area(mapping(merged))


# Payloads -----------------------------------------------------------------------------------


def alert_payload(alert: Alert) -> dict:
    """The public JSON of an alert: what the API returns and live events carry."""
    slugs = getattr(alert, "_neighborhood_slugs", None)
    if slugs is None:
        slugs = sorted(n.slug for n in alert.neighborhoods.all())
    return {
        "id": alert.pk,
        "kind": alert.kind,
        "category": {"slug": alert.category.slug, "name": alert.category.name},
        "severity": alert.severity_slug,
        "title": alert.title,
        "body": alert.body,
        "body_html": alert.body_html,
        "provenance": alert.provenance,
        "department": alert.department.name if alert.department_id else None,
        "source": alert.source,
        "source_name": alert.source_name,
        "status": alert.status,
        "is_active": alert.is_active(),
        "corroborated": alert.is_corroborated,
        "confirmations": alert.confirmations,
        "gone_reports": alert.gone_reports,
        "verified": alert.verified_at is not None,
        "neighborhoods": slugs,
        "area": alert.area,
        "point": (
            {"lat": alert.lat, "lon": alert.lon, "radius_m": alert.radius_m}
            if alert.lat is not None
            else None
        ),
        "starts_at": alert.starts_at.isoformat(),
        "expires_at": alert.expires_at.isoformat() if alert.expires_at else None,
        "status_note": alert.status_note,
        "version": alert.version,
        "photo": alert.photo.url if alert.photo else None,
        "url": alert.get_absolute_url(),
        "created_at": alert.created_at.isoformat() if alert.created_at else None,
        "updated_at": alert.updated_at.isoformat() if alert.updated_at else None,
    }


def _publish_alert(alert: Alert, event_type: str) -> None:
    """Tell every neighborhood the alert touches, and followers of the alert itself."""
    alert = Alert.objects.select_related("category", "department").get(pk=alert.pk)
    slugs = sorted(alert.neighborhoods.values_list("slug", flat=True))
    alert._neighborhood_slugs = slugs
    if alert.status == Alert.Status.DISMISSED:
        # Taken down by staff: subscribers learn only that it is gone, never its text again.
        data = {
            "id": alert.pk,
            "kind": alert.kind,
            "status": alert.status,
            "is_active": False,
            "neighborhoods": slugs,
            "url": alert.get_absolute_url(),
        }
    else:
        data = alert_payload(alert)
    items = [(f"neighborhood:{slug}", event_type, data) for slug in slugs]
    items.append((f"alert:{alert.pk}", event_type, data))
    live.publish_many(items)


def _notify(alert: Alert, reason: str) -> None:
    from .notify import notify_alert

    notify_alert(alert, reason)


# Creating -----------------------------------------------------------------------------------


_CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _clean_text(title: str, body: str) -> tuple[str, str]:
    # Control characters have no place in text and cannot be written to XML feeds.
    title = " ".join(_CONTROL_CHARACTERS.sub("", title or "").split())
    body = _CONTROL_CHARACTERS.sub("", body or "").strip()
    errors = {}
    if not title:
        errors["title"] = "Give the alert a short title."
    elif len(title) > 140:
        errors["title"] = "Keep the title to 140 characters."
    if len(body) > 10_000:
        errors["body"] = "Keep the text to 10,000 characters."
    if errors:
        raise ValidationError(errors)
    return title, body


def create_official_notice(
    *,
    author,
    category: AlertCategory,
    severity: int,
    title: str,
    body: str = "",
    neighborhoods: Iterable[Neighborhood] = (),
    area: dict | str | None = None,
    lat: float | None = None,
    lon: float | None = None,
    radius_m: float | None = None,
    starts_at: datetime | None = None,
    expires_at: datetime | None = None,
    photo=None,
    department: Department | None = None,
    source: str = Alert.Source.WEB,
    source_name: str = "",
    source_url: str = "",
    external_id: str | None = None,
) -> Alert:
    """A city notice for chosen neighborhoods, a drawn area or a point with a radius.

    ``author=None`` is allowed for feeds ingested by the system (then ``department`` or
    ``source_name`` names the issuer). Staff post for their own department.
    """
    if author is not None:
        if not can(author, "post_official_notice"):
            raise PermissionDenied("Only city staff post official notices.")
        record = staff_record(author)
        if record is not None and department is None:
            department = record.department
        if (
            record is not None
            and department is not None
            and department.pk != record.department_id
            and not is_supervisor(author)
        ):
            raise PermissionDenied("You post notices for your own department only.")
    title, body = _clean_text(title, body)
    chosen = list(neighborhoods)
    geometry = _official_area(chosen, area, lat, lon, radius_m)
    now = timezone.now()
    starts_at = starts_at or now
    if expires_at is None:
        expires_at = starts_at + timedelta(hours=app_settings.OFFICIAL_DEFAULT_LIFETIME_HOURS)
    if expires_at <= starts_at:
        raise ValidationError({"expires_at": "The expiry must come after the start."})
    touched = chosen or intersecting(geometry["area"])
    if not touched:
        raise ValidationError({"area": "The area does not touch any neighborhood."})
    alert = Alert(
        kind=Alert.Kind.OFFICIAL,
        category=category,
        severity=int(severity),
        title=title,
        body=body,
        body_html=render_markdown(body),
        starts_at=starts_at,
        expires_at=expires_at,
        author=author,
        department=department,
        source=source,
        source_name=source_name,
        source_url=source_url,
        external_id=external_id,
        **geometry["fields"],
    )
    _set_area(alert, geometry["area"])
    with transaction.atomic():
        if photo is not None:
            _attach_photo(alert, photo)
        alert.save()
        alert.neighborhoods.set(touched)
        _publish_alert(alert, "alert.created")
        _notify(alert, "created")
    return alert


def _official_area(chosen, area, lat, lon, radius_m) -> dict:
    given = sum(x is not None and x != "" for x in (area, lat)) + (1 if chosen else 0)
    if given == 0:
        raise ValidationError(
            {"area": "Choose neighborhoods, draw an area, or give a point with a radius."}
        )
    try:
        if area not in (None, ""):
            polygon = parse_area(area)
            return {"area": polygon, "fields": {}}
        if lat is not None:
            radius = radius_m or 500
            polygon = circle_area(lat, lon, radius)
            return {
                "area": polygon,
                "fields": {"lat": float(lat), "lon": float(lon), "radius_m": int(radius)},
            }
    except GeometryError as exc:
        raise ValidationError({"area": f"The area is not usable: {exc}."}) from exc
    return {"area": _union_of(chosen), "fields": {}}


def _set_area(alert: Alert, area: dict) -> None:
    box = bbox_of(area)
    alert.area = area
    alert.min_lon, alert.min_lat, alert.max_lon, alert.max_lat = (
        box.min_lon,
        box.min_lat,
        box.max_lon,
        box.max_lat,
    )


def _attach_photo(alert: Alert, photo) -> None:
    try:
        processed = process_photo(
            photo,
            max_bytes=app_settings.ALERT_PHOTO_MAX_BYTES,
            max_side=app_settings.ALERT_PHOTO_MAX_SIDE,
        )
    except ValidationError as exc:
        raise ValidationError({"photo": exc.messages}) from exc
    alert.photo.save(processed.file.name, processed.file, save=False)


def create_resident_report(
    *,
    author,
    category: AlertCategory,
    title: str,
    lat: float,
    lon: float,
    body: str = "",
    severity: int = Severity.ADVISORY,
    photo=None,
    source: str = Alert.Source.WEB,
) -> Alert:
    """A member's report, pinned on the map in a neighborhood they take part in."""
    if not category.residents_may_report:
        raise ValidationError({"category": "Residents cannot report in this category."})
    if int(severity) >= Severity.EMERGENCY:
        raise ValidationError(
            {"severity": "Emergencies are for the city to announce; call 911 if life is at risk."}
        )
    try:
        lat, lon = validate_point(lat, lon)
    except GeometryError as exc:
        raise ValidationError({"location": str(exc)}) from exc
    neighborhood = locate(lat, lon)
    if neighborhood is None:
        raise ValidationError({"location": "That place is outside every neighborhood."})
    if not can(author, "participate", neighborhood):
        raise PermissionDenied(
            f"Join {neighborhood.name} (and confirm your home there) to report in it."
        )
    check_rate(
        "alert-report",
        str(author.pk),
        limit=app_settings.ALERT_REPORTS_PER_HOUR,
        period=3600,
    )
    title, body = _clean_text(title, body)
    now = timezone.now()
    polygon = circle_area(lat, lon, category.default_radius_m)
    alert = Alert(
        kind=Alert.Kind.COMMUNITY,
        category=category,
        severity=int(severity),
        title=title,
        body=body,
        body_html=render_markdown(body),
        lat=lat,
        lon=lon,
        radius_m=category.default_radius_m,
        starts_at=now,
        expires_at=now + _lifetime(category),
        author=author,
        source=source,
        last_confirmed_at=now,
    )
    _set_area(alert, polygon)
    touched = intersecting(polygon)
    if neighborhood.pk not in {n.pk for n in touched}:
        touched.append(neighborhood)
    with transaction.atomic():
        if photo is not None:
            _attach_photo(alert, photo)
        alert.save()
        alert.neighborhoods.set(touched)
        _publish_alert(alert, "alert.created")
        _notify(alert, "created")
    return alert


def _lifetime(category: AlertCategory) -> timedelta:
    hours = category.default_lifetime_hours or app_settings.ALERT_DEFAULT_LIFETIME_HOURS
    return timedelta(hours=hours)


# Changing -----------------------------------------------------------------------------------


def can_manage(user, alert: Alert) -> bool:
    """Staff manage notices of their department (supervisors: all) and every resident report."""
    if not is_city_staff(user):
        return False
    if alert.kind == Alert.Kind.COMMUNITY or is_supervisor(user):
        return True
    record = staff_record(user)
    return alert.department_id is None or (
        record is not None and record.department_id == alert.department_id
    )


def _ensure_manage(user, alert: Alert) -> None:
    if not can_manage(user, alert):
        raise PermissionDenied("Only staff of the issuing department may change this alert.")


def _locked(alert: Alert) -> Alert:
    # Lock the alert's row only: the department is a nullable (outer) join.
    return (
        Alert.objects.select_for_update(of=("self",))
        .select_related("category", "department")
        .get(pk=alert.pk)
    )


def _snapshot(alert: Alert, *, user, note: str) -> None:
    AlertRevision.objects.create(
        alert=alert,
        version=alert.version,
        title=alert.title,
        body=alert.body,
        severity=alert.severity,
        expires_at=alert.expires_at,
        edited_by=user,
        note=note[:500],
    )


def edit_alert(
    alert: Alert,
    *,
    user,
    note: str = "",
    title: str | None = None,
    body: str | None = None,
    severity: int | None = None,
    expires_at: datetime | None = None,
    system: bool = False,
) -> Alert:
    """Correct an alert; the previous version is kept and everyone who was told is told again."""
    if not system:
        _ensure_manage(user, alert)
    with transaction.atomic():
        alert = _locked(alert)
        if alert.status in (Alert.Status.RETRACTED, Alert.Status.DISMISSED):
            raise ValidationError("A retracted or dismissed alert cannot be edited.")
        new_title, new_body = _clean_text(
            alert.title if title is None else title, alert.body if body is None else body
        )
        changed = (
            new_title != alert.title
            or new_body != alert.body
            or (severity is not None and int(severity) != alert.severity)
            or (expires_at is not None and expires_at != alert.expires_at)
        )
        if not changed:
            return alert
        if expires_at is not None and expires_at <= alert.starts_at:
            raise ValidationError({"expires_at": "The expiry must come after the start."})
        _snapshot(alert, user=user, note=note or "Corrected")
        alert.title, alert.body = new_title, new_body
        alert.body_html = render_markdown(new_body)
        if severity is not None:
            alert.severity = int(severity)
        if expires_at is not None:
            alert.expires_at = expires_at
            if alert.status == Alert.Status.EXPIRED and expires_at > timezone.now():
                alert.status = Alert.Status.ACTIVE
        alert.version += 1
        alert.status_note = note[:500] if note else alert.status_note
        alert.save()
        _publish_alert(alert, "alert.updated")
        _notify(alert, "updated")
    return alert


def retract_alert(alert: Alert, *, user, reason: str, system: bool = False) -> Alert:
    """Withdraw an official notice: it stays visible, marked retracted, and everyone is told."""
    if alert.kind != Alert.Kind.OFFICIAL:
        raise ValidationError("Resident reports are resolved or dismissed, not retracted.")
    if not system:
        _ensure_manage(user, alert)
    reason = " ".join((reason or "").split())
    if not reason:
        raise ValidationError({"reason": "Say why the notice is retracted."})
    with transaction.atomic():
        alert = _locked(alert)
        if alert.status == Alert.Status.RETRACTED:
            return alert
        _snapshot(alert, user=user, note=f"Retracted: {reason}")
        alert.status = Alert.Status.RETRACTED
        alert.status_note = reason[:500]
        alert.closed_at, alert.closed_by = timezone.now(), user
        alert.version += 1
        alert.save()
        _publish_alert(alert, "alert.retracted")
        _notify(alert, "retracted")
    return alert


def _close(alert: Alert, *, user, status: str, note: str, event_type: str) -> Alert:
    with transaction.atomic():
        alert = _locked(alert)
        if alert.status != Alert.Status.ACTIVE:
            raise ValidationError("Only an active alert can be closed.")
        alert.status = status
        alert.status_note = note[:500]
        alert.closed_at, alert.closed_by = timezone.now(), user
        alert.save()
        _publish_alert(alert, event_type)
    return alert


def resolve_alert(alert: Alert, *, user, note: str = "") -> Alert:
    """Staff (or the report's author) say it is over."""
    if not (can_manage(user, alert) or (alert.author_id and alert.author_id == user.pk)):
        raise PermissionDenied("Only staff or the author may resolve this alert.")
    return _close(
        alert,
        user=user,
        status=Alert.Status.RESOLVED,
        note=note or "Resolved",
        event_type="alert.updated",
    )


def dismiss_alert(alert: Alert, *, user, note: str = "") -> Alert:
    """Staff take down a report that was wrong or abusive; it leaves every feed."""
    if alert.kind != Alert.Kind.COMMUNITY:
        raise ValidationError("Official notices are retracted, not dismissed.")
    _ensure_manage(user, alert)
    with transaction.atomic():
        alert = _close(
            alert,
            user=user,
            status=Alert.Status.DISMISSED,
            note=note or "Dismissed by the city",
            event_type="alert.retracted",
        )
        _forget_dismissed(alert)
    return alert


def _forget_dismissed(alert: Alert) -> None:
    """A dismissed report's text leaves the event log (so no client replays it), the inboxes
    and every message not sent yet."""
    url = alert.get_absolute_url()
    removed = {
        "id": alert.pk,
        "kind": alert.kind,
        "status": Alert.Status.DISMISSED,
        "is_active": False,
        "url": url,
    }
    topics = [f"neighborhood:{slug}" for slug in alert.neighborhoods.values_list("slug", flat=True)]
    topics.append(f"alert:{alert.pk}")
    Event.objects.filter(topic__in=topics, data__id=alert.pk).exclude(
        data__status=Alert.Status.DISMISSED
    ).update(data=removed)
    Event.objects.filter(topic__startswith="user:", data__url=url).update(
        data={"kind": "alert.removed", "title": "A report that was removed", "url": url}
    )
    notifications = Notification.objects.filter(alert=alert)
    Delivery.objects.filter(
        notification__in=notifications,
        status__in=[Delivery.Status.PENDING, Delivery.Status.DIGEST],
    ).update(status=Delivery.Status.SKIPPED, last_error="The report was removed by the city.")
    notifications.update(title="A report that was removed by the city", body="")


def verify_alert(alert: Alert, *, user) -> Alert:
    """Staff confirm a resident report; it shows as verified by the city."""
    if alert.kind != Alert.Kind.COMMUNITY:
        raise ValidationError("Only resident reports are verified.")
    _ensure_manage(user, alert)
    with transaction.atomic():
        alert = _locked(alert)
        if alert.verified_at:
            return alert
        alert.verified_at, alert.verified_by = timezone.now(), user
        alert.save(update_fields=["verified_at", "verified_by", "updated_at"])
        _publish_alert(alert, "alert.updated")
        _notify(alert, "verified")
    return alert


def confirm_alert(alert: Alert, *, user, still_there: bool = True) -> Alert:
    """A member says a resident report is still there (or gone).

    Distinct verified members of the alert's neighborhoods count towards corroboration; each
    confirmation keeps the report alive for its category's lifetime. Enough "gone" answers
    resolve it. Answering again changes one's answer; it is never counted twice.
    """
    if alert.kind != Alert.Kind.COMMUNITY:
        raise ValidationError("Official notices are not confirmed by residents.")
    if alert.author_id == getattr(user, "pk", None):
        raise ValidationError("You reported this; ask a neighbour to confirm it.")
    neighborhoods = list(alert.neighborhoods.all())
    member_of = [n for n in neighborhoods if membership_of(user, n) is not None]
    if not member_of and not is_city_staff(user):
        raise PermissionDenied("Join the neighborhood to confirm reports in it.")
    verified = any(residency_level(user, n) >= VerificationLevel.VERIFIED for n in member_of)
    check_rate(
        "alert-confirm",
        str(user.pk),
        limit=app_settings.ALERT_CONFIRMATIONS_PER_MINUTE,
        period=60,
    )
    now = timezone.now()
    with transaction.atomic():
        alert = _locked(alert)
        if not alert.is_active(now):
            raise ValidationError("This report is no longer active.")
        AlertConfirmation.objects.update_or_create(
            alert=alert,
            user=user,
            defaults={"still_there": still_there, "verified_member": verified},
        )
        answers = AlertConfirmation.objects.filter(alert=alert)
        alert.confirmations = answers.filter(still_there=True, verified_member=True).count()
        # Only verified members count either way, so new accounts cannot vote a report away.
        alert.gone_reports = answers.filter(still_there=False, verified_member=True).count()
        newly_corroborated = False
        if still_there:
            alert.last_confirmed_at = now
            alert.expires_at = max(alert.expires_at or now, now + _lifetime(alert.category))
        if (
            alert.corroborated_at is None
            and alert.confirmations >= app_settings.ALERT_CORROBORATION_THRESHOLD
        ):
            alert.corroborated_at = now
            newly_corroborated = True
        event_type = "alert.updated"
        if alert.gone_reports >= app_settings.ALERT_GONE_THRESHOLD and (
            alert.gone_reports > alert.confirmations
        ):
            alert.status = Alert.Status.RESOLVED
            alert.status_note = "Neighbours report it is gone."
            alert.closed_at = now
        alert.save()
        _publish_alert(alert, event_type)
        if newly_corroborated:
            _notify(alert, "corroborated")
    return alert


def expire_alerts(now: datetime | None = None) -> int:
    """Mark alerts past their expiry as expired and tell subscribers; return how many."""
    now = now or timezone.now()
    count = 0
    due = Alert.objects.filter(status=Alert.Status.ACTIVE, expires_at__lte=now).values_list(
        "pk", flat=True
    )
    for pk in list(due[:1000]):
        with transaction.atomic():
            updated = Alert.objects.filter(
                pk=pk, status=Alert.Status.ACTIVE, expires_at__lte=now
            ).update(status=Alert.Status.EXPIRED, updated_at=now)
            if updated:
                _publish_alert(Alert(pk=pk), "alert.expired")
                count += 1
    return count


# Reading ------------------------------------------------------------------------------------


def feed(
    *,
    neighborhoods: Iterable[Neighborhood] | None = None,
    kind: str | None = None,
    category: str | None = None,
    now: datetime | None = None,
):
    """Active alerts, most severe first, then newest; for some neighborhoods or the whole city."""
    qs = Alert.objects.active(now).select_related("category", "department")
    if neighborhoods is not None:
        qs = qs.filter(neighborhoods__in=list(neighborhoods)).distinct()
    if kind:
        qs = qs.filter(kind=kind)
    if category:
        qs = qs.filter(category__slug=category)
    return qs.feed_order()


def my_neighborhoods(user) -> list[Neighborhood]:
    if not getattr(user, "is_authenticated", False):
        return []
    return list(
        Neighborhood.objects.filter(memberships__user=user)
        .order_by("name")
        .only("id", "name", "slug")
    )


def visible_to(user, alert: Alert) -> bool:
    """Dismissed reports are seen only by staff and their author."""
    if alert.status != Alert.Status.DISMISSED:
        return True
    return is_city_staff(user) or (alert.author_id is not None and alert.author_id == user.pk)


def with_neighborhood_slugs(alerts: list[Alert]) -> list[Alert]:
    """Attach neighborhood slugs to many alerts with one query (for payloads in lists)."""
    through = Alert.neighborhoods.through
    ids = [a.pk for a in alerts]
    slugs: dict[int, list[str]] = {pk: [] for pk in ids}
    for alert_id, slug in through.objects.filter(alert_id__in=ids).values_list(
        "alert_id", "neighborhood__slug"
    ):
        slugs[alert_id].append(slug)
    for alert in alerts:
        alert._neighborhood_slugs = sorted(slugs[alert.pk])
    return alerts


__all__ = [
    "alert_payload",
    "can_manage",
    "circle_area",
    "confirm_alert",
    "create_official_notice",
    "create_resident_report",
    "dismiss_alert",
    "edit_alert",
    "expire_alerts",
    "feed",
    "my_neighborhoods",
    "resolve_alert",
    "retract_alert",
    "verify_alert",
    "visible_to",
    "with_neighborhood_slugs",
]
