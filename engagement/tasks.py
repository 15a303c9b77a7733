"""Background work of 311 cases: the Open311 outbox and status polling (docs/forwarding.md).

As in :mod:`alerts.tasks`, every job has a plain function that does the work (tests and
``manage.py forward_cases`` call them) and a task for the worker; tasks take JSON arguments and
never raise.

An outbox message moves through these states:

- ``pending``: not sent yet, or known not to have reached the city; due at ``next_attempt_at``.
- ``sending``: claimed by a worker (``next_attempt_at`` is then the end of its lease), or sent
  without a readable answer. Either way the city may hold the request, so before anything is sent
  again the city's request list is searched for the case's reference; only a conclusive "not
  there" allows another POST.
- ``sent``: the city's ``service_request_id`` (or a token to exchange for one) is stored; its
  status is polled from then on.
- ``failed``: given up, with the reason kept and an internal note on the case for staff.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from django.core.exceptions import ImproperlyConfigured
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone
from django_tasks import task

from . import services
from .conf import app_settings
from .forwarding import (
    CLOSED_CITY_STATUSES,
    CannotForward,
    Open311Forwarder,
    city_status_key,
    open311_forwarder,
    parse_w3c,
)
from .models import Case, CaseAudit, CaseNote, OutboxMessage
from .open311_client import (
    NotDelivered,
    Open311Client,
    Open311Error,
    OutcomeUnknown,
    Rejected,
    text,
)

logger = logging.getLogger(__name__)

State = OutboxMessage.State
# How long a worker holds a claimed message: longer than any one attempt can take (a few
# requests, each with its own timeout). A message still "sending" after it was not finished.
LEASE = timedelta(minutes=10)
MAX_BACKOFF = timedelta(hours=6)
# Tolerance between this site's clock and the city's when searching by filing time.
CLOCK_SKEW = timedelta(minutes=15)
SEARCH_WINDOW = timedelta(days=90)
# A forwarded case's status is asked for at most this often.
POLL_EVERY = timedelta(minutes=5)
SWEEP_LIMIT = 1000
POLL_LIMIT = 5000
TOKEN_LIMIT = 200


# Sending -----------------------------------------------------------------------------------


def backoff(attempts: int) -> timedelta:
    """Wait after attempt ``attempts``: the retry interval doubled each time, plus up to a quarter
    more at random (so messages that failed together do not come back together)."""
    seconds = app_settings.OPEN311_FORWARD_RETRY_SECONDS * (2 ** max(attempts - 1, 0))
    seconds = min(seconds, MAX_BACKOFF.total_seconds())
    return timedelta(seconds=seconds * (1 + random.random() / 4))


def enqueue_send(
    message_id: int, not_before: datetime | None = None, *, now: datetime | None = None
) -> bool:
    """Enqueue the send task of one message (at ``not_before`` if the queue can defer).

    A queue that cannot defer gets nothing for a message that is not due yet: the periodic
    sweep enqueues it when it is. Never raises.
    """
    now = now or timezone.now()
    try:
        if not_before is not None and not_before > now:
            if not send_message_task.get_backend().supports_defer:
                return False
            send_message_task.using(run_after=not_before).enqueue(message_id)
        else:
            send_message_task.enqueue(message_id)
    except Exception:
        logger.exception("Could not enqueue outbox message %s; the periodic sweep will", message_id)
        return False
    return True


def _claim(message_id: int, now: datetime) -> tuple[OutboxMessage, bool] | str:
    """Take a due message for this worker: ``(message, uncertain)``, or the state it is in.

    ``uncertain`` is true when it was found "sending": an earlier attempt may have reached the
    city. The claim is committed before anything is sent.
    """
    lock = {"of": ("self",)} if connection.features.has_select_for_update_of else {}
    if connection.features.has_select_for_update_skip_locked:
        lock["skip_locked"] = True
    with transaction.atomic():
        message = (
            OutboxMessage.objects.select_for_update(**lock)
            .select_related("case__service_type")
            .filter(
                pk=message_id, state__in=(State.PENDING, State.SENDING), next_attempt_at__lte=now
            )
            .first()
        )
        if message is None:
            state = OutboxMessage.objects.filter(pk=message_id).values_list("state", flat=True)
            return state.first() or "missing"
        uncertain = message.state == State.SENDING
        claimed = OutboxMessage.objects.filter(
            pk=message.pk, state=message.state, attempts=message.attempts
        ).update(state=State.SENDING, attempts=F("attempts") + 1, next_attempt_at=now + LEASE)
        if not claimed:
            return State.SENDING
    message.state = State.SENDING
    message.attempts += 1
    message.next_attempt_at = now + LEASE
    return message, uncertain


def send_message(message_id: int, *, now: datetime | None = None) -> str:
    """Send one due outbox message to the city; return its state afterwards.

    At most one worker handles a message at a time (the claim), and a message whose earlier
    attempt may have reached the city is looked for there before it is sent again.
    """
    now = now or timezone.now()
    claim = _claim(message_id, now)
    if isinstance(claim, str):
        return claim
    message, uncertain = claim
    forwarder = open311_forwarder()
    limit = app_settings.OPEN311_FORWARD_MAX_ATTEMPTS
    try:
        client = forwarder.client()
    except ImproperlyConfigured as exc:
        return _later(message, now, str(exc), uncertain=uncertain)
    case = message.case

    if uncertain:
        try:
            record, conclusive = find_at_city(forwarder, client, message, now=now)
        except Open311Error as exc:
            record, conclusive = None, False
            reason = f"could not search the city's requests: {exc.message}"
        else:
            reason = "the city's request list cannot show whether it arrived"
        if record is not None:
            return _delivered(message, record, now, found=True)
        if not conclusive and not app_settings.OPEN311_FORWARD_IDEMPOTENT:
            if message.attempts > limit:
                return _give_up(
                    message,
                    now,
                    f"It may or may not have reached the city ({reason}); check with the city "
                    "before filing it there again.",
                )
            return _later(
                message, now, f"Outcome of the last send unknown; {reason}.", uncertain=True
            )
    if message.attempts > limit:
        return _give_up(
            message, now, f"Not delivered after {limit} attempts. Last error: {message.last_error}"
        )

    try:
        fields = forwarder.request_fields(case, client)
    except CannotForward as exc:
        return _give_up(message, now, str(exc))
    except Open311Error as exc:
        # Only reads so far (services, definitions): nothing was filed.
        return _later(message, now, exc.message, uncertain=False)
    try:
        item = client.create_request(fields, idempotency_key=forwarder.reference(case))
    except Rejected as exc:
        return _give_up(message, now, f"The city refused it: {exc.message}", errors=exc.errors)
    except NotDelivered as exc:
        return _later(message, now, exc.message, uncertain=False)
    except OutcomeUnknown as exc:
        return _later(message, now, exc.message, uncertain=True)
    return _delivered(message, item, now)


def find_at_city(
    forwarder: Open311Forwarder, client: Open311Client, message: OutboxMessage, *, now: datetime
) -> tuple[dict | None, bool]:
    """Look for the message's case among the city's requests filed since it was queued.

    Returns ``(record, True)`` when found, ``(None, True)`` when the city's list shows it is not
    there, and ``(None, False)`` when the list cannot tell: incomplete, without descriptions, or
    a service whose requests appear only later (``batch``) or never (``blackbox``).
    """
    case = message.case
    code = case.service_type.code
    end = now + CLOCK_SKEW
    start = max(message.created_at - CLOCK_SKEW, end - SEARCH_WINDOW)
    rows, complete = client.search(service_code=code, start=start, end=end)
    mine = [row for row in rows if forwarder.is_ours(row, case)]
    numbered = [row for row in mine if text(row.get("service_request_id"))]
    if numbered:
        numbered.sort(key=lambda row: text(row.get("requested_datetime")))
        return numbered[0], True
    if mine:
        return None, False  # there, but not numbered yet: look again later
    try:
        service = client.service(code) or {}
    except Rejected:
        service = {}
    delayed = text(service.get("type")).lower() in ("batch", "blackbox")
    blind = bool(rows) and not any(text(row.get("description")) for row in rows)
    return None, complete and not blind and not delayed


def _later(message: OutboxMessage, now: datetime, error: str, *, uncertain: bool) -> str:
    """Try again after a backoff; give up once the attempts are spent, unless the city may hold
    the request (then the next attempt only looks for it)."""
    if not uncertain and message.attempts >= app_settings.OPEN311_FORWARD_MAX_ATTEMPTS:
        return _give_up(
            message,
            now,
            f"Not delivered after {message.attempts} attempts. Last error: {error}",
        )
    retry_at = now + backoff(message.attempts)
    state = State.SENDING if uncertain else State.PENDING
    OutboxMessage.objects.filter(pk=message.pk).update(
        state=state, last_error=error[:2000], next_attempt_at=retry_at
    )
    logger.info("Outbox message %s: %s; again at %s", message.pk, error, retry_at)
    enqueue_send(message.pk, retry_at, now=now)
    return state


def _give_up(
    message: OutboxMessage,
    now: datetime,
    error: str,
    *,
    errors: Iterable[tuple[str, str]] = (),
) -> str:
    errors = list(errors)
    with transaction.atomic():
        OutboxMessage.objects.filter(pk=message.pk).update(
            state=State.FAILED, last_error=error[:2000], next_attempt_at=now
        )
        CaseNote.objects.create(
            case=message.case,
            kind=CaseNote.Kind.FORWARDED,
            is_public=False,
            text=f"Not forwarded to the city's 311 system: {error}"[:4000],
            created_at=now,
        )
        CaseAudit.objects.create(
            case=message.case,
            action="forward_failed",
            reason=error[:500],
            data={
                "attempts": message.attempts,
                "errors": [{"code": code, "description": d} for code, d in errors],
            },
            created_at=now,
        )
    logger.warning("Outbox message %s failed for good: %s", message.pk, error)
    return State.FAILED


def _delivered(message: OutboxMessage, item: dict, now: datetime, *, found: bool = False) -> str:
    """Store what the city answered (or the record found there) and tell staff."""
    number = text(item.get("service_request_id"))[:100]
    token = text(item.get("token"))[:100]
    notice = text(item.get("service_notice"))
    with transaction.atomic():
        OutboxMessage.objects.filter(pk=message.pk).update(
            state=State.SENT,
            remote_id=number,
            remote_token=token,
            sent_at=now,
            last_error="",
            next_attempt_at=now,
        )
        if number:
            Case.objects.filter(pk=message.case_id).update(external_id=number)
        if number:
            said = f"as request {number}"
        elif token:
            said = "; the city will give its request number later"
        else:
            said = "; the city gives no request number for this service"
        how = "Found at" if found else "Forwarded to"
        note = f"{how} the city's 311 system {said}."
        if notice:
            note = f"{note} The city says: {notice}"
        CaseNote.objects.create(
            case=message.case,
            kind=CaseNote.Kind.FORWARDED,
            is_public=False,
            text=note[:4000],
            created_at=now,
        )
        CaseAudit.objects.create(
            case=message.case,
            action="forwarded",
            reason="found at the city after an unanswered attempt" if found else "",
            data={"service_request_id": number, "token": token, "attempts": message.attempts},
            created_at=now,
        )
    return State.SENT


def due_messages(now: datetime, limit: int = SWEEP_LIMIT) -> list[int]:
    return list(
        OutboxMessage.objects.filter(
            state__in=(State.PENDING, State.SENDING), next_attempt_at__lte=now
        )
        .order_by("next_attempt_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )


def send_due_messages(*, now: datetime | None = None) -> int:
    """Enqueue a send for every message that is due (retries, lost tasks, dead workers)."""
    now = now or timezone.now()
    return sum(enqueue_send(pk, now=now) for pk in due_messages(now))


def run_outbox(*, now: datetime | None = None) -> dict[str, int]:
    """Send every due message here and now, one after another; the states they ended in."""
    now = now or timezone.now()
    counts: dict[str, int] = {}
    for pk in due_messages(now):
        try:
            state = send_message(pk, now=now)
        except Exception:
            logger.exception("Sending outbox message %s failed", pk)
            state = "error"
        counts[state] = counts.get(state, 0) + 1
    return counts


# Polling -----------------------------------------------------------------------------------


@dataclass
class PollResult:
    numbered: int = 0  # tokens exchanged for request numbers
    polled: int = 0
    updated: int = 0
    errors: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def _pollable(now: datetime):
    return OutboxMessage.objects.filter(state=State.SENT).filter(
        Q(last_polled_at__isnull=True) | Q(last_polled_at__lte=now - POLL_EVERY)
    )


def poll_statuses(*, now: datetime | None = None) -> PollResult:
    """Bring the city's changes back: exchange tokens for numbers, then ask for the status of
    forwarded cases in batches of ``OPEN311_POLL_BATCH`` (one ``GET requests`` each)."""
    now = now or timezone.now()
    result = PollResult()
    forwarder = open311_forwarder()
    try:
        client = forwarder.client()
    except ImproperlyConfigured as exc:
        logger.warning("Not polling the city: %s", exc)
        return result
    _exchange_tokens(forwarder, client, now, result)
    due = list(
        _pollable(now)
        .exclude(remote_id="")
        .exclude(case__status=Case.Status.CLOSED, remote_status__in=CLOSED_CITY_STATUSES)
        .select_related("case__service_type")
        .order_by(F("last_polled_at").asc(nulls_first=True), "pk")[:POLL_LIMIT]
    )
    size = max(int(app_settings.OPEN311_POLL_BATCH), 1)
    for start in range(0, len(due), size):
        batch = due[start : start + size]
        try:
            rows = _fetch(client, [m.remote_id for m in batch])
        except Rejected as exc:
            logger.warning("The city refused a status batch: %s", exc.message)
            result.errors += 1
            continue
        except Open311Error as exc:
            logger.warning("Polling the city stopped: %s", exc.message)
            result.errors += 1
            break
        by_number = {text(row.get("service_request_id")): row for row in rows}
        notes = _last_city_notes([m.case_id for m in batch])
        for message in batch:
            row = by_number.get(message.remote_id)
            if row is None:
                continue
            try:
                result.updated += _apply(forwarder, message, row, notes.get(message.case_id))
            except Exception:
                logger.exception("Applying the city's update to case %s failed", message.case_id)
                result.errors += 1
        OutboxMessage.objects.filter(pk__in=[m.pk for m in batch]).update(last_polled_at=now)
        result.polled += len(batch)
    return result


def _fetch(client: Open311Client, numbers: list[str]) -> list[dict]:
    """The records of these request numbers (one with a comma in it is asked for alone)."""
    plain = [n for n in numbers if "," not in n]
    rows = client.requests_by_id(plain)
    for number in numbers:
        if "," in number:
            row = client.request_detail(number)
            if row is not None:
                rows.append(row)
    return rows


def _last_city_notes(case_ids: list[int]) -> dict[int, str]:
    """The city's status notes last applied to each case (from the audit log)."""
    latest: dict[int, str] = {}
    entries = (
        CaseAudit.objects.filter(case_id__in=case_ids, action="city_update")
        .order_by("case_id", "-created_at", "-id")
        .values_list("case_id", "data")
    )
    for case_id, data in entries:
        if case_id not in latest:
            latest[case_id] = text((data or {}).get("status_notes"))
    return latest


def _apply(
    forwarder: Open311Forwarder, message: OutboxMessage, row: dict, last_notes: str | None
) -> int:
    """Apply one record of the city to its case; 1 when something changed there."""
    case = message.case
    raw = text(row.get("status"))
    key = city_status_key(raw)
    notes = text(row.get("status_notes"))
    status = resolution = ""
    scheduled_for = None
    if key and key != message.remote_status:
        meaning = forwarder.city_status(raw)
        if meaning is None:
            logger.info("Case %s: unknown status %r of the city", case.tracking_number, raw)
        elif meaning.status != case.status and (
            meaning.status != Case.Status.OPEN or case.status == Case.Status.CLOSED
        ):
            # "open" covers every state before closing: it only matters to a closed case.
            status, resolution = meaning.status, meaning.resolution
            if status == Case.Status.SCHEDULED:
                scheduled_for = forwarder.scheduled_for(row)
                if scheduled_for is None:
                    status = Case.Status.IN_PROGRESS
    note = notes if notes and notes != (last_notes or "") else ""
    expected = parse_w3c(row.get("expected_datetime"))
    if expected is not None and (
        status == Case.Status.CLOSED
        or (not status and case.status == Case.Status.CLOSED)
        or (case.expected_at and abs(expected - case.expected_at) < timedelta(minutes=1))
    ):
        expected = None
    changed = 0
    if status or note or expected is not None:
        entry = services.record_city_update(
            case,
            status=status,
            resolution=resolution,
            note=note,
            at=parse_w3c(row.get("updated_datetime")),
            scheduled_for=scheduled_for,
            expected=expected,
            data={
                "service_request_id": message.remote_id,
                "remote_status": raw,
                "status_notes": notes,
                "updated_datetime": text(row.get("updated_datetime")),
            },
        )
        changed = int(entry is not None)
    if key and key != message.remote_status:
        OutboxMessage.objects.filter(pk=message.pk).update(remote_status=key)
    return changed


def _exchange_tokens(
    forwarder: Open311Forwarder, client: Open311Client, now: datetime, result: PollResult
) -> None:
    waiting = list(
        _pollable(now)
        .filter(remote_id="")
        .exclude(remote_token="")
        .order_by(F("last_polled_at").asc(nulls_first=True), "pk")[:TOKEN_LIMIT]
    )
    for message in waiting:
        try:
            number = client.token(message.remote_token)
        except Rejected as exc:
            logger.warning("Token %s: %s", message.remote_token, exc.message)
            number = None
        except Open311Error as exc:
            logger.warning("Exchanging tokens stopped: %s", exc.message)
            result.errors += 1
            return
        fields = {"last_polled_at": now}
        if number:
            fields["remote_id"] = number[:100]
            with transaction.atomic():
                Case.objects.filter(pk=message.case_id).update(external_id=number[:100])
                CaseNote.objects.create(
                    case_id=message.case_id,
                    kind=CaseNote.Kind.FORWARDED,
                    is_public=False,
                    text=f"The city's 311 system numbered it request {number}.",
                    created_at=now,
                )
            result.numbered += 1
        OutboxMessage.objects.filter(pk=message.pk).update(**fields)


def forward_due(*, now: datetime | None = None) -> dict[str, int]:
    """The periodic sweep: enqueue due sends, then poll the city."""
    enqueued = send_due_messages(now=now)
    return {"enqueued": enqueued, **poll_statuses(now=now).as_dict()}


# Tasks ------------------------------------------------------------------------------------


@task()
def send_message_task(message_id: int) -> str:
    try:
        return send_message(message_id)
    except Exception:
        logger.exception("Sending outbox message %s failed", message_id)
        return "error"


@task()
def poll_statuses_task() -> dict[str, int]:
    try:
        return poll_statuses().as_dict()
    except Exception:
        logger.exception("Polling the city's statuses failed")
        return {}


@task()
def forward_due_task() -> dict[str, int]:
    try:
        return forward_due()
    except Exception:
        logger.exception("The forwarding sweep failed")
        return {}


__all__ = [
    "backoff",
    "enqueue_send",
    "find_at_city",
    "forward_due",
    "forward_due_task",
    "poll_statuses",
    "poll_statuses_task",
    "run_outbox",
    "send_due_messages",
    "send_message",
    "send_message_task",
]
