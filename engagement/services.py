"""Business rules of 311 cases. Pages, the API, the Open311 server, the case desk and commands call
these; each checks permissions itself, writes in one transaction, records an audit entry, and
announces the change live (``case:<tracking number>``, ``thread:<id>``, ``neighborhood:<slug>``)
and by notification once the transaction commits.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.formats import date_format

from alerts import live
from alerts.models import Severity
from alerts.notify import notify_many
from alerts.tasks import absolute
from forums.models import Follow as ThreadFollow
from forums.models import Thread
from forums.models import Vote as ThreadVote
from neighborhoods.geometry import GeometryError, validate_point
from neighborhoods.images import process_photo
from neighborhoods.locate import locate
from neighborhoods.models import (
    Department,
    Membership,
    Neighborhood,
    OrganizationMembership,
    VerificationLevel,
)
from neighborhoods.permissions import (
    has_verified_email,
    is_authenticated,
    is_city_staff,
    is_supervisor,
    neighborhood_role,
    residency_level,
    staff_record,
)
from neighborhoods.ratelimit import check_rate
from neighborhoods.text import plain_text

from .conf import app_settings
from .models import (
    Case,
    CaseAudit,
    CaseFollow,
    CaseNote,
    CasePhoto,
    CaseSupport,
    Holiday,
    OutboxMessage,
    ServiceQuestion,
    ServiceType,
    SurveyResponse,
    TrackingCounter,
)

Status = Case.Status
Resolution = Case.Resolution
Channel = Case.Channel
METERS_PER_DEGREE = 111_320.0
DESCRIPTION_MAX = 4000
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
IP_FACTOR = 5


# Service levels ---------------------------------------------------------------------------


def is_working_day(day: date, holidays: set[date] | None = None) -> bool:
    if day.weekday() not in tuple(app_settings.CASE_WORKING_WEEKDAYS):
        return False
    if holidays is None:
        holidays = set(Holiday.objects.filter(date=day).values_list("date", flat=True))
    return day not in holidays


def add_working_days(start: date, days: int) -> date:
    """The date ``days`` working days after ``start`` (weekends and holidays skipped)."""
    holidays = set(
        Holiday.objects.filter(
            date__gt=start, date__lte=start + timedelta(days=days * 3 + 30)
        ).values_list("date", flat=True)
    )
    current, left = start, days
    while left > 0:
        current += timedelta(days=1)
        if is_working_day(current, holidays):
            left -= 1
    return current


def expected_at(service_type: ServiceType, filed_at: datetime) -> datetime:
    """When a case filed at ``filed_at`` is due: N working days later, at the due hour."""
    tz = timezone.get_default_timezone()
    local = timezone.localtime(filed_at, tz)
    due_day = add_working_days(local.date(), service_type.sla_working_days)
    return datetime.combine(due_day, time(app_settings.CASE_DUE_HOUR), tzinfo=tz)


# Tracking numbers ---------------------------------------------------------------------------


def next_tracking_number(now: datetime | None = None) -> str:
    """``YY-NNNNNN``, consecutive within a year; call inside a transaction (the row is locked)."""
    year = timezone.localtime(now or timezone.now()).year
    TrackingCounter.objects.get_or_create(year=year)
    TrackingCounter.objects.filter(year=year).update(last=F("last") + 1)
    number = TrackingCounter.objects.select_for_update().get(year=year).last
    return f"{year % 100:02d}-{number:0{app_settings.CASE_NUMBER_DIGITS}d}"


_TRACKING = re.compile(r"^\d{2}-\d{4,12}$")


def find_case(tracking_number: str) -> Case | None:
    value = (tracking_number or "").strip()
    if not _TRACKING.match(value):
        return None
    return (
        Case.objects.select_related("service_type", "department", "neighborhood")
        .filter(tracking_number=value)
        .first()
    )


# Answers to a service type's questions ------------------------------------------------------


def questions_of(service_type: ServiceType) -> list[ServiceQuestion]:
    return list(service_type.questions.order_by("sort_order", "id"))


def clean_answers(service_type: ServiceType, answers: Mapping | None) -> dict:
    """Validate answers against the type's questions; return them keyed by code.

    Values are strings, except multi-value lists (a list of keys) and numbers (a string in
    plain decimal notation). Raises ``ValidationError`` keyed ``answers.<code>``.
    """
    answers = dict(answers or {})
    cleaned: dict = {}
    errors: dict[str, list[str]] = {}
    for question in questions_of(service_type):
        if not question.variable:
            continue
        raw = answers.get(question.code)
        values = raw if isinstance(raw, list | tuple) else ([] if raw in (None, "") else [raw])
        values = [str(v).strip() for v in values if str(v).strip()]
        field = f"answers.{question.code}"
        if not values:
            if question.required:
                errors[field] = [f"Answer “{question.prompt}”."]
            continue
        try:
            cleaned[question.code] = _clean_answer(question, values)
        except ValidationError as exc:
            errors[field] = exc.messages
    unknown = set(answers) - {q.code for q in questions_of(service_type)}
    for code in sorted(unknown):
        errors[f"answers.{code}"] = [f"“{code}” is not a question of {service_type.name}."]
    if errors:
        raise ValidationError(errors)
    return cleaned


def _clean_answer(question: ServiceQuestion, values: list[str]):
    datatype = question.datatype
    Datatype = ServiceQuestion.Datatype
    if datatype == Datatype.MULTI:
        keys = {key for key, _ in question.value_list()}
        bad = [v for v in values if v not in keys]
        if bad:
            raise ValidationError(f"Choose from the listed answers (not “{bad[0][:40]}”).")
        return list(dict.fromkeys(values))
    if len(values) > 1:
        raise ValidationError("Give one answer.")
    value = values[0]
    if datatype == Datatype.SINGLE:
        if value not in {key for key, _ in question.value_list()}:
            raise ValidationError(f"Choose one of the listed answers (not “{value[:40]}”).")
        return value
    if datatype == Datatype.NUMBER:
        try:
            number = Decimal(value)
        except InvalidOperation:
            raise ValidationError("Give a number.") from None
        if not number.is_finite():
            raise ValidationError("Give a number.")
        return format(number.normalize(), "f")
    if datatype == Datatype.DATETIME:
        parsed = parse_datetime(value.replace("Z", "+00:00")) if "T" in value else None
        if parsed is None:
            raise ValidationError("Give a date and time such as 2026-03-01T14:30:00Z.")
        if timezone.is_naive(parsed):
            parsed = timezone.make_aware(parsed)
        return parsed.replace(microsecond=0).isoformat()
    limit = 300 if datatype == Datatype.STRING else DESCRIPTION_MAX
    value = _CONTROL.sub("", value)
    if len(value) > limit:
        raise ValidationError(f"Keep it to {limit:,} characters.")
    if datatype == Datatype.STRING and "\n" in value:
        value = " ".join(value.split())
    return value


# The first line of a case's timeline, by channel.
FILED_VIA = {
    Channel.WEB: "Filed on the web.",
    Channel.API: "Filed through the API.",
    Channel.PHONE: "Filed by phone, with a call taker.",
    Channel.LIAISON: "Filed by a neighborhood liaison for a neighbour.",
    Channel.FIELD: "Filed by city staff in the field.",
    Channel.OPEN311: "Filed through an Open311 app.",
}


def answer_labels(case: Case) -> list[tuple[str, str]]:
    """(question, answer as shown) for the case's answers, in question order: list answers by
    their names, dates and times as people read them, in the site's time zone."""
    out = []
    for question in questions_of(case.service_type):
        if question.code not in case.answers:
            continue
        value = case.answers[question.code]
        names = dict(question.value_list())
        if isinstance(value, list):
            shown = ", ".join(names.get(v, v) for v in value)
        elif question.datatype == ServiceQuestion.Datatype.DATETIME:
            shown = _readable_datetime(value)
        else:
            shown = names.get(value, value)
        out.append((question.prompt, shown))
    return out


def _readable_datetime(value) -> str:
    parsed = parse_datetime(str(value)) if value else None
    if parsed is None:
        return str(value)
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed)
    return date_format(timezone.localtime(parsed), "DATETIME_FORMAT")


# Who may do what ----------------------------------------------------------------------------


def can_work(user, case: Case) -> bool:
    """City staff of the case's department, or a supervisor (all departments)."""
    if is_supervisor(user):
        return True
    record = staff_record(user)
    return bool(record and record.department_id == case.department_id)


def _ensure_work(user, case: Case) -> None:
    if not can_work(user, case):
        raise PermissionDenied(
            f"Only staff of {case.department.name} (or a supervisor) can work this case."
        )


def can_escalate(user, thread: Thread) -> bool:
    if not is_authenticated(user):
        return False
    if is_city_staff(user):
        return True
    if thread.author_id == user.pk and residency_level(user, thread.neighborhood) >= (
        VerificationLevel.EMAIL_VERIFIED
    ):
        return True
    return neighborhood_role(user, thread.neighborhood) == Membership.Role.ORGANIZER


def is_liaison_for(user, neighborhood: Neighborhood | None) -> bool:
    """An organization member whom staff designated liaison, for a neighborhood it serves."""
    if not is_authenticated(user):
        return False
    liaisons = OrganizationMembership.objects.filter(
        user=user, is_liaison=True, organization__verified=True
    )
    if neighborhood is not None:
        liaisons = liaisons.filter(organization__neighborhoods=neighborhood)
    return liaisons.exists()


def case_viewer_role(user, case: Case) -> str:
    """``staff`` (sees identity and internal notes), ``reporter``, ``supporter`` or ``public``."""
    if can_work(user, case) or is_city_staff(user):
        return "staff"
    if is_authenticated(user):
        if case.reporter_id == user.pk:
            return "reporter"
        if is_supporter(case, user):
            return "supporter"
    return "public"


# Payloads -----------------------------------------------------------------------------------


def case_payload(case: Case, *, staff: bool = False) -> dict:
    """The case as the public tracker, the API and live events show it (no reporter identity)."""
    data = {
        "tracking_number": case.tracking_number,
        "url": case.get_absolute_url(),
        "status": case.status,
        "status_label": case.get_status_display(),
        "resolution": case.resolution,
        "resolution_label": case.get_resolution_display() if case.resolution else "",
        "resolution_note": case.resolution_note,
        "duplicate_of": case.duplicate_of.tracking_number if case.duplicate_of_id else None,
        "responsible_party": case.responsible_party,
        "service_code": case.service_type.code,
        "service_name": case.service_type.name,
        "department": case.department.name,
        "description": case.description,
        "answers": case.answers,
        "lat": case.lat,
        "lon": case.lon,
        "address": case.address,
        "neighborhood": case.neighborhood.slug if case.neighborhood_id else None,
        "thread": case.thread_id,
        "channel": case.channel,
        "supporter_count": case.supporter_count,
        "verified_supporter_count": case.verified_supporter_count,
        "created_at": _iso(case.created_at),
        "updated_at": _iso(case.updated_at),
        "expected_at": _iso(case.expected_at),
        "scheduled_for": case.scheduled_for.isoformat() if case.scheduled_for else None,
        "acknowledged_at": _iso(case.acknowledged_at),
        "closed_at": _iso(case.closed_at),
        "is_overdue": case.is_overdue,
        "contested_count": case.contested_count,
    }
    if staff:
        data["staff"] = {
            "reporter": case.reporter_id,
            "contact_name": case.contact_name,
            "contact_email": case.contact_email,
            "contact_phone": case.contact_phone,
            "filed_by": case.filed_by_id,
            "assigned_to": case.assigned_to_id,
            "api_client": case.api_client,
        }
    return data


def note_payload(note: CaseNote) -> dict:
    return {
        "id": note.pk,
        "kind": note.kind,
        "kind_label": note.get_kind_display(),
        "text": note.text,
        "is_public": note.is_public,
        "status_from": note.status_from,
        "status_to": note.status_to,
        "created_at": _iso(note.created_at),
        # As the timeline shows it (engagement/includes/timeline.html), so live entries match.
        "created_label": date_format(timezone.localtime(note.created_at), "M j, Y, g:i a"),
        "by_staff": bool(note.author_id and is_city_staff(note.author)),
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _audit(case: Case | None, actor, action: str, reason: str = "", **data) -> CaseAudit:
    return CaseAudit.objects.create(
        case=case,
        actor=actor if is_authenticated(actor) else None,
        action=action,
        reason=(reason or "")[:500],
        data=data,
    )


def _publish(case: Case, event_type: str, note: CaseNote | None = None) -> None:
    """Tell the case's followers, its threads, its neighborhood and the city-wide tracker (public
    data only)."""
    case = Case.objects.select_related(
        "service_type", "department", "neighborhood", "duplicate_of"
    ).get(pk=case.pk)
    data = case_payload(case)
    if note is not None and note.is_public:
        data["note"] = note_payload(note)
    items = [(f"case:{case.tracking_number}", event_type, data)]
    for thread_id in _thread_ids(case):
        items.append((f"thread:{thread_id}", event_type, data))
    if case.neighborhood_id:
        items.append((f"neighborhood:{case.neighborhood.slug}", event_type, data))
    items.append(("cases", event_type, data))
    live.publish_many(items)


def _thread_ids(case: Case) -> list[int]:
    ids = set(case.threads.values_list("id", flat=True))
    if case.thread_id:
        ids.add(case.thread_id)
    return sorted(ids)


def supporter_ids(case: Case) -> set[int]:
    """The reporter, "me too" supporters and the supporters (voters) of its threads."""
    ids = set(CaseSupport.objects.filter(case=case).values_list("user_id", flat=True))
    threads = _thread_ids(case)
    if threads:
        ids |= set(
            ThreadVote.objects.filter(thread_id__in=threads, reply=None).values_list(
                "user_id", flat=True
            )
        )
    if case.reporter_id:
        ids.add(case.reporter_id)
    return ids


def is_supporter(case: Case, user) -> bool:
    return is_authenticated(user) and user.pk in supporter_ids(case)


def interested_users(case: Case) -> set[int]:
    """Supporters and followers of the case and of its threads (minus those who muted them)."""
    ids = supporter_ids(case)
    ids |= set(CaseFollow.objects.filter(case=case).values_list("user_id", flat=True))
    threads = _thread_ids(case)
    if threads:
        follows = ThreadFollow.objects.filter(thread_id__in=threads)
        ids |= set(follows.filter(muted=False).values_list("user_id", flat=True))
        ids -= set(follows.filter(muted=True).values_list("user_id", flat=True))
    if case.reporter_id:
        ids.add(case.reporter_id)
    return ids


def _notify(case: Case, *, kind: str, title: str, body: str, key: str, exclude=()) -> None:
    recipients = sorted(interested_users(case) - {getattr(u, "pk", u) for u in exclude})
    if recipients:
        notify_many(
            recipients,
            kind=kind,
            title=title,
            key=key,
            body=body,
            url=case.get_absolute_url(),
            severity=Severity.ADVISORY,
        )


# Filing -------------------------------------------------------------------------------------


@dataclass
class Filed:
    case: Case
    created: bool


def _clean_description(text: str, *, required: bool) -> str:
    text = _CONTROL.sub("", text or "").strip()
    if required and not text:
        raise ValidationError({"description": "Describe the problem."})
    if len(text) > DESCRIPTION_MAX:
        raise ValidationError({"description": f"Keep it to {DESCRIPTION_MAX:,} characters."})
    return text


ADDRESS_MAX, CONTACT_NAME_MAX, CONTACT_PHONE_MAX = 250, 120, 40


def _clean_location(lat, lon, address: str) -> tuple[float | None, float | None, str]:
    address = " ".join(_CONTROL.sub("", address or "").split())
    if len(address) > ADDRESS_MAX:
        raise ValidationError({"address": f"Keep the address to {ADDRESS_MAX} characters."})
    if lat in (None, "") and lon in (None, ""):
        if not address:
            raise ValidationError({"location": "Put a pin on the map or give an address."})
        return None, None, address
    try:
        lat_f, lon_f = validate_point(lat, lon)
    except GeometryError as exc:
        raise ValidationError({"location": str(exc)}) from exc
    return round(lat_f, 6), round(lon_f, 6), address


def _ensure_can_file(reporter, channel: str, filed_by, neighborhood: Neighborhood | None) -> None:
    if channel == Channel.PHONE:
        if not is_city_staff(filed_by):
            raise PermissionDenied("Only city staff record cases taken by phone.")
        return
    if channel == Channel.FIELD:
        if not is_city_staff(filed_by):
            raise PermissionDenied("Only city staff open cases in the field.")
        return
    if channel == Channel.LIAISON:
        if not is_liaison_for(filed_by, neighborhood):
            raise PermissionDenied(
                "Only a neighborhood liaison of an organization serving this place can file "
                "for a neighbour."
            )
        return
    if channel == Channel.OPEN311:
        return  # the API key was checked by the Open311 server
    if not is_authenticated(reporter):
        raise PermissionDenied("Sign in to report a problem.")
    if not has_verified_email(reporter):
        raise PermissionDenied("Verify your e-mail address before reporting a problem.")


def file_case(
    *,
    service_type: ServiceType,
    description: str = "",
    lat=None,
    lon=None,
    address: str = "",
    answers: Mapping | None = None,
    photos: Sequence = (),
    media_urls: Sequence[str] = (),
    reporter=None,
    channel: str = Channel.WEB,
    filed_by=None,
    contact_name: str = "",
    contact_email: str = "",
    contact_phone: str = "",
    api_client: str = "",
    idempotency_key: str = "",
    thread: Thread | None = None,
    ip: str = "",
) -> Filed:
    """File a case by any channel. With an ``idempotency_key`` a retry returns the first case."""
    if channel not in Channel.values:
        raise ValidationError({"channel": "Unknown channel."})
    idempotency_key = (idempotency_key or "").strip()[:100]
    if idempotency_key:
        existing = Case.objects.filter(idempotency_key=idempotency_key).first()
        if existing is not None:
            return Filed(existing, False)
    if not service_type.is_active:
        raise ValidationError({"service_type": f"{service_type.name} is not taken any more."})
    errors: dict[str, list[str]] = {}
    cleaned: dict = {}
    checks = (
        ("description", lambda: _clean_description(description, required=channel != "open311")),
        ("location", lambda: _clean_location(lat, lon, address)),
        ("answers", lambda: clean_answers(service_type, answers)),
    )
    for name, check in checks:
        try:
            cleaned[name] = check()
        except ValidationError as exc:
            for field, messages in exc.message_dict.items():
                errors.setdefault(field, []).extend(messages)
    for field, value, most in (
        ("contact_name", contact_name, CONTACT_NAME_MAX),
        ("contact_phone", contact_phone, CONTACT_PHONE_MAX),
    ):
        if len(_CONTROL.sub("", value or "")) > most:
            errors.setdefault(field, []).append(f"Keep it to {most} characters.")
    if channel in (Channel.PHONE, Channel.LIAISON) and not (contact_phone or contact_email):
        errors.setdefault("contact", []).append(
            "Take a phone number or an e-mail address so the city can follow up."
        )
    if len(photos) > app_settings.CASE_MAX_PHOTOS:
        errors.setdefault("photos", []).append(
            f"Add at most {app_settings.CASE_MAX_PHOTOS} photos."
        )
    if errors:
        raise ValidationError(errors)
    lat_f, lon_f, address = cleaned["location"]
    neighborhood = locate(lat_f, lon_f) if lat_f is not None else None
    if lat_f is not None and neighborhood is None and thread is None:
        raise ValidationError({"location": "That place is outside the city's neighborhoods."})
    if thread is not None:
        neighborhood = thread.neighborhood
    _ensure_can_file(reporter, channel, filed_by, neighborhood)
    limiter = filed_by if channel in (Channel.PHONE, Channel.LIAISON, Channel.FIELD) else reporter
    if is_authenticated(limiter) and not is_city_staff(limiter):
        limit, period = app_settings.CASE_RATE
        check_rate("case", f"u{limiter.pk}", limit=limit, period=period)
        if ip:
            check_rate("case", f"ip{ip}", limit=limit * IP_FACTOR, period=period)
    processed = []
    for upload in photos:
        try:
            processed.append(
                process_photo(
                    upload,
                    max_bytes=app_settings.CASE_PHOTO_MAX_BYTES,
                    max_side=app_settings.CASE_PHOTO_MAX_SIDE,
                )
            )
        except ValidationError as exc:
            raise ValidationError({"photos": exc.messages}) from exc
    now = timezone.now()
    try:
        with transaction.atomic():
            case = Case(
                tracking_number=next_tracking_number(now),
                service_type=service_type,
                department=service_type.department,
                description=cleaned["description"],
                answers=cleaned["answers"],
                lat=lat_f,
                lon=lon_f,
                address=address,
                neighborhood=neighborhood,
                reporter=reporter if is_authenticated(reporter) else None,
                contact_name=_CONTROL.sub("", contact_name or ""),
                contact_email=(contact_email or "")[:254],
                contact_phone=_CONTROL.sub("", contact_phone or ""),
                channel=channel,
                filed_by=filed_by if is_authenticated(filed_by) else None,
                api_client=api_client[:120],
                thread=thread,
                idempotency_key=idempotency_key,
                created_at=now,
                updated_at=now,
                expected_at=expected_at(service_type, now),
            )
            # The description was checked above (Open311 clients may leave it out).
            case.full_clean(
                exclude=["tracking_number", "answers", "department", "description"],
                validate_constraints=False,
            )
            case.save()
            if thread is not None:
                case.threads.add(thread)
            for photo in processed:
                record = CasePhoto(
                    case=case, width=photo.width, height=photo.height, added_by=case.reporter
                )
                record.image.save(photo.file.name, photo.file, save=False)
                record.save()
            for url in media_urls:
                url = (url or "").strip()
                if url.startswith(("http://", "https://")) and len(url) <= 200:
                    CasePhoto.objects.create(case=case, url=url)
            if case.reporter_id:
                CaseSupport.objects.create(case=case, user=case.reporter)
                CaseFollow.objects.get_or_create(case=case, user=case.reporter)
            note = CaseNote.objects.create(
                case=case,
                author=filed_by or case.reporter,
                kind=CaseNote.Kind.CREATED,
                text=FILED_VIA.get(case.channel, "Filed."),
                status_to=Status.OPEN,
                created_at=now,
            )
            _recount_support(case)
            _audit(
                case,
                filed_by or reporter,
                "filed",
                channel=channel,
                filed_for=case.reporter_id,
                filed_by=case.filed_by_id,
                api_client=api_client,
                thread=thread.pk if thread else None,
            )
            from .forwarding import backend

            backend().case_filed(case)
            _publish(case, "case.created", note)
    except IntegrityError:
        if idempotency_key:
            existing = Case.objects.filter(idempotency_key=idempotency_key).first()
            if existing is not None:
                return Filed(existing, False)
        if thread is not None:
            existing = open_case_for_thread(thread)
            if existing is not None:
                return Filed(existing, False)
        raise
    return Filed(case, True)


# Escalation from a thread ---------------------------------------------------------------------


def open_case_for_thread(thread: Thread) -> Case | None:
    """The open case of a thread (escalated from it, or linked to it by a merge)."""
    return (
        Case.objects.exclude(status=Status.CLOSED)
        .filter(Q(thread=thread) | Q(threads=thread))
        .order_by("created_at")
        .first()
    )


def suggested_service_type(thread: Thread) -> ServiceType | None:
    """The active type whose forum tags and keywords best match the thread's tags and title (the
    category breaks ties), or the only type of the thread's category. ``None`` when nothing
    points to one type: the person chooses rather than being steered to a wrong department."""
    tags = {t.lower() for t in thread.tags.names()}
    words = set(re.findall(r"[a-z]+", thread.title.lower()))
    types = list(ServiceType.objects.filter(is_active=True))
    best, best_score = None, 0.0
    for service_type in types:
        score = 2 * len(tags & set(service_type.tag_list))
        score += len(words & {k.lower() for k in service_type.keyword_list})
        if score and service_type.forum_category_id == thread.category_id:
            score += 0.5
        if score > best_score:
            best, best_score = service_type, score
    if best is not None:
        return best
    same_category = [t for t in types if t.forum_category_id == thread.category_id]
    return same_category[0] if len(same_category) == 1 else None


def escalation_draft(thread: Thread) -> dict:
    """What the escalation form is prefilled with."""
    return {
        "service_type": suggested_service_type(thread),
        "description": (
            f"{thread.title}\n\n{plain_text(thread.body, DESCRIPTION_MAX - 400)}\n\n"
            f"From the neighborhood discussion: {absolute(thread.get_absolute_url())}"
        )[:DESCRIPTION_MAX],
        "lat": thread.lat,
        "lon": thread.lon,
        "photos": list(thread.photos.all()),
    }


def escalate_thread(
    thread: Thread,
    *,
    user,
    service_type: ServiceType,
    description: str = "",
    answers: Mapping | None = None,
    lat=None,
    lon=None,
    address: str = "",
    idempotency_key: str = "",
    channel: str = Channel.WEB,
) -> Filed:
    """Turn a discussion into a case. One open case per thread: a second escalation (a double
    click, a retry, two organizers at once) gets the first case back, ``created=False``."""
    if not can_escalate(user, thread):
        raise PermissionDenied(
            "The thread's author, an organizer of the neighborhood or city staff can escalate it."
        )
    if not thread.is_listed:
        raise PermissionDenied("This thread is not open.")
    existing = open_case_for_thread(thread)
    if existing is not None:
        return Filed(existing, False)
    draft = escalation_draft(thread)
    if lat in (None, "") and lon in (None, ""):
        lat, lon = draft["lat"], draft["lon"]
    if lat is None and not address:
        point = thread.neighborhood
        from shapely.geometry import shape

        centre = shape(point.boundary).representative_point()
        lat, lon = centre.y, centre.x
        address = address or f"{thread.neighborhood.name} (no exact spot given)"
    filed = file_case(
        service_type=service_type,
        description=description or draft["description"],
        lat=lat,
        lon=lon,
        address=address,
        answers=answers,
        reporter=thread.author if thread.author_id else user,
        filed_by=user if user.pk != thread.author_id else None,
        channel=channel,
        thread=thread,
        idempotency_key=idempotency_key,
    )
    if filed.created:
        case = filed.case
        for photo in draft["photos"]:
            CasePhoto.objects.create(
                case=case, image=photo.image.name, width=photo.width, height=photo.height
            )
        _audit(case, user, "escalated", thread=thread.pk)
        _notify(
            case,
            kind="case_update",
            title=f"“{thread.title}” is now 311 case {case.tracking_number}",
            body=f"{case.department.name} will handle it; expected by "
            f"{timezone.localtime(case.expected_at):%-d %B}.",
            key=f"case:{case.pk}:escalated",
            exclude=[user],
        )
    return filed


def _recount_support(case: Case) -> None:
    """Distinct supporters: "me too" on the case plus supporters of every linked thread."""
    User = get_user_model()
    threads = _thread_ids(case)
    people = Q(pk__in=CaseSupport.objects.filter(case=case).values("user_id"))
    if threads:
        people |= Q(
            pk__in=ThreadVote.objects.filter(thread_id__in=threads, reply=None).values("user_id")
        )
    supporters = User.objects.filter(people)
    total = supporters.count()
    verified = supporters.filter(
        neighborhood_memberships__neighborhood_id=case.neighborhood_id,
        neighborhood_memberships__verified_at__isnull=False,
    ).count()
    Case.objects.filter(pk=case.pk).update(supporter_count=total, verified_supporter_count=verified)
    case.supporter_count, case.verified_supporter_count = total, verified


def thread_support_changed(thread: Thread) -> None:
    """Forums hook: keep the open cases of a thread counting its supporters."""
    for case in Case.objects.filter(Q(thread=thread) | Q(threads=thread)).distinct():
        before = (case.supporter_count, case.verified_supporter_count)
        _recount_support(case)
        if (case.supporter_count, case.verified_supporter_count) != before:
            _publish(case, "case.support")


def support(case: Case, *, user, ip: str = "") -> Case:
    """ "Me too": add one's support (idempotent); the person follows the case."""
    if not is_authenticated(user):
        raise PermissionDenied("Sign in to support a case.")
    if not has_verified_email(user):
        raise PermissionDenied("Verify your e-mail address first.")
    case = _fresh(case)
    if not case.is_open:
        raise ValidationError({"case": "This case is closed; report it again if it came back."})
    limit, period = app_settings.CASE_SUPPORT_RATE
    check_rate("case-support", f"u{user.pk}", limit=limit, period=period)
    with transaction.atomic():
        _, created = CaseSupport.objects.get_or_create(case=case, user=user)
        CaseFollow.objects.get_or_create(case=case, user=user)
        if created:
            _recount_support(case)
            Case.objects.filter(pk=case.pk).update(updated_at=timezone.now())
            _publish(case, "case.support")
    case.refresh_from_db()
    return case


def withdraw_support(case: Case, *, user) -> Case:
    if not is_authenticated(user):
        raise PermissionDenied("Sign in first.")
    if case.reporter_id == user.pk:
        raise ValidationError({"case": "You reported this case; your support stays with it."})
    with transaction.atomic():
        if CaseSupport.objects.filter(case=case, user=user).delete()[0]:
            _recount_support(case)
            _publish(case, "case.support")
    case.refresh_from_db()
    return case


def nearby_open_cases(
    service_type: ServiceType, lat: float, lon: float, *, radius_m: float | None = None
) -> list[tuple[Case, float]]:
    """Open cases of the same type within ``radius_m`` (nearest first): "me too" candidates."""
    radius = radius_m or app_settings.CASE_NEARBY_M
    dlat = radius / METERS_PER_DEGREE
    dlon = radius / (METERS_PER_DEGREE * max(0.01, math.cos(math.radians(lat))))
    rows = (
        Case.objects.exclude(status=Status.CLOSED)
        .filter(
            service_type=service_type,
            lat__range=(lat - dlat, lat + dlat),
            lon__range=(lon - dlon, lon + dlon),
        )
        .select_related("service_type", "department", "neighborhood")[:200]
    )
    found = [(case, distance_m(lat, lon, case.lat, case.lon)) for case in rows]
    return sorted([(c, d) for c, d in found if d <= radius], key=lambda item: item[1])[:10]


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6_371_000 * math.asin(min(1.0, math.sqrt(a)))


# Working a case -----------------------------------------------------------------------------

OPEN_STATUSES = (Status.OPEN, Status.ACKNOWLEDGED, Status.IN_PROGRESS, Status.SCHEDULED)


def _fresh(case: Case) -> Case:
    """The case as stored now (callers may hold an older copy)."""
    return Case.objects.select_related("service_type", "department", "neighborhood").get(pk=case.pk)


def _locked(case: Case) -> Case:
    return (
        Case.objects.select_for_update(of=("self",))
        .select_related("service_type", "department", "neighborhood")
        .get(pk=case.pk)
    )


def change_status(
    case: Case,
    *,
    user,
    status: str,
    note: str = "",
    resolution: str = "",
    duplicate_of: Case | str | None = None,
    responsible_party: str = "",
    scheduled_for: date | None = None,
    public: bool = True,
) -> Case:
    """Move a case along open → acknowledged → in progress → scheduled → closed.

    Closing needs a resolution (a duplicate names its original; "not the city's" names whose);
    scheduling needs a date. Closed cases come back only by :func:`reopen`.
    """
    _ensure_work(user, case)
    if status not in Status.values:
        raise ValidationError({"status": "Unknown status."})
    note = _CONTROL.sub("", note or "").strip()[:4000]
    with transaction.atomic():
        case = _locked(case)
        if case.status == Status.CLOSED:
            raise ValidationError({"status": "This case is closed; reopen it first."})
        if status == case.status and status != Status.SCHEDULED:
            raise ValidationError({"status": f"The case is already {case.get_status_display()}."})
        now = timezone.now()
        fields = {"status": status, "updated_at": now}
        if status == Status.SCHEDULED:
            if not scheduled_for:
                raise ValidationError({"scheduled_for": "Give the date the work is scheduled."})
            fields["scheduled_for"] = scheduled_for
        if status != Status.OPEN and case.acknowledged_at is None:
            fields["acknowledged_at"] = now
        if status == Status.CLOSED:
            fields.update(_closing_fields(case, resolution, duplicate_of, responsible_party, note))
            fields["closed_at"] = now
        Case.objects.filter(pk=case.pk).update(**fields)
        previous = case.status
        for key, value in fields.items():
            setattr(case, key, value)
        entry = CaseNote.objects.create(
            case=case,
            author=user,
            kind=CaseNote.Kind.STATUS,
            text=note,
            is_public=public,
            status_from=previous,
            status_to=status,
            created_at=now,
        )
        _audit(
            case,
            user,
            "status",
            note,
            status_from=previous,
            status_to=status,
            resolution=fields.get("resolution", ""),
        )
        if public:
            _publish(case, "case.updated", entry)
            label = case.get_status_display()
            if status == Status.CLOSED:
                label = f"Closed: {case.get_resolution_display()}"
            _notify(
                case,
                kind="case_update",
                title=f"Case {case.tracking_number} ({case.service_type.name}): {label}",
                body=note,
                key=f"case:{case.pk}:note:{entry.pk}",
                exclude=[user],
            )
            if status == Status.CLOSED:
                _invite_survey(case)
    return case


def _closing_fields(case: Case, resolution, duplicate_of, responsible_party, note) -> dict:
    if resolution not in Resolution.values:
        raise ValidationError({"resolution": "Choose how the case was resolved."})
    fields = {
        "resolution": resolution,
        "resolution_note": note,
        "duplicate_of": None,
        "responsible_party": "",
    }
    if resolution == Resolution.DUPLICATE:
        original = duplicate_of
        if isinstance(original, str):
            original = find_case(original)
        if original is None or original.pk == case.pk:
            raise ValidationError({"duplicate_of": "Give the tracking number of the original."})
        fields["duplicate_of"] = original
    if resolution == Resolution.NOT_CITY:
        party = " ".join((responsible_party or "").split())[:200]
        if not party:
            raise ValidationError({"responsible_party": "Say whose responsibility it is."})
        fields["responsible_party"] = party
    return fields


def _invite_survey(case: Case) -> None:
    people = supporter_ids(case)
    if people:
        notify_many(
            sorted(people),
            kind="case_survey",
            title=f"How did the city do on case {case.tracking_number}?",
            key=f"case:{case.pk}:survey:{case.closed_at.timestamp():.0f}",
            body="Two quick questions: was it fixed, and how satisfied are you?",
            url=case.get_absolute_url() + "#survey",
            severity=Severity.INFO,
        )


def add_note(case: Case, *, user, text: str, public: bool = True) -> CaseNote:
    """A note by staff: public ones reach everyone following the case, internal ones staff only."""
    _ensure_work(user, case)
    text = _CONTROL.sub("", text or "").strip()
    if not text:
        raise ValidationError({"text": "Write the note."})
    if len(text) > 4000:
        raise ValidationError({"text": "Keep it to 4,000 characters."})
    with transaction.atomic():
        now = timezone.now()
        note = CaseNote.objects.create(
            case=case,
            author=user,
            kind=CaseNote.Kind.NOTE,
            text=text,
            is_public=public,
            created_at=now,
        )
        if public:  # ``updated_at`` is the last public change (Open311's updated_datetime)
            Case.objects.filter(pk=case.pk).update(updated_at=now)
        _audit(case, user, "note", text[:200], public=public, note=note.pk)
        if public:
            _publish(case, "case.note", note)
            _notify(
                case,
                kind="case_update",
                title=f"Update on case {case.tracking_number} ({case.service_type.name})",
                body=text,
                key=f"case:{case.pk}:note:{note.pk}",
                exclude=[user],
            )
    return note


def assign(case: Case, *, user, assignee, reason: str = "") -> Case:
    """Give the case to one person of its department (or nobody, with ``None``)."""
    _ensure_work(user, case)
    if assignee is not None:
        record = staff_record(assignee)
        if record is None or (
            record.department_id != case.department_id and not record.is_supervisor
        ):
            raise ValidationError({"assignee": f"Choose someone in {case.department.name}."})
    with transaction.atomic():
        # Internal: the public ``updated_at`` stays as it was.
        Case.objects.filter(pk=case.pk).update(assigned_to=assignee)
        CaseNote.objects.create(
            case=case,
            author=user,
            kind=CaseNote.Kind.ASSIGNED,
            text=f"Assigned to {assignee.get_full_name() or assignee.username}"
            if assignee
            else "Unassigned",
            is_public=False,
        )
        _audit(case, user, "assigned", reason, assignee=getattr(assignee, "pk", None))
    case.refresh_from_db()
    return case


def can_reopen(user, case: Case, now: datetime | None = None) -> bool:
    if case.status != Status.CLOSED or not case.closed_at or not is_authenticated(user):
        return False
    window = timedelta(days=app_settings.CASE_CONTEST_DAYS)
    if (now or timezone.now()) - case.closed_at > window:
        return False
    return is_supporter(case, user)


def reopen(case: Case, *, user, comment: str, photo=None, contest: bool = True) -> Case:
    """The reporter or a supporter disputes a closure within the window: the case goes back to
    the department, counted as contested."""
    case = _fresh(case)
    if not can_reopen(user, case):
        raise PermissionDenied(
            f"Only the reporter or a supporter can reopen a case, within "
            f"{app_settings.CASE_CONTEST_DAYS} days of its closing."
        )
    comment = _CONTROL.sub("", comment or "").strip()
    if not comment:
        raise ValidationError({"comment": "Say what is still wrong."})
    if len(comment) > 2000:
        raise ValidationError({"comment": "Keep it to 2,000 characters."})
    processed = None
    if photo is not None:
        try:
            processed = process_photo(
                photo,
                max_bytes=app_settings.CASE_PHOTO_MAX_BYTES,
                max_side=app_settings.CASE_PHOTO_MAX_SIDE,
            )
        except ValidationError as exc:
            raise ValidationError({"photo": exc.messages}) from exc
    with transaction.atomic():
        case = _locked(case)
        now = timezone.now()
        Case.objects.filter(pk=case.pk).update(
            status=Status.OPEN,
            resolution="",
            closed_at=None,
            updated_at=now,
            reopened_count=F("reopened_count") + 1,
            contested_count=F("contested_count") + (1 if contest else 0),
            expected_at=expected_at(case.service_type, now),
        )
        note = CaseNote(
            case=case,
            author=user,
            kind=CaseNote.Kind.CONTESTED if contest else CaseNote.Kind.REOPENED,
            text=comment,
            status_from=Status.CLOSED,
            status_to=Status.OPEN,
            created_at=now,
        )
        if processed is not None:
            note.photo.save(processed.file.name, processed.file, save=False)
        note.save()
        _audit(case, user, "contested" if contest else "reopened", comment[:200])
        case.refresh_from_db()
        _publish(case, "case.updated", note)
        staff = get_user_model().objects.filter(city_staff__department=case.department_id)
        if case.assigned_to_id:
            staff = staff.filter(pk=case.assigned_to_id)
        notify_many(
            list(staff.values_list("pk", flat=True)),
            kind="case_contested",
            title=f"Closure of case {case.tracking_number} contested",
            key=f"case:{case.pk}:contested:{note.pk}",
            body=comment,
            url=case.get_absolute_url(),
            severity=Severity.ADVISORY,
        )
    return case


def answer_survey(
    case: Case, *, user, fixed: bool, satisfaction: int, comment: str = ""
) -> SurveyResponse:
    """One answer per person, from the reporter or a supporter of a closed case."""
    case = _fresh(case)
    if case.status != Status.CLOSED:
        raise ValidationError({"case": "The survey opens when the case is closed."})
    if not is_supporter(case, user):
        raise PermissionDenied("Only the reporter and supporters of this case are asked.")
    try:
        satisfaction = int(satisfaction)
    except (TypeError, ValueError):
        satisfaction = 0
    if not 1 <= satisfaction <= 5:
        raise ValidationError({"satisfaction": "Choose from 1 (very unhappy) to 5 (very happy)."})
    comment = _CONTROL.sub("", comment or "").strip()
    if len(comment) > 2000:
        raise ValidationError({"comment": "Keep it to 2,000 characters."})
    try:
        with transaction.atomic():
            return SurveyResponse.objects.create(
                case=case,
                user=user,
                fixed=bool(fixed),
                satisfaction=satisfaction,
                comment=comment,
            )
    except IntegrityError:
        raise ValidationError({"case": "You have already answered for this case."}) from None


def merge_cases(duplicate: Case, original: Case, *, user, reason: str) -> Case:
    """Close ``duplicate`` as a duplicate of ``original``, carrying supporters, followers and
    threads over exactly once."""
    _ensure_work(user, duplicate)
    _ensure_work(user, original)
    reason = " ".join((reason or "").split())
    if not reason:
        raise ValidationError({"reason": "Say why: it goes into the audit log."})
    if duplicate.pk == original.pk:
        raise ValidationError({"original": "A case cannot be merged into itself."})
    with transaction.atomic():
        locked = {
            c.pk: c
            for c in Case.objects.select_for_update()
            .filter(pk__in=[duplicate.pk, original.pk])
            .order_by("pk")
        }
        duplicate, original = locked[duplicate.pk], locked[original.pk]
        if original.status == Status.CLOSED:
            raise ValidationError({"original": "Merge into an open case."})
        if duplicate.status == Status.CLOSED:
            raise ValidationError({"duplicate": "That case is already closed."})
        supporters = CaseSupport.objects.filter(case=original).values("user_id")
        CaseSupport.objects.filter(case=duplicate).exclude(user_id__in=supporters).update(
            case=original
        )
        followers = CaseFollow.objects.filter(case=original).values("user_id")
        CaseFollow.objects.filter(case=duplicate).exclude(user_id__in=followers).update(
            case=original
        )
        if (
            duplicate.reporter_id
            and not CaseSupport.objects.filter(
                case=original, user_id=duplicate.reporter_id
            ).exists()
        ):
            CaseSupport.objects.create(case=original, user_id=duplicate.reporter_id)
        threads = _thread_ids(duplicate)
        if threads:
            original.threads.add(*threads)
        for photo in duplicate.photos.all():
            CasePhoto.objects.create(
                case=original,
                image=photo.image.name,
                url=photo.url,
                width=photo.width,
                height=photo.height,
                added_by=photo.added_by,
            )
        _recount_support(original)
        _recount_support(duplicate)
        CaseNote.objects.create(
            case=original,
            author=user,
            kind=CaseNote.Kind.MERGED,
            text=f"Case {duplicate.tracking_number} was merged into this one.",
        )
        _audit(original, user, "merged", reason, duplicate=duplicate.tracking_number)
    change_status(
        duplicate,
        user=user,
        status=Status.CLOSED,
        resolution=Resolution.DUPLICATE,
        duplicate_of=original,
        note=f"Duplicate of {original.tracking_number}: {reason}",
    )
    original.refresh_from_db()
    _publish(original, "case.updated")
    return original


# Lists --------------------------------------------------------------------------------------


def public_cases() -> QuerySet[Case]:
    return Case.objects.select_related("service_type", "department", "neighborhood")


def filter_cases(
    cases: QuerySet[Case],
    *,
    status: str = "",
    service_code: str = "",
    neighborhood: str = "",
    near: tuple[float, float, float] | None = None,
    overdue: bool = False,
    contested: bool = False,
    channel: str = "",
) -> QuerySet[Case]:
    """Filters shared by the tracker, the API and the case desk. ``status`` may be ``open``
    (every open state) or one status; ``near`` is (lat, lon, radius m), bounding box."""
    if status == "open":
        cases = cases.exclude(status=Status.CLOSED)
    elif status:
        if status not in Status.values:
            raise ValidationError({"status": f"Choose open or one of {', '.join(Status.values)}."})
        cases = cases.filter(status=status)
    if service_code:
        cases = cases.filter(service_type__code__in=service_code.split(","))
    if neighborhood:
        cases = cases.filter(neighborhood__slug=neighborhood)
    if near is not None:
        lat, lon, radius = near
        dlat = radius / METERS_PER_DEGREE
        dlon = radius / (METERS_PER_DEGREE * max(0.01, math.cos(math.radians(lat))))
        cases = cases.filter(
            lat__range=(lat - dlat, lat + dlat), lon__range=(lon - dlon, lon + dlon)
        )
    if overdue:
        cases = cases.exclude(status=Status.CLOSED).filter(expected_at__lt=timezone.now())
    if contested:
        cases = cases.filter(contested_count__gt=0)
    if channel:
        cases = cases.filter(channel=channel)
    return cases


def desk_cases(user) -> QuerySet[Case]:
    """The cases a staff member works: their department's, or all for a supervisor."""
    if is_supervisor(user):
        return public_cases()
    record = staff_record(user)
    if record is None:
        raise PermissionDenied("The case desk is for city staff.")
    return public_cases().filter(department_id=record.department_id)


def my_cases(user) -> QuerySet[Case]:
    if not is_authenticated(user):
        return Case.objects.none()
    return (
        public_cases()
        .filter(
            Q(reporter=user) | Q(pk__in=CaseSupport.objects.filter(user=user).values("case_id"))
        )
        .distinct()
    )


def timeline(case: Case, *, staff: bool = False) -> QuerySet[CaseNote]:
    notes = case.notes.select_related("author__city_staff")
    return notes if staff else notes.filter(is_public=True)


@dataclass
class LocationHistory:
    cases: list[tuple[Case, float]]
    threads: list[tuple[Thread, float]]


def location_history(lat: float, lon: float, *, radius_m: float = 100) -> LocationHistory:
    """Every case and thread within ``radius_m`` of a point, nearest first (staff only)."""
    lat, lon = validate_point(lat, lon)
    dlat = radius_m / METERS_PER_DEGREE
    dlon = radius_m / (METERS_PER_DEGREE * max(0.01, math.cos(math.radians(lat))))
    box = {"lat__range": (lat - dlat, lat + dlat), "lon__range": (lon - dlon, lon + dlon)}
    cases = [
        (c, distance_m(lat, lon, c.lat, c.lon))
        for c in public_cases().filter(**box).order_by("-created_at")[:500]
    ]
    threads = [
        (t, distance_m(lat, lon, t.lat, t.lon))
        for t in Thread.objects.filter(**box, deleted_at__isnull=True)
        .select_related("neighborhood")
        .order_by("-created_at")[:500]
    ]
    return LocationHistory(
        cases=sorted([x for x in cases if x[1] <= radius_m], key=lambda x: x[1]),
        threads=sorted([x for x in threads if x[1] <= radius_m], key=lambda x: x[1]),
    )


def departments_of(user) -> list[Department]:
    if is_supervisor(user):
        return list(Department.objects.all())
    record = staff_record(user)
    return [record.department] if record else []


def staff_of(case: Case) -> QuerySet:
    return get_user_model().objects.filter(city_staff__department=case.department_id)


def forwarding_state(case: Case) -> OutboxMessage | None:
    return OutboxMessage.objects.filter(case=case).first()


def record_city_update(
    case: Case,
    *,
    status: str = "",
    resolution: str = "",
    note: str = "",
    at: datetime | None = None,
    scheduled_for: date | None = None,
    expected: datetime | None = None,
    data: Mapping | None = None,
) -> CaseNote | None:
    """A change made in the city's own system to a forwarded case (no one here made it).

    ``status`` moves the case (a closed case reopens; closing takes ``resolution``, fixed unless
    given); ``note`` is shown publicly, as the status change's note or as a note of its own;
    ``at`` is when the city made the change (kept as the closing or acknowledging time);
    ``expected`` replaces the expected date quietly. Audited as ``city_update`` with ``data``,
    announced and notified like a change by staff. Returns the timeline entry, or ``None`` when
    there was nothing to show.
    """
    if status and status not in Status.values:
        raise ValidationError({"status": "Unknown status."})
    if resolution and resolution not in Resolution.values:
        raise ValidationError({"resolution": "Unknown resolution."})
    note = _CONTROL.sub("", note or "").strip()[:4000]
    with transaction.atomic():
        case = _locked(case)
        now = timezone.now()
        when = at if at is not None and case.created_at <= at <= now else now
        previous = case.status
        moving = bool(status) and status != previous
        fields: dict = {}
        if expected is not None and case.expected_at != expected and status != Status.CLOSED:
            fields["expected_at"] = expected
        if moving:
            fields["status"] = status
            if status == Status.CLOSED:
                fields.update(
                    resolution=resolution or Resolution.FIXED,
                    resolution_note=note,
                    duplicate_of=None,
                    responsible_party="",
                    closed_at=when,
                )
            elif previous == Status.CLOSED:
                fields.update(
                    resolution="",
                    resolution_note="",
                    closed_at=None,
                    reopened_count=F("reopened_count") + 1,
                )
                fields.setdefault("expected_at", expected_at(case.service_type, now))
            if status != Status.OPEN and case.acknowledged_at is None:
                fields["acknowledged_at"] = when
            if status == Status.SCHEDULED:
                fields["scheduled_for"] = scheduled_for or timezone.localdate(when)
        if not (moving or note):
            if fields:
                Case.objects.filter(pk=case.pk).update(**fields)
            return None
        fields["updated_at"] = now
        Case.objects.filter(pk=case.pk).update(**fields)
        case.refresh_from_db()
        entry = CaseNote.objects.create(
            case=case,
            kind=CaseNote.Kind.STATUS if moving else CaseNote.Kind.NOTE,
            text=note,
            is_public=True,
            status_from=previous if moving else "",
            status_to=status if moving else "",
            created_at=now,
        )
        _audit(
            case,
            None,
            "city_update",
            note,
            status_from=previous if moving else "",
            status_to=status if moving else "",
            resolution=case.resolution if moving else "",
            **dict(data or {}),
        )
        _publish(case, "case.updated" if moving else "case.note", entry)
        if moving:
            label = case.get_status_display()
            if status == Status.CLOSED:
                label = f"Closed: {case.get_resolution_display()}"
            title = f"Case {case.tracking_number} ({case.service_type.name}): {label}"
        else:
            title = f"Update on case {case.tracking_number} ({case.service_type.name})"
        _notify(
            case, kind="case_update", title=title, body=note, key=f"case:{case.pk}:note:{entry.pk}"
        )
        if moving and status == Status.CLOSED:
            _invite_survey(case)
    return entry
