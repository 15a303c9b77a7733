"""Business rules of the forums. Views, the API, the admin and commands call these.

Every function that changes something checks permissions itself, writes in one transaction, and
announces the change on the live layer (``thread:<id>`` and ``neighborhood:<slug>``) only once
the transaction commits.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from difflib import SequenceMatcher

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone
from shapely import Point
from shapely.geometry import shape

from alerts import live
from alerts.models import Severity
from alerts.notify import notify_many
from neighborhoods.geometry import GeometryError, validate_point
from neighborhoods.images import process_photo
from neighborhoods.models import Membership, Neighborhood, Organization, OrganizationMembership
from neighborhoods.permissions import (
    can,
    is_authenticated,
    is_city_staff,
    membership_of,
    org_role,
    staff_record,
)
from neighborhoods.ratelimit import check_rate
from neighborhoods.text import plain_text, render_markdown

from . import hooks
from .conf import app_settings
from .models import (
    Appeal,
    Cosign,
    Flag,
    Follow,
    ForumCategory,
    ModerationAction,
    Reply,
    Revision,
    Suspension,
    Thread,
    ThreadPhoto,
    Visibility,
    Vote,
    hot_score,
)

METERS_PER_DEGREE = 111_320.0
MAX_TAGS = 5
MAX_MENTIONS = 10
TITLE_MAX = 140
BODY_MAX = 20_000
REPLY_MAX = 10_000
# Addresses behind one NAT share a limit this many times an account's.
IP_FACTOR = 5

_CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_TAG = re.compile(r"^[a-z0-9][a-z0-9-]{0,29}$")
_MENTION = re.compile(r"(?<![\w@/.])@([A-Za-z0-9_][A-Za-z0-9_.+-]{1,29}[A-Za-z0-9_])")


# Who may do what ----------------------------------------------------------------------------


def suspension_of(user, neighborhood: Neighborhood) -> Suspension | None:
    """The suspension keeping ``user`` from posting in ``neighborhood`` now, if any."""
    if not is_authenticated(user):
        return None
    return (
        Suspension.objects.filter(user=user, neighborhood=neighborhood, until__gt=timezone.now())
        .order_by("-until")
        .first()
    )


def can_moderate(user, neighborhood: Neighborhood) -> bool:
    return can(user, "moderate", neighborhood)


def posting_refusal(user, neighborhood: Neighborhood) -> str | None:
    """Why ``user`` may not post, reply or vote in ``neighborhood`` (``None`` when they may).

    Members at the neighborhood's required verification level may; city staff may reply
    anywhere (see :func:`reply_refusal`). A suspension stops everyone but staff.
    """
    if not is_authenticated(user):
        return "Sign in to take part in the discussion."
    suspension = suspension_of(user, neighborhood)
    if suspension is not None:
        until = timezone.localtime(suspension.until).strftime("%-d %B %Y, %H:%M")
        return f"You are suspended from {neighborhood.name} until {until}: {suspension.reason}"
    if can(user, "participate", neighborhood):
        return None
    if membership_of(user, neighborhood) is None:
        return f"Join {neighborhood.name} to take part in its discussions."
    return (
        f"{neighborhood.name} asks members to reach the level "
        f"“{neighborhood.get_required_level_display().lower()}” before posting."
    )


def reply_refusal(user, thread: Thread) -> str | None:
    if thread.is_locked and not can_moderate(user, thread.neighborhood):
        return "This thread is locked; no new replies."
    if is_city_staff(user) and suspension_of(user, thread.neighborhood) is None:
        return None
    return posting_refusal(user, thread.neighborhood)


def _ensure_posting(user, neighborhood: Neighborhood) -> None:
    refusal = posting_refusal(user, neighborhood)
    if refusal:
        raise PermissionDenied(refusal)


def can_read_thread(user, thread: Thread) -> bool:
    """Listed threads are public; hidden or deleted ones only for their author and moderators."""
    if thread.is_listed or thread.merged_into_id:
        return True
    if thread.deleted_at is not None:
        return can_moderate(user, thread.neighborhood)
    return (is_authenticated(user) and thread.author_id == user.pk) or can_moderate(
        user, thread.neighborhood
    )


def can_edit(user, obj: Thread | Reply) -> bool:
    if not is_authenticated(user) or obj.deleted_at is not None:
        return False
    neighborhood = obj.neighborhood if isinstance(obj, Thread) else obj.thread.neighborhood
    if obj.author_id == user.pk and suspension_of(user, neighborhood) is None:
        return True
    return can_moderate(user, neighborhood)


def is_new_member(user) -> bool:
    """Accounts younger than ``FORUM_NEW_MEMBER_HOURS`` (staff never are)."""
    if is_city_staff(user):
        return False
    joined = getattr(user, "date_joined", None)
    hours = app_settings.FORUM_NEW_MEMBER_HOURS
    return bool(joined and hours and timezone.now() - joined < timedelta(hours=hours))


def _rate(action: str, user, ip: str, limit_period: Sequence[int]) -> None:
    limit, period = int(limit_period[0]), int(limit_period[1])
    check_rate(f"forum-{action}", f"u{user.pk}", limit=limit, period=period)
    if ip:
        check_rate(f"forum-{action}", f"ip{ip}", limit=limit * IP_FACTOR, period=period)


# Text ---------------------------------------------------------------------------------------


def _clean_title(title: str) -> str:
    title = " ".join(_CONTROL_CHARACTERS.sub("", title or "").split())
    if len(title) < 5:
        raise ValidationError({"title": "Give the thread a title of at least 5 characters."})
    if len(title) > TITLE_MAX:
        raise ValidationError({"title": f"Keep the title to {TITLE_MAX} characters."})
    return title


def _clean_body(body: str, *, field: str, limit: int, user, required: bool = True) -> str:
    body = _CONTROL_CHARACTERS.sub("", body or "").strip()
    if required and not body:
        raise ValidationError({field: "Write something."})
    if len(body) > limit:
        raise ValidationError({field: f"Keep it to {limit:,} characters."})
    if is_new_member(user) and "<a " in render_markdown(body):
        hours = app_settings.FORUM_NEW_MEMBER_HOURS
        raise ValidationError(
            {field: f"New accounts cannot post links in their first {hours} hours."}
        )
    return body


def clean_tags(tags: Iterable[str] | str) -> list[str]:
    """Lower-case slugs, at most five, each up to 30 characters; raises for anything else."""
    if isinstance(tags, str):
        tags = re.split(r"[,\s]+", tags)
    cleaned: list[str] = []
    for raw in tags:
        tag = unicodedata.normalize("NFKC", str(raw)).strip().lower().lstrip("#")
        if not tag:
            continue
        tag = re.sub(r"[\s_]+", "-", tag)
        if not _TAG.match(tag):
            raise ValidationError(
                {"tags": f"“{tag[:30]}” is not a tag: use letters, digits and dashes (up to 30)."}
            )
        if tag not in cleaned:
            cleaned.append(tag)
    if len(cleaned) > MAX_TAGS:
        raise ValidationError({"tags": f"Use at most {MAX_TAGS} tags."})
    return cleaned


def _local_metres(lat0: float):
    scale_x = METERS_PER_DEGREE * math.cos(math.radians(lat0))

    def project(coords):
        coords = coords.copy()
        coords[:, 0] *= scale_x
        coords[:, 1] *= METERS_PER_DEGREE
        return coords

    return project


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6_371_000 * math.asin(min(1.0, math.sqrt(a)))


def distance_to_neighborhood_m(neighborhood: Neighborhood, lat: float, lon: float) -> float:
    """0 inside the boundary, else the distance in metres to its edge."""
    import shapely

    project = _local_metres(lat)
    area = shapely.transform(shape(neighborhood.boundary), project)
    point = shapely.transform(Point(lon, lat), project)
    return float(area.distance(point))


def _clean_pin(neighborhood: Neighborhood, lat, lon) -> tuple[float | None, float | None]:
    if lat in (None, "") and lon in (None, ""):
        return None, None
    try:
        lat_f, lon_f = validate_point(lat, lon)
    except GeometryError as exc:
        raise ValidationError({"location": str(exc)}) from exc
    tolerance = app_settings.FORUM_PIN_TOLERANCE_M
    if distance_to_neighborhood_m(neighborhood, lat_f, lon_f) > tolerance:
        raise ValidationError(
            {"location": f"The pin must be in {neighborhood.name} or within {tolerance:,} m of it."}
        )
    return round(lat_f, 6), round(lon_f, 6)


def mentioned_users(text: str, *, exclude: Iterable[int] = ()) -> list:
    """People named as ``@username`` in ``text`` (case-insensitive; at most ten)."""
    # Quoted text and code are not mentions.
    text = re.sub(r"```.*?```|`[^`]*`", " ", text or "", flags=re.S)
    text = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith(">"))
    names = []
    for name in _MENTION.findall(text):
        if name.lower() not in names:
            names.append(name.lower())
    if not names:
        return []
    names = names[:MAX_MENTIONS]
    query = Q()
    for name in names:
        query |= Q(username__iexact=name)
    User = get_user_model()
    return list(User.objects.filter(query, is_active=True).exclude(pk__in=list(exclude)))


# Payloads (the API and the live layer share them) ---------------------------------------------


def author_name(user) -> str:
    if user is None:
        return "Former member"
    profile = getattr(user, "engagement_profile", None)
    if profile is not None and profile.display_name:
        return profile.display_name
    return f"Neighbor {user.pk}"


def thread_payload(thread: Thread) -> dict:
    """A thread as the API and live events show it (never the author's account details)."""
    tags = getattr(thread, "_tag_names", None)
    if tags is None:
        tags = sorted(t.name for t in thread.tags.all())
    return {
        "id": thread.pk,
        "title": thread.title,
        "url": thread.get_absolute_url(),
        "neighborhood": thread.neighborhood.slug,
        "category": thread.category.slug,
        "category_name": thread.category.name,
        "tags": tags,
        "author": author_name(thread.author),
        "excerpt": plain_text(thread.body, 240),
        "vote_count": thread.vote_count,
        "reply_count": thread.reply_count,
        "hot": thread.hot,
        "lat": thread.lat,
        "lon": thread.lon,
        "is_locked": thread.is_locked,
        "is_pinned": thread.is_pinned,
        "has_official_reply": thread.has_official_reply,
        "answer_id": thread.answer_id,
        "created_at": thread.created_at.isoformat(),
        "last_activity_at": thread.last_activity_at.isoformat(),
        "edited_at": thread.edited_at.isoformat() if thread.edited_at else None,
    }


def reply_payload(reply: Reply) -> dict:
    """A reply as shown to everyone; hidden or deleted ones keep their place without their text."""
    shown = reply.deleted_at is None and reply.visibility == Visibility.VISIBLE
    quote = None
    if reply.quote_id and shown:
        quoted = reply.quote
        quote_shown = quoted.deleted_at is None and quoted.visibility == Visibility.VISIBLE
        quote = {
            "id": quoted.pk,
            "author": author_name(quoted.author) if quote_shown else "",
            "excerpt": plain_text(quoted.body, 200) if quote_shown else "",
            "url": f"#reply-{quoted.pk}",
        }
    return {
        "id": reply.pk,
        "thread": reply.thread_id,
        "author": author_name(reply.author) if shown else "",
        "body_html": reply.body_html if shown else "",
        "state": "deleted"
        if reply.deleted_at
        else ("visible" if reply.visibility == Visibility.VISIBLE else "hidden"),
        "quote": quote,
        "is_official": reply.is_official and shown,
        "department": reply.department.name if reply.department_id and shown else "",
        "vote_count": reply.vote_count,
        "created_at": reply.created_at.isoformat(),
        "edited_at": reply.edited_at.isoformat() if reply.edited_at else None,
    }


def _reply_with_relations(reply_id: int) -> Reply:
    return Reply.objects.select_related(
        "author__engagement_profile", "department", "quote__author__engagement_profile"
    ).get(pk=reply_id)


def _thread_with_relations(thread_id: int) -> Thread:
    return Thread.objects.select_related(
        "neighborhood", "category", "author__engagement_profile"
    ).get(pk=thread_id)


def _publish_thread(thread: Thread, event_type: str, *, neighborhood: bool = True) -> None:
    thread = _thread_with_relations(thread.pk)
    data = thread_payload(thread) if thread.is_listed else {"id": thread.pk, "removed": True}
    items = [(f"thread:{thread.pk}", event_type, data)]
    if neighborhood:
        items.append((f"neighborhood:{thread.neighborhood.slug}", event_type, data))
    live.publish_many(items)


def _publish_counts(thread_id: int, slug: str, *, reply_id: int | None = None) -> None:
    row = Thread.objects.filter(pk=thread_id).values("vote_count", "reply_count").get()
    data = {"id": thread_id, **row}
    if reply_id is not None:
        data["reply"] = {
            "id": reply_id,
            "vote_count": Reply.objects.filter(pk=reply_id).values_list("vote_count", flat=True)[0],
        }
    live.publish_many(
        [
            (f"thread:{thread_id}", "thread.counts", data),
            (f"neighborhood:{slug}", "thread.counts", data),
        ]
    )


def _log(
    actor,
    action: str,
    neighborhood: Neighborhood | None,
    *,
    thread: Thread | None = None,
    reply: Reply | None = None,
    subject=None,
    reason: str = "",
    **data,
) -> ModerationAction:
    return ModerationAction.objects.create(
        actor=actor if is_authenticated(actor) else None,
        action=action,
        neighborhood=neighborhood,
        thread=thread,
        reply=reply,
        subject=subject,
        reason=(reason or "")[:500],
        data=data,
    )


def _touch(thread_id: int, now: datetime | None = None) -> None:
    """Recount visible replies and recompute the hot score (the row is locked by the caller)."""
    row = Thread.objects.select_for_update().get(pk=thread_id)
    replies = row.replies.filter(visibility=Visibility.VISIBLE, deleted_at__isnull=True)
    row.reply_count = replies.count()
    row.has_official_reply = replies.filter(is_official=True).exists()
    row.refresh_hot()
    fields = {"reply_count": row.reply_count, "hot": row.hot}
    fields["has_official_reply"] = row.has_official_reply
    if now is not None:
        fields["last_activity_at"] = now
    Thread.objects.filter(pk=thread_id).update(**fields)


def _reindex(thread: Thread) -> None:
    """Tags are saved after the thread, so index it again once they are there."""
    from wagtail.search.index import insert_or_update_object

    insert_or_update_object(thread)


# Threads ------------------------------------------------------------------------------------


@dataclass
class PhotoOffer:
    photo_id: int
    lat: float
    lon: float


def _check_photo_allowance(photos: Sequence, *, user, start: int = 0) -> None:
    if not photos:
        return
    if is_new_member(user):
        hours = app_settings.FORUM_NEW_MEMBER_HOURS
        raise ValidationError(
            {"photos": f"New accounts cannot add photos in their first {hours} hours."}
        )
    limit = app_settings.FORUM_MAX_PHOTOS
    if start + len(photos) > limit:
        raise ValidationError({"photos": f"Add at most {limit} photos."})


def _add_photos(thread: Thread, photos: Sequence, *, user, start: int = 0) -> None:
    if not photos:
        return
    _check_photo_allowance(photos, user=user, start=start)
    for position, upload in enumerate(photos, start=start):
        try:
            processed = process_photo(
                upload,
                max_bytes=app_settings.FORUM_PHOTO_MAX_BYTES,
                max_side=app_settings.FORUM_PHOTO_MAX_SIDE,
            )
        except ValidationError as exc:
            name = getattr(upload, "name", "") or f"photo {position + 1}"
            raise ValidationError({"photos": [f"{name}: {m}" for m in exc.messages]}) from exc
        photo = ThreadPhoto(
            thread=thread,
            width=processed.width,
            height=processed.height,
            position=position,
            offered_lat=processed.gps[0] if processed.gps else None,
            offered_lon=processed.gps[1] if processed.gps else None,
        )
        photo.image.save(processed.file.name, processed.file, save=False)
        photo.save()


def photo_location_offers(thread: Thread, user) -> list[PhotoOffer]:
    """Positions found in the thread's photos, for its author only, while it has no pin."""
    if not is_authenticated(user) or thread.author_id != user.pk or thread.lat is not None:
        return []
    offers = []
    for photo in thread.photos.all():
        if photo.offered_lat is None or photo.offered_lon is None:
            continue
        try:
            _clean_pin(thread.neighborhood, photo.offered_lat, photo.offered_lon)
        except ValidationError:
            continue  # taken elsewhere: not a useful pin for this neighborhood
        offers.append(PhotoOffer(photo.pk, photo.offered_lat, photo.offered_lon))
    return offers


def use_photo_location(thread: Thread, *, user, photo_id: int) -> Thread:
    """The author accepts the position found in one of their photos as the pin."""
    offer = next((o for o in photo_location_offers(thread, user) if o.photo_id == photo_id), None)
    if offer is None:
        raise ValidationError({"location": "That photo has no position to use here."})
    Thread.objects.filter(pk=thread.pk).update(lat=offer.lat, lon=offer.lon)
    ThreadPhoto.objects.filter(thread=thread).update(offered_lat=None, offered_lon=None)
    thread.refresh_from_db()
    _publish_thread(thread, "thread.updated")
    return thread


def _check_honeypot(honeypot: str) -> None:
    if honeypot:
        # Only robots fill the hidden field; answer as for any invalid form.
        raise ValidationError({"__all__": "The form could not be accepted. Please try again."})


def create_thread(
    *,
    author,
    neighborhood: Neighborhood,
    title: str,
    body: str,
    category: ForumCategory | None = None,
    tags: Iterable[str] | str = (),
    lat=None,
    lon=None,
    photos: Sequence = (),
    ip: str = "",
    honeypot: str = "",
) -> Thread:
    """Open a thread; the author follows it. Raises ``ValidationError`` with field names."""
    _check_honeypot(honeypot)
    _ensure_posting(author, neighborhood)
    errors: dict[str, list[str]] = {}
    cleaned: dict = {}
    for name, check in (
        ("title", lambda: _clean_title(title)),
        ("body", lambda: _clean_body(body, field="body", limit=BODY_MAX, user=author)),
        ("tags", lambda: clean_tags(tags)),
        ("location", lambda: _clean_pin(neighborhood, lat, lon)),
    ):
        try:
            cleaned[name] = check()
        except ValidationError as exc:
            for field, messages in exc.message_dict.items():
                errors.setdefault(field, []).extend(messages)
    if category is None:
        errors.setdefault("category", []).append("Choose a category.")
    try:
        _check_photo_allowance(photos, user=author)
    except ValidationError as exc:
        errors.setdefault("photos", []).extend(exc.message_dict["photos"])
    if errors:
        raise ValidationError(errors)
    _rate("thread", author, ip, app_settings.FORUM_THREAD_RATE)
    if is_new_member(author):
        check_rate(
            "forum-thread-new",
            f"u{author.pk}",
            limit=app_settings.FORUM_NEW_MEMBER_THREADS_PER_DAY,
            period=86_400,
        )
    now = timezone.now()
    pin_lat, pin_lon = cleaned["location"]
    with transaction.atomic():
        thread = Thread(
            neighborhood=neighborhood,
            author=author,
            category=category,
            title=cleaned["title"],
            body=cleaned["body"],
            body_html=render_markdown(cleaned["body"]),
            lat=pin_lat,
            lon=pin_lon,
            created_at=now,
            last_activity_at=now,
        )
        thread.refresh_hot()
        thread.save()
        if cleaned["tags"]:
            thread.tags.set(cleaned["tags"])
            _reindex(thread)
        _add_photos(thread, photos, user=author)
        Follow.objects.create(user=author, thread=thread)
        _publish_thread(thread, "thread.created")
        _notify_mentions(thread, None, author, cleaned["body"])
    return thread


def edit_thread(
    thread: Thread,
    *,
    user,
    title: str | None = None,
    body: str | None = None,
    tags: Iterable[str] | str | None = None,
    category: ForumCategory | None = None,
    lat=None,
    lon=None,
    clear_pin: bool = False,
) -> Thread:
    """Change a thread; the earlier text is kept as a :class:`Revision` for moderators."""
    if not can_edit(user, thread):
        raise PermissionDenied("Only the author or a moderator can edit this thread.")
    if thread.is_locked and not can_moderate(user, thread.neighborhood):
        raise PermissionDenied("This thread is locked.")
    new_title = _clean_title(title) if title is not None else thread.title
    new_body = (
        _clean_body(body, field="body", limit=BODY_MAX, user=user)
        if body is not None
        else thread.body
    )
    new_tags = clean_tags(tags) if tags is not None else None
    if lat is not None or lon is not None:
        pin = _clean_pin(thread.neighborhood, lat, lon)
    elif clear_pin:
        pin = (None, None)
    else:
        pin = (thread.lat, thread.lon)
    with transaction.atomic():
        thread = Thread.objects.select_for_update().get(pk=thread.pk)
        text_changed = new_title != thread.title or new_body != thread.body
        if text_changed:
            Revision.objects.create(
                thread=thread, title=thread.title, body=thread.body, edited_by=user
            )
            thread.edited_at = timezone.now()
        thread.title, thread.body = new_title, new_body
        thread.body_html = render_markdown(new_body)
        thread.lat, thread.lon = pin
        if category is not None:
            thread.category = category
        thread.save()
        if new_tags is not None:
            thread.tags.set(new_tags, clear=True)
            _reindex(thread)
        if text_changed and user.pk != thread.author_id:
            _log(user, "edit", thread.neighborhood, thread=thread, subject=thread.author)
        _publish_thread(thread, "thread.updated")
    return thread


def delete_thread(thread: Thread, *, user, reason: str = "") -> Thread:
    """Soft delete by the author or a moderator: gone from lists, its URL says so."""
    if not can_edit(user, thread):
        raise PermissionDenied("Only the author or a moderator can delete this thread.")
    with transaction.atomic():
        Thread.objects.filter(pk=thread.pk).update(deleted_at=timezone.now())
        thread.refresh_from_db()
        if user.pk != thread.author_id:
            _log(
                user,
                "delete",
                thread.neighborhood,
                thread=thread,
                subject=thread.author,
                reason=reason,
            )
        _publish_thread(thread, "thread.removed")
    return thread


# Replies ------------------------------------------------------------------------------------


def create_reply(
    thread: Thread,
    *,
    author,
    body: str,
    quote: Reply | int | None = None,
    ip: str = "",
    honeypot: str = "",
) -> Reply:
    """Reply to a thread. City staff reply in an official voice with their department."""
    _check_honeypot(honeypot)
    if not thread.is_listed:
        raise PermissionDenied("This thread is not open for replies.")
    refusal = reply_refusal(author, thread)
    if refusal:
        raise PermissionDenied(refusal)
    body = _clean_body(body, field="body", limit=REPLY_MAX, user=author)
    quoted = None
    if quote not in (None, ""):
        quote_id = quote.pk if isinstance(quote, Reply) else quote
        try:
            quoted = Reply.objects.get(pk=int(quote_id), thread=thread, deleted_at__isnull=True)
        except (Reply.DoesNotExist, TypeError, ValueError):
            raise ValidationError({"quote": "You can only quote a reply in this thread."}) from None
    _rate("reply", author, ip, app_settings.FORUM_REPLY_RATE)
    record = staff_record(author)
    official = is_city_staff(author)
    now = timezone.now()
    with transaction.atomic():
        reply = Reply.objects.create(
            thread=thread,
            author=author,
            body=body,
            body_html=render_markdown(body),
            quote=quoted,
            is_official=official,
            department=record.department if record else None,
            created_at=now,
        )
        _touch(thread.pk, now)
        Follow.objects.get_or_create(user=author, thread=thread)
        reply = _reply_with_relations(reply.pk)
        live.publish(f"thread:{thread.pk}", "reply.created", reply_payload(reply))
        _publish_counts(thread.pk, thread.neighborhood.slug)
        _notify_reply(thread, reply)
    return reply


def edit_reply(reply: Reply, *, user, body: str) -> Reply:
    if not can_edit(user, reply):
        raise PermissionDenied("Only the author or a moderator can edit this reply.")
    if reply.thread.is_locked and not can_moderate(user, reply.thread.neighborhood):
        raise PermissionDenied("This thread is locked.")
    body = _clean_body(body, field="body", limit=REPLY_MAX, user=user)
    with transaction.atomic():
        reply = Reply.objects.select_for_update().get(pk=reply.pk)
        if body != reply.body:
            Revision.objects.create(reply=reply, body=reply.body, edited_by=user)
            reply.body, reply.body_html = body, render_markdown(body)
            reply.edited_at = timezone.now()
            reply.save(update_fields=["body", "body_html", "edited_at"])
            if user.pk != reply.author_id:
                _log(
                    user,
                    "edit",
                    reply.thread.neighborhood,
                    thread=reply.thread,
                    reply=reply,
                    subject=reply.author,
                )
        reply = _reply_with_relations(reply.pk)
        live.publish(f"thread:{reply.thread_id}", "reply.updated", reply_payload(reply))
    return reply


def delete_reply(reply: Reply, *, user, reason: str = "") -> Reply:
    """Soft delete: the reply keeps its place as "deleted" so the thread still reads."""
    if not can_edit(user, reply):
        raise PermissionDenied("Only the author or a moderator can delete this reply.")
    thread = reply.thread
    with transaction.atomic():
        Reply.objects.filter(pk=reply.pk).update(deleted_at=timezone.now())
        if thread.answer_id == reply.pk:
            Thread.objects.filter(pk=thread.pk).update(answer=None)
        _touch(thread.pk)
        if user.pk != reply.author_id:
            _log(
                user,
                "delete",
                thread.neighborhood,
                thread=thread,
                reply=reply,
                subject=reply.author,
                reason=reason,
            )
        reply = _reply_with_relations(reply.pk)
        live.publish(f"thread:{thread.pk}", "reply.removed", reply_payload(reply))
        _publish_counts(thread.pk, thread.neighborhood.slug)
    return reply


def replies_of(thread: Thread) -> QuerySet[Reply]:
    """Every reply in order (hidden and deleted ones as placeholders), in a constant few queries."""
    return thread.replies.select_related(
        "author__engagement_profile", "department", "quote__author__engagement_profile"
    ).order_by("created_at", "id")


# Support ------------------------------------------------------------------------------------


def _vote_target(thread: Thread | None, reply: Reply | None) -> tuple[Thread, Reply | None]:
    if (thread is None) == (reply is None):
        raise ValueError("vote for a thread or a reply")
    if reply is not None:
        return reply.thread, reply
    return thread, None


def _ensure_can_vote(user, thread: Thread, reply: Reply | None) -> None:
    if not thread.is_listed:
        raise PermissionDenied("This thread is not open for support.")
    if thread.is_locked:
        raise PermissionDenied("This thread is locked.")
    if reply is not None and (reply.deleted_at or reply.visibility != Visibility.VISIBLE):
        raise PermissionDenied("This reply is not open for support.")
    refusal = posting_refusal(user, thread.neighborhood)
    if refusal:
        raise PermissionDenied(refusal)


def _apply_vote_delta(thread: Thread, reply: Reply | None, delta: int) -> int:
    """Change the stored count by ``delta`` atomically; return the new count."""
    if reply is not None:
        Reply.objects.filter(pk=reply.pk).update(vote_count=F("vote_count") + delta)
        return Reply.objects.filter(pk=reply.pk).values_list("vote_count", flat=True)[0]
    Thread.objects.filter(pk=thread.pk).update(vote_count=F("vote_count") + delta)
    # The UPDATE holds the row lock until commit, so this read and the hot score are exact.
    row = Thread.objects.filter(pk=thread.pk).values("vote_count", "reply_count", "created_at")[0]
    hot = hot_score(row["vote_count"], row["reply_count"], row["created_at"])
    Thread.objects.filter(pk=thread.pk).update(hot=hot)
    return row["vote_count"]


def vote(user, *, thread: Thread | None = None, reply: Reply | None = None, ip: str = "") -> int:
    """Support a thread or reply. Idempotent: a second vote changes nothing. Returns the count."""
    thread, reply = _vote_target(thread, reply)
    _ensure_can_vote(user, thread, reply)
    _rate("vote", user, ip, app_settings.FORUM_VOTE_RATE)
    with transaction.atomic():
        try:
            with transaction.atomic():
                Vote.objects.create(user=user, thread=None if reply else thread, reply=reply)
        except IntegrityError:
            target = Reply if reply else Thread
            return target.objects.filter(pk=(reply or thread).pk).values_list(
                "vote_count", flat=True
            )[0]
        count = _apply_vote_delta(thread, reply, +1)
        _publish_counts(thread.pk, thread.neighborhood.slug, reply_id=reply.pk if reply else None)
        if reply is None:
            hooks.support_changed(thread)
    return count


def unvote(user, *, thread: Thread | None = None, reply: Reply | None = None, ip: str = "") -> int:
    """Withdraw support (idempotent). Returns the count."""
    thread, reply = _vote_target(thread, reply)
    if not is_authenticated(user):
        raise PermissionDenied("Sign in to take part in the discussion.")
    _rate("vote", user, ip, app_settings.FORUM_VOTE_RATE)
    with transaction.atomic():
        if reply is not None:
            deleted, _ = Vote.objects.filter(user=user, reply=reply).delete()
        else:
            deleted, _ = Vote.objects.filter(user=user, thread=thread, reply=None).delete()
        target = Reply if reply else Thread
        if not deleted:
            return target.objects.filter(pk=(reply or thread).pk).values_list(
                "vote_count", flat=True
            )[0]
        count = _apply_vote_delta(thread, reply, -1)
        _publish_counts(thread.pk, thread.neighborhood.slug, reply_id=reply.pk if reply else None)
        if reply is None:
            hooks.support_changed(thread)
    return count


def has_voted(user, *, thread: Thread | None = None, reply: Reply | None = None) -> bool:
    if not is_authenticated(user):
        return False
    if reply is not None:
        return Vote.objects.filter(user=user, reply=reply).exists()
    return Vote.objects.filter(user=user, thread=thread, reply=None).exists()


def supporters(thread: Thread) -> QuerySet:
    """The people who support the thread (its votes), for escalation and notifications."""
    return get_user_model().objects.filter(
        pk__in=Vote.objects.filter(thread=thread, reply=None).values("user_id")
    )


def verified_supporter_count(thread: Thread) -> int:
    """Distinct supporters who are verified residents of the thread's neighborhood."""
    return (
        Vote.objects.filter(thread=thread, reply=None)
        .filter(
            user__neighborhood_memberships__neighborhood_id=thread.neighborhood_id,
            user__neighborhood_memberships__verified_at__isnull=False,
        )
        .values("user_id")
        .distinct()
        .count()
    )


# Following ----------------------------------------------------------------------------------


def follow_state(user, thread: Thread) -> str:
    """``"following"``, ``"muted"`` or ``"none"``."""
    if not is_authenticated(user):
        return "none"
    row = Follow.objects.filter(user=user, thread=thread).values_list("muted", flat=True).first()
    if row is None:
        return "none"
    return "muted" if row else "following"


def set_follow(user, thread: Thread, state: str) -> str:
    """Follow (notified of replies), mute (never notified, not even as author) or neither."""
    if not is_authenticated(user):
        raise PermissionDenied("Sign in to follow threads.")
    if state not in ("following", "muted", "none"):
        raise ValidationError({"state": "Choose following, muted or none."})
    if not can_read_thread(user, thread):
        raise PermissionDenied("This thread is not available.")
    if state == "none":
        Follow.objects.filter(user=user, thread=thread).delete()
    else:
        Follow.objects.update_or_create(
            user=user, thread=thread, defaults={"muted": state == "muted"}
        )
    return state


# Notifications ------------------------------------------------------------------------------


def _notify_mentions(thread: Thread, reply: Reply | None, author, body: str) -> set[int]:
    people = mentioned_users(body, exclude=[author.pk])
    if not people:
        return set()
    muted = set(
        Follow.objects.filter(thread=thread, muted=True, user__in=people).values_list(
            "user_id", flat=True
        )
    )
    ids = [u.pk for u in people if u.pk not in muted]
    target = reply or thread
    url = target.get_absolute_url() if reply is None else reply.get_absolute_url()
    notify_many(
        ids,
        kind="forum_mention",
        title=f"{author_name(author)} mentioned you in “{thread.title}”",
        key=f"forum:mention:{'reply' if reply else 'thread'}:{target.pk}",
        body=plain_text(body, 280),
        url=url,
    )
    return set(ids)


def _notify_reply(thread: Thread, reply: Reply) -> None:
    author = reply.author
    mentioned = _notify_mentions(thread, reply, author, reply.body)
    followers = set(
        Follow.objects.filter(thread=thread, muted=False)
        .exclude(user=author)
        .values_list("user_id", flat=True)
    )
    quoted_author = reply.quote.author_id if reply.quote_id else None
    muted = set(Follow.objects.filter(thread=thread, muted=True).values_list("user_id", flat=True))
    if quoted_author and quoted_author != author.pk and quoted_author not in muted:
        followers.add(quoted_author)
    recipients = sorted(followers - mentioned)
    if not recipients:
        return
    if reply.is_official:
        department = reply.department.name if reply.department_id else "the city"
        title = f"Official reply from {department} in “{thread.title}”"
        severity = Severity.ADVISORY
    else:
        title = f"{author_name(author)} replied in “{thread.title}”"
        severity = Severity.INFO
    notify_many(
        recipients,
        kind="forum_reply",
        title=title,
        key=f"forum:reply:{reply.pk}",
        body=plain_text(reply.body, 280),
        url=reply.get_absolute_url(),
        severity=severity,
    )


# Official answers and co-signing --------------------------------------------------------------


def can_mark_answer(user, thread: Thread) -> bool:
    return (
        is_city_staff(user)
        or can_moderate(user, thread.neighborhood)
        or (is_authenticated(user) and thread.author_id == user.pk)
    )


def mark_answer(thread: Thread, reply: Reply | None, *, user) -> Thread:
    """Mark an official reply as the thread's answer (shown first), or clear it with ``None``."""
    if not can_mark_answer(user, thread):
        raise PermissionDenied("Only the author, a moderator or city staff can choose the answer.")
    if reply is not None:
        if reply.thread_id != thread.pk or reply.deleted_at or reply.visibility != "visible":
            raise ValidationError({"reply": "Choose a visible reply in this thread."})
        if not reply.is_official:
            raise ValidationError(
                {"reply": "Only an official reply from city staff can be the answer."}
            )
    with transaction.atomic():
        Thread.objects.filter(pk=thread.pk).update(answer=reply)
        thread.refresh_from_db()
        _publish_thread(thread, "thread.answered")
        if reply is not None:
            recipients = (
                Follow.objects.filter(thread=thread, muted=False)
                .exclude(user=user)
                .values_list("user_id", flat=True)
            )
            department = reply.department.name if reply.department_id else "the city"
            notify_many(
                list(recipients),
                kind="forum_answer",
                title=f"{department} answered “{thread.title}”",
                key=f"forum:answer:{thread.pk}:{reply.pk}",
                body=plain_text(reply.body, 280),
                url=reply.get_absolute_url(),
                severity=Severity.ADVISORY,
            )
    return thread


def cosign_organizations(user, thread: Thread) -> list[Organization]:
    """Verified organizations serving the thread's neighborhood that ``user`` administers."""
    if not is_authenticated(user):
        return []
    return list(
        Organization.objects.filter(
            verified=True,
            neighborhoods=thread.neighborhood_id,
            memberships__user=user,
            memberships__role=OrganizationMembership.Role.ADMIN,
        ).distinct()
    )


def cosign(thread: Thread, organization: Organization, *, user) -> Cosign:
    """An organization's admin puts its name to a thread (once per organization)."""
    if org_role(user, organization) != OrganizationMembership.Role.ADMIN:
        raise PermissionDenied(f"Only an admin of {organization.name} can co-sign for it.")
    if not organization.verified:
        raise PermissionDenied("Only verified organizations can co-sign.")
    if not organization.neighborhoods.filter(pk=thread.neighborhood_id).exists():
        raise PermissionDenied(f"{organization.name} does not serve {thread.neighborhood.name}.")
    if not thread.is_listed:
        raise PermissionDenied("This thread is not open.")
    with transaction.atomic():
        sign, created = Cosign.objects.get_or_create(
            thread=thread, organization=organization, defaults={"signed_by": user}
        )
        if created:
            _publish_thread(thread, "thread.cosigned", neighborhood=False)
    return sign


def withdraw_cosign(thread: Thread, organization: Organization, *, user) -> None:
    if org_role(user, organization) != OrganizationMembership.Role.ADMIN:
        raise PermissionDenied(f"Only an admin of {organization.name} can withdraw its co-sign.")
    with transaction.atomic():
        if Cosign.objects.filter(thread=thread, organization=organization).delete()[0]:
            _publish_thread(thread, "thread.cosigned", neighborhood=False)


# Flags and appeals --------------------------------------------------------------------------


def _target(thread: Thread | None, reply: Reply | None) -> tuple[Thread, Thread | Reply]:
    if (thread is None) == (reply is None):
        raise ValueError("a thread or a reply")
    return (reply.thread, reply) if reply is not None else (thread, thread)


def flag(
    user,
    *,
    thread: Thread | None = None,
    reply: Reply | None = None,
    reason: str,
    note: str = "",
    ip: str = "",
) -> Flag:
    """Flag content. Once the flags' weight reaches the threshold it is hidden pending review.

    A moderator's or city staff's flag weighs the whole threshold: it hides at once.
    """
    owner, target = _target(thread, reply)
    if not is_authenticated(user):
        raise PermissionDenied("Sign in to flag content.")
    if reason not in Flag.Reason.values:
        raise ValidationError({"reason": "Choose a reason."})
    if target.author_id == user.pk:
        raise ValidationError({"reason": "You cannot flag your own post; edit or delete it."})
    if target.deleted_at is not None:
        raise ValidationError({"reason": "This post has been deleted."})
    note = " ".join(_CONTROL_CHARACTERS.sub("", note or "").split())[:500]
    _rate("flag", user, ip, app_settings.FORUM_FLAG_RATE)
    threshold = app_settings.FORUM_FLAG_HIDE_WEIGHT
    weight = threshold if can_moderate(user, owner.neighborhood) else 1
    with transaction.atomic():
        model = Reply if reply is not None else Thread
        locked = model.objects.select_for_update().get(pk=target.pk)
        existing = Flag.objects.filter(user=user, thread=thread, reply=reply).first()
        if existing is not None:
            return existing
        record = Flag.objects.create(
            user=user,
            thread=owner if reply is None else None,
            reply=reply,
            reason=reason,
            note=note,
            weight=weight,
        )
        open_flags = Flag.objects.filter(resolved_at__isnull=True)
        open_flags = (
            open_flags.filter(reply=reply) if reply else open_flags.filter(thread=owner, reply=None)
        )
        total = sum(open_flags.values_list("weight", flat=True))
        if total >= threshold and locked.visibility == Visibility.VISIBLE:
            _hide(locked, owner, reason_label=Flag.Reason(reason).label, actor=None)
    return record


def _hide(
    target: Thread | Reply, thread: Thread, *, reason_label: str, actor, by_moderator: bool = False
) -> ModerationAction:
    """Hide pending review (flags) or hidden (a moderator); tell the author why and how to appeal."""
    visibility = Visibility.HIDDEN if by_moderator else Visibility.PENDING
    model = type(target)
    model.objects.filter(pk=target.pk).update(visibility=visibility, moderation_note=reason_label)
    target.visibility, target.moderation_note = visibility, reason_label
    is_reply = isinstance(target, Reply)
    entry = _log(
        actor,
        "hide" if by_moderator else "auto_hide",
        thread.neighborhood,
        thread=thread,
        reply=target if is_reply else None,
        subject=target.author,
        reason=reason_label,
    )
    if is_reply:
        if thread.answer_id == target.pk:
            Thread.objects.filter(pk=thread.pk).update(answer=None)
        _touch(thread.pk)
        live.publish(
            f"thread:{thread.pk}", "reply.removed", reply_payload(_reply_with_relations(target.pk))
        )
        _publish_counts(thread.pk, thread.neighborhood.slug)
    else:
        _publish_thread(thread, "thread.removed")
    if target.author_id:
        what = "reply" if is_reply else "thread"
        state = "hidden by a moderator" if by_moderator else "hidden until a moderator reviews it"
        notify_many(
            [target.author_id],
            kind="forum_moderation",
            title=f"Your {what} in “{thread.title}” is {state}",
            key=f"forum:hidden:{what}:{target.pk}:{visibility}",
            body=f"Reason: {reason_label}. You may appeal once from the {what}'s page.",
            url=target.get_absolute_url(),
            severity=Severity.ADVISORY,
        )
    return entry


def appeal(user, *, thread: Thread | None = None, reply: Reply | None = None, text: str) -> Appeal:
    """The author asks moderators to look again at hidden content (once)."""
    owner, target = _target(thread, reply)
    target = type(target).objects.get(pk=target.pk)
    if not is_authenticated(user) or target.author_id != user.pk:
        raise PermissionDenied("Only the author can appeal.")
    if target.visibility == Visibility.VISIBLE or target.deleted_at is not None:
        raise ValidationError({"text": "Only hidden posts can be appealed."})
    text = _CONTROL_CHARACTERS.sub("", text or "").strip()
    if not text:
        raise ValidationError({"text": "Say why the post should be shown again."})
    if len(text) > 2000:
        raise ValidationError({"text": "Keep the appeal to 2,000 characters."})
    try:
        with transaction.atomic():
            record = Appeal.objects.create(
                thread=owner if reply is None else None, reply=reply, author=user, text=text
            )
    except IntegrityError:
        raise ValidationError(
            {"text": "You have already appealed; a moderator will decide."}
        ) from None
    _log(
        user,
        "appeal",
        owner.neighborhood,
        thread=owner,
        reply=reply,
        subject=user,
        reason=plain_text(text, 200),
    )
    return record


def appeal_of(thread: Thread | None = None, reply: Reply | None = None) -> Appeal | None:
    if reply is not None:
        return Appeal.objects.filter(reply=reply).first()
    return Appeal.objects.filter(thread=thread, reply=None).first()


# Moderation ---------------------------------------------------------------------------------

MODERATION_ACTIONS = (
    "approve",
    "hide",
    "delete",
    "lock",
    "unlock",
    "pin",
    "unpin",
    "move",
)
REASON_REQUIRED = {"hide", "delete", "lock", "move", "suspend", "merge"}


def _ensure_moderator(user, neighborhood: Neighborhood) -> None:
    if not can_moderate(user, neighborhood):
        raise PermissionDenied(f"Only moderators of {neighborhood.name} can do this.")


def _need_reason(action: str, reason: str) -> str:
    reason = " ".join((reason or "").split())
    if action in REASON_REQUIRED and not reason:
        raise ValidationError({"reason": "Say why: the reason goes into the moderation log."})
    return reason[:500]


def moderate(
    actor,
    action: str,
    *,
    thread: Thread | None = None,
    reply: Reply | None = None,
    reason: str = "",
    neighborhood: Neighborhood | None = None,
) -> ModerationAction:
    """Apply one moderation action to a thread or reply and write it to the audit log."""
    owner, target = _target(thread, reply)
    _ensure_moderator(actor, owner.neighborhood)
    if action not in MODERATION_ACTIONS:
        raise ValidationError({"action": f"Unknown action “{action}”."})
    if reply is not None and action not in ("approve", "hide", "delete"):
        raise ValidationError({"action": "Replies can be approved, hidden or deleted."})
    reason = _need_reason(action, reason)
    now = timezone.now()
    with transaction.atomic():
        model = type(target)
        target = model.objects.select_for_update().get(pk=target.pk)
        if action == "approve":
            model.objects.filter(pk=target.pk).update(visibility=Visibility.VISIBLE)
            Flag.objects.filter(thread=thread, reply=reply, resolved_at__isnull=True).update(
                resolved_at=now
            )
            Appeal.objects.filter(thread=thread, reply=reply, decided_at__isnull=True).update(
                decided_at=now, upheld=True
            )
            entry = _log(
                actor, "approve", owner.neighborhood, thread=owner, reply=reply, reason=reason
            )
            _after_visibility_change(owner, reply)
            if target.author_id and target.visibility != Visibility.VISIBLE:
                what = "reply" if reply else "thread"
                notify_many(
                    [target.author_id],
                    kind="forum_moderation",
                    title=f"Your {what} in “{owner.title}” is visible again",
                    key=f"forum:approved:{what}:{target.pk}:{now.timestamp():.0f}",
                    url=target.get_absolute_url(),
                )
            return entry
        if action == "hide":
            Flag.objects.filter(thread=thread, reply=reply, resolved_at__isnull=True).update(
                resolved_at=now
            )
            Appeal.objects.filter(thread=thread, reply=reply, decided_at__isnull=True).update(
                decided_at=now, upheld=False
            )
            return _hide(target, owner, reason_label=reason, actor=actor, by_moderator=True)
        if action == "delete":
            model.objects.filter(pk=target.pk).update(deleted_at=now)
            Flag.objects.filter(thread=thread, reply=reply, resolved_at__isnull=True).update(
                resolved_at=now
            )
            entry = _log(
                actor,
                "delete",
                owner.neighborhood,
                thread=owner,
                reply=reply,
                subject=target.author,
                reason=reason,
            )
            _after_visibility_change(owner, reply)
            return entry
        if action in ("lock", "unlock", "pin", "unpin"):
            field = "is_locked" if action in ("lock", "unlock") else "is_pinned"
            Thread.objects.filter(pk=owner.pk).update(**{field: action in ("lock", "pin")})
            entry = _log(actor, action, owner.neighborhood, thread=owner, reason=reason)
            _publish_thread(owner, "thread.updated")
            return entry
        # move
        if neighborhood is None or neighborhood.pk == owner.neighborhood_id:
            raise ValidationError({"neighborhood": "Choose another neighborhood."})
        _ensure_moderator(actor, neighborhood)
        source = owner.neighborhood
        Thread.objects.filter(pk=owner.pk).update(neighborhood=neighborhood)
        entry = _log(
            actor,
            "move",
            source,
            thread=owner,
            reason=reason,
            source=source.slug,
            destination=neighborhood.slug,
        )
        live.publish(f"neighborhood:{source.slug}", "thread.removed", {"id": owner.pk})
        _publish_thread(owner, "thread.created", neighborhood=True)
        return entry


def _after_visibility_change(thread: Thread, reply: Reply | None) -> None:
    if reply is not None:
        _touch(thread.pk)
        live.publish(
            f"thread:{thread.pk}", "reply.updated", reply_payload(_reply_with_relations(reply.pk))
        )
        _publish_counts(thread.pk, thread.neighborhood.slug)
    else:
        thread.refresh_from_db()
        _publish_thread(thread, "thread.updated" if thread.is_listed else "thread.removed")


def suspend(actor, user, neighborhood: Neighborhood, *, days: int, reason: str) -> Suspension:
    """Keep ``user`` from posting, replying and voting in ``neighborhood`` for ``days`` days."""
    _ensure_moderator(actor, neighborhood)
    reason = _need_reason("suspend", reason)
    try:
        days = int(days)
    except (TypeError, ValueError):
        raise ValidationError({"days": "Give a whole number of days."}) from None
    if not 1 <= days <= 3650:
        raise ValidationError({"days": "Suspend for 1 to 3,650 days."})
    if user.pk == getattr(actor, "pk", None):
        raise ValidationError({"user": "You cannot suspend yourself."})
    if is_city_staff(user):
        raise ValidationError({"user": "City staff cannot be suspended here."})
    until = timezone.now() + timedelta(days=days)
    with transaction.atomic():
        suspension = Suspension.objects.create(
            user=user, neighborhood=neighborhood, until=until, reason=reason, by=actor
        )
        _log(actor, "suspend", neighborhood, subject=user, reason=reason, days=days)
        notify_many(
            [user.pk],
            kind="forum_moderation",
            title=f"You are suspended from {neighborhood.name} for {days} days",
            key=f"forum:suspended:{suspension.pk}",
            body=f"Reason: {reason}",
            url=neighborhood.get_absolute_url(),
            severity=Severity.ADVISORY,
        )
    return suspension


def lift_suspension(actor, suspension: Suspension, *, reason: str = "") -> None:
    _ensure_moderator(actor, suspension.neighborhood)
    with transaction.atomic():
        Suspension.objects.filter(pk=suspension.pk).update(until=timezone.now())
        _log(actor, "unsuspend", suspension.neighborhood, subject=suspension.user, reason=reason)


def merge_threads(duplicate: Thread, original: Thread, *, actor, reason: str) -> Thread:
    """Merge a duplicate into the original, carrying every vote, follower and reply exactly once.

    The duplicate's opening post becomes a reply in the original; its URL redirects there.
    """
    if duplicate.pk == original.pk:
        raise ValidationError({"original": "A thread cannot be merged into itself."})
    _ensure_moderator(actor, duplicate.neighborhood)
    _ensure_moderator(actor, original.neighborhood)
    reason = _need_reason("merge", reason)
    with transaction.atomic():
        # Lock both rows in id order so two merges cannot deadlock.
        locked = {
            t.pk: t
            for t in Thread.objects.select_for_update()
            .filter(pk__in=[duplicate.pk, original.pk])
            .order_by("pk")
        }
        duplicate, original = locked[duplicate.pk], locked[original.pk]
        if original.merged_into_id or original.deleted_at:
            raise ValidationError({"original": "That thread is itself merged or deleted."})
        if duplicate.merged_into_id:
            raise ValidationError({"duplicate": "That thread is already merged."})
        # Votes: each person supports the original once.
        voters = Vote.objects.filter(thread=original, reply=None).values("user_id")
        Vote.objects.filter(thread=duplicate, reply=None, user_id__in=voters).delete()
        Vote.objects.filter(thread=duplicate, reply=None).update(thread=original)
        # Followers (a mute on the original wins).
        followers = Follow.objects.filter(thread=original).values("user_id")
        Follow.objects.filter(thread=duplicate, user_id__in=followers).delete()
        Follow.objects.filter(thread=duplicate).update(thread=original)
        # Co-signs.
        signed = Cosign.objects.filter(thread=original).values("organization_id")
        Cosign.objects.filter(thread=duplicate, organization_id__in=signed).delete()
        Cosign.objects.filter(thread=duplicate).update(thread=original)
        # The duplicate's opening post, then its replies, in their order.
        Reply.objects.create(
            thread=original,
            author=duplicate.author,
            body=f"**{duplicate.title}**\n\n{duplicate.body}",
            body_html=render_markdown(f"**{duplicate.title}**\n\n{duplicate.body}"),
            created_at=duplicate.created_at,
            visibility=duplicate.visibility,
        )
        Reply.objects.filter(thread=duplicate).update(thread=original)
        Thread.objects.filter(pk=duplicate.pk).update(merged_into=original, is_pinned=False)
        exact_votes = Vote.objects.filter(thread=original, reply=None).count()
        Thread.objects.filter(pk=original.pk).update(vote_count=exact_votes)
        _touch(original.pk, max(original.last_activity_at, duplicate.last_activity_at))
        original.tags.add(*duplicate.tags.names())
        _reindex(original)
        _log(
            actor,
            "merge",
            duplicate.neighborhood,
            thread=duplicate,
            subject=duplicate.author,
            reason=reason,
            into=original.pk,
        )
        live.publish_many(
            [
                (
                    f"thread:{duplicate.pk}",
                    "thread.merged",
                    {"id": duplicate.pk, "into": original.pk, "url": original.get_absolute_url()},
                ),
                (
                    f"neighborhood:{duplicate.neighborhood.slug}",
                    "thread.removed",
                    {"id": duplicate.pk},
                ),
            ]
        )
        _publish_thread(original, "thread.updated")
        hooks.support_changed(original)
        hooks.support_changed(duplicate)
        original.refresh_from_db()
    return original


# Feeds --------------------------------------------------------------------------------------

SORTS = ("hot", "top", "new", "discussed", "unanswered")
PERIODS = {"day": 1, "week": 7, "month": 30, "all": None}


def feed(
    neighborhoods: Neighborhood | Iterable[Neighborhood] | None = None,
    *,
    sort: str = "hot",
    period: str = "all",
    tag: str = "",
    category: str = "",
    now: datetime | None = None,
) -> QuerySet[Thread]:
    """Listed threads, sorted: ``hot`` (time-decayed support, see :func:`~forums.models.hot_score`),
    ``top`` (support within ``period``), ``new``, ``discussed`` (replies), ``unanswered`` (no
    official reply yet, most supported first). Pinned threads lead a single neighborhood's feed.
    """
    if sort not in SORTS:
        raise ValidationError({"sort": f"Sort by one of: {', '.join(SORTS)}."})
    if period not in PERIODS:
        raise ValidationError({"period": f"Choose a period: {', '.join(PERIODS)}."})
    threads = Thread.objects.listed()
    single = isinstance(neighborhoods, Neighborhood)
    if single:
        threads = threads.filter(neighborhood=neighborhoods)
    elif neighborhoods is not None:
        threads = threads.filter(neighborhood__in=list(neighborhoods))
    if tag:
        threads = threads.filter(tags__slug=tag)
    if category:
        threads = threads.filter(category__slug=category)
    if sort == "top" and PERIODS[period]:
        since = (now or timezone.now()) - timedelta(days=PERIODS[period])
        threads = threads.filter(created_at__gte=since)
    order = {
        "hot": ["-hot", "-id"],
        "top": ["-vote_count", "-created_at", "-id"],
        "new": ["-created_at", "-id"],
        "discussed": ["-reply_count", "-last_activity_at", "-id"],
        "unanswered": ["-vote_count", "-created_at", "-id"],
    }[sort]
    if sort == "unanswered":
        threads = threads.filter(has_official_reply=False)
    if single:
        order = ["-is_pinned", *order]
    return threads.select_related(
        "neighborhood", "category", "author__engagement_profile"
    ).order_by(*order)


def with_tag_names(threads: Sequence[Thread]) -> list[Thread]:
    """Attach each thread's tag names with one query (for pages of threads)."""
    from taggit.models import TaggedItem

    threads = list(threads)
    names: dict[int, list[str]] = {t.pk: [] for t in threads}
    if threads:
        rows = TaggedItem.objects.filter(
            content_type__app_label="forums",
            content_type__model="thread",
            object_id__in=list(names),
        ).values_list("object_id", "tag__name")
        for object_id, name in rows:
            names[object_id].append(name)
    for thread in threads:
        thread._tag_names = sorted(names[thread.pk])
    return threads


def my_neighborhoods(user) -> list[Neighborhood]:
    if not is_authenticated(user):
        return []
    return list(Neighborhood.objects.filter(memberships__user=user).order_by("name").distinct())


def search_threads(query: str, *, neighborhood: Neighborhood | None = None) -> list[Thread]:
    """Full-text search over listed threads (title, body, tags) through Wagtail's backend."""
    from wagtail.search.backends import get_search_backend

    query = " ".join((query or "").split())[:200]
    if not query:
        return []
    threads = Thread.objects.filter(
        visibility=Visibility.VISIBLE, deleted_at__isnull=True, merged_into__isnull=True
    )
    if neighborhood is not None:
        threads = threads.filter(neighborhood_id=neighborhood.pk)
    results = get_search_backend().search(query, threads, operator="and")
    ids = [t.pk for t in results[:50]]
    by_id = Thread.objects.select_related(
        "neighborhood", "category", "author__engagement_profile"
    ).in_bulk(ids)
    return [by_id[pk] for pk in ids if pk in by_id]


# Similar threads ----------------------------------------------------------------------------

_STOPWORD_TEXT = (
    "a an and are at be by for from has have in is it its near of on or our the this to was "
    "were with again still there here not no why when who what where how"
)
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())


def _words(text: str) -> list[str]:
    text = unicodedata.normalize("NFKD", text or "").encode("ascii", "ignore").decode().lower()
    return [w for w in re.findall(r"[a-z0-9]+", text) if w not in _STOPWORDS]


def title_similarity(a: str, b: str) -> float:
    """0–1: the better of word overlap (Dice) and character sequence similarity."""
    wa, wb = _words(a), _words(b)
    if not wa or not wb:
        return 0.0
    sa, sb = set(wa), set(wb)
    dice = 2 * len(sa & sb) / (len(sa) + len(sb))
    sequence = SequenceMatcher(None, " ".join(wa), " ".join(wb)).ratio()
    return round(max(dice, sequence), 3)


@dataclass
class Similar:
    thread: Thread
    score: float
    distance_m: float | None


def similar_threads(
    neighborhood: Neighborhood,
    title: str,
    *,
    lat: float | None = None,
    lon: float | None = None,
    limit: int = 5,
    exclude: int | None = None,
) -> list[Similar]:
    """Open threads in the neighborhood like ``title``, nearest to the pin first among equals.

    Candidates are bounded (threads sharing a significant word, most recent activity first), so
    the cost does not grow with the forum. A pinned thread far from the given pin scores less.
    """
    words = [w for w in _words(title) if len(w) >= 3][:8]
    if not words:
        return []
    query = Q()
    for word in words:
        query |= Q(title__icontains=word)
    candidates = (
        Thread.objects.listed()
        .filter(neighborhood=neighborhood, is_locked=False)
        .filter(query)
        .exclude(pk=exclude)
        .select_related("neighborhood", "category", "author__engagement_profile")
        .order_by("-last_activity_at")[:300]
    )
    reach = app_settings.FORUM_SIMILAR_DISTANCE_M
    found: list[Similar] = []
    for thread in candidates:
        score = title_similarity(title, thread.title)
        distance = None
        if lat is not None and lon is not None and thread.lat is not None:
            distance = distance_m(lat, lon, thread.lat, thread.lon)
            if distance > reach:
                # Half the score at four times the reach, and beyond.
                score *= max(0.5, 1 - 0.5 * (distance - reach) / (3 * reach))
            else:
                score = min(1.0, score + 0.1 * (1 - distance / reach))
        if score >= app_settings.FORUM_SIMILAR_MIN_SCORE:
            found.append(Similar(thread, round(score, 3), distance))
    found.sort(key=lambda s: (-s.score, s.distance_m if s.distance_m is not None else 1e12))
    return found[:limit]


# Escalation hook ----------------------------------------------------------------------------


def suggests_escalation(thread: Thread) -> bool:
    """Whether the thread has enough distinct verified supporters to suggest a 311 case."""
    threshold = app_settings.FORUM_ESCALATION_SUPPORTERS
    return thread.vote_count >= threshold and verified_supporter_count(thread) >= threshold


def moderation_queue(user) -> QuerySet[Flag]:
    """Open flags in the neighborhoods ``user`` moderates (all of them for city staff)."""
    flags = Flag.objects.filter(resolved_at__isnull=True)
    if not is_city_staff(user):
        moderated = Membership.objects.filter(
            user=user, role__in=[Membership.Role.MODERATOR, Membership.Role.ORGANIZER]
        ).values("neighborhood_id")
        flags = flags.filter(
            Q(thread__neighborhood_id__in=moderated)
            | Q(reply__thread__neighborhood_id__in=moderated)
        )
    return flags.select_related("thread__neighborhood", "reply__thread__neighborhood", "user")
