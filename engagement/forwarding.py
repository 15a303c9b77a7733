"""How cases reach the city's system: a backend chosen by ``CASE_FORWARDING_BACKEND``.

- :class:`LocalDesk` (default): the city works cases in this site's case desk; nothing to send.
- :class:`Open311Forwarder` (``engagement.forwarding.Open311Forwarder``): each case is put in a
  persistent outbox (:class:`~engagement.models.OutboxMessage`) in the transaction that files it,
  then sent to the city's Open311 endpoint by a background task, with retries; statuses are
  polled back (:mod:`engagement.tasks`, docs/forwarding.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from functools import partial

from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.module_loading import import_string

from .conf import app_settings
from .models import Case, OutboxMessage
from .open311_client import Open311Client, Rejected, records, text, truthy

DESCRIPTION_MAX = 4000
Status = Case.Status
Resolution = Case.Resolution


class ForwardingBackend:
    """The interface: called inside the transaction that files a case."""

    name = "base"

    def case_filed(self, case: Case) -> None:  # pragma: no cover - interface
        raise NotImplementedError


class LocalDesk(ForwardingBackend):
    """Cases stay here: staff work them in the case desk."""

    name = "local"

    def case_filed(self, case: Case) -> None:
        return None


def backend() -> ForwardingBackend:
    return import_string(app_settings.CASE_FORWARDING_BACKEND)()


# Open311 ----------------------------------------------------------------------------------


class CannotForward(ValueError):
    """The case cannot be sent as it is (the city has no such service, a required answer is
    missing...): sending it again would not help."""


@dataclass(frozen=True)
class CityStatus:
    """What a status of the city's system means here."""

    status: str
    resolution: str = ""


# The city's statuses (core open/closed and FixMyStreet's extended ones, compared in lower case
# with spaces and dashes as underscores) → the local status and, for closing ones, a resolution.
CITY_STATUSES = {
    "open": CityStatus(Status.OPEN),
    "reopen": CityStatus(Status.OPEN),
    "reopened": CityStatus(Status.OPEN),
    "for_triage": CityStatus(Status.OPEN),
    "confirmed": CityStatus(Status.ACKNOWLEDGED),
    "acknowledged": CityStatus(Status.ACKNOWLEDGED),
    "investigating": CityStatus(Status.ACKNOWLEDGED),
    "internal_referral": CityStatus(Status.ACKNOWLEDGED),
    "in_progress": CityStatus(Status.IN_PROGRESS),
    "action_scheduled": CityStatus(Status.SCHEDULED),
    "planned": CityStatus(Status.SCHEDULED),
    "scheduled": CityStatus(Status.SCHEDULED),
    "closed": CityStatus(Status.CLOSED, Resolution.FIXED),
    "fixed": CityStatus(Status.CLOSED, Resolution.FIXED),
    "resolved": CityStatus(Status.CLOSED, Resolution.FIXED),
    "duplicate": CityStatus(Status.CLOSED, Resolution.DUPLICATE),
    "not_councils_responsibility": CityStatus(Status.CLOSED, Resolution.NOT_CITY),
    "not_responsible": CityStatus(Status.CLOSED, Resolution.NOT_CITY),
    "no_further_action": CityStatus(Status.CLOSED, Resolution.NOT_FIXED),
    "not_fixed": CityStatus(Status.CLOSED, Resolution.NOT_FIXED),
    "cancelled": CityStatus(Status.CLOSED, Resolution.NOT_FIXED),
    "canceled": CityStatus(Status.CLOSED, Resolution.NOT_FIXED),
    "unable_to_locate": CityStatus(Status.CLOSED, Resolution.UNABLE_TO_LOCATE),
}
CLOSED_CITY_STATUSES = sorted(k for k, v in CITY_STATUSES.items() if v.status == Status.CLOSED)


def city_status_key(value: str) -> str:
    """``"In Progress"``, ``"IN-PROGRESS"`` → ``"in_progress"``."""
    return re.sub(r"[\s-]+", "_", (value or "").strip().lower())[:32]


def parse_w3c(value) -> datetime | None:
    """A W3C datetime of the city's records, aware; ``None`` when absent or unreadable."""
    raw = text(value)
    if not raw:
        return None
    try:
        parsed = parse_datetime(raw)
    except ValueError:
        return None
    if parsed is None:
        return None
    return timezone.make_aware(parsed) if timezone.is_naive(parsed) else parsed


class Open311Forwarder(ForwardingBackend):
    """Forward cases to the city's own Open311 endpoint (``OPEN311_FORWARD_*`` settings).

    Subclass it (and name the subclass in ``CASE_FORWARDING_BACKEND``) to change what is sent
    or how the city's statuses read here.
    """

    name = "open311"

    def case_filed(self, case: Case) -> None:
        from .tasks import enqueue_send

        message = OutboxMessage.objects.create(
            case=case, created_at=case.created_at, next_attempt_at=case.created_at
        )
        transaction.on_commit(partial(enqueue_send, message.pk), robust=True)

    # The city's endpoint -----------------------------------------------------------------

    def client(self) -> Open311Client:
        url = app_settings.OPEN311_FORWARD_URL
        if not url:
            raise ImproperlyConfigured(
                "Set ENGAGEMENT['OPEN311_FORWARD_URL'] to the city's Open311 endpoint."
            )
        try:
            return Open311Client(
                url,
                api_key=app_settings.OPEN311_FORWARD_API_KEY,
                jurisdiction_id=app_settings.OPEN311_FORWARD_JURISDICTION,
                format=app_settings.OPEN311_FORWARD_FORMAT,
            )
        except ValueError as exc:
            raise ImproperlyConfigured(str(exc)) from None

    # What is sent ------------------------------------------------------------------------

    def reference(self, case: Case) -> str:
        """The case's unique reference, sent as ``device_id`` and ``Idempotency-Key``."""
        return str(case.token)

    def marker(self, case: Case) -> str:
        """The last line of the description: how the case is recognised in the city's lists."""
        from alerts.tasks import absolute

        return f"Reference {case.tracking_number}: {absolute(case.get_absolute_url())}"

    def description(self, case: Case) -> str:
        marker = self.marker(case)
        body = (case.description or "").strip()
        room = DESCRIPTION_MAX - len(marker) - 2
        if len(body) > room:
            body = body[: room - 1].rstrip() + "…"
        return f"{body}\n\n{marker}" if body else marker

    def is_ours(self, record: dict, case: Case) -> bool:
        """Whether a record of the city's list is this case (by the marker of its description)."""
        code = text(record.get("service_code"))
        if code and code != case.service_type.code:
            return False
        description = " ".join(text(record.get("description")).split())
        pattern = rf"Reference {re.escape(case.tracking_number)}(?![\w-])"
        return re.search(pattern, description) is not None

    def media_url(self, case: Case) -> str:
        from alerts.tasks import absolute

        for photo in case.photos.order_by("pk"):
            if photo.image:
                return absolute(photo.image.url)
            if photo.url:
                return photo.url
        return ""

    def request_fields(self, case: Case, client: Open311Client) -> list[tuple[str, str]]:
        """The form fields of ``POST requests`` (``api_key``/``jurisdiction_id`` are the client's).

        Answers become ``attribute[code]`` values checked against the city's definition of the
        service; :class:`CannotForward` when the city has no such service or an answer does not
        fit. Contact details go only as the person gave them for follow-up.
        """
        code = case.service_type.code
        try:
            service = client.service(code)
        except Rejected:
            service = {}  # no services list to check against: the city will say
        if service is None:
            raise CannotForward(f"The city's system has no service “{code}”.")
        fields = [("service_code", code)]
        if case.lat is not None and case.lon is not None:
            fields += [("lat", _coordinate(case.lat)), ("long", _coordinate(case.lon))]
        if case.address:
            fields.append(("address_string", case.address))
        fields += [("description", self.description(case)), ("device_id", self.reference(case))]
        first, _, last = " ".join(case.contact_name.split()).partition(" ")
        fields += [
            ("first_name", first),
            ("last_name", last),
            ("email", case.contact_email),
            ("phone", case.contact_phone),
            ("media_url", self.media_url(case)),
        ]
        if service and truthy(service.get("metadata")):
            try:
                definition = client.definition(code)
            except Rejected:
                definition = None
            if definition is not None:
                fields += self.attribute_fields(case, definition)
        return fields

    def attribute_fields(self, case: Case, definition: dict) -> list[tuple[str, str]]:
        fields: list[tuple[str, str]] = []
        problems: list[str] = []
        answers = case.answers or {}
        for attribute in records(definition.get("attributes"), "attribute"):
            if "variable" in attribute and not truthy(attribute.get("variable")):
                continue
            code = text(attribute.get("code"))
            if not code:
                continue
            answer = answers.get(code)
            values = [text(v) for v in (answer if isinstance(answer, list) else [answer])]
            values = [v for v in values if v]
            label = text(attribute.get("description")) or code
            if not values:
                if truthy(attribute.get("required")):
                    problems.append(f"the city requires an answer to “{label}” ({code})")
                continue
            datatype = text(attribute.get("datatype")).lower()
            keys = {text(v.get("key")) for v in records(attribute.get("values"), "value")}
            if datatype in ("singlevaluelist", "multivaluelist") and keys:
                unknown = [v for v in values if v not in keys]
                if unknown:
                    problems.append(
                        f"the city does not offer {', '.join(unknown)} for “{label}” ({code})"
                    )
                    continue
            if datatype == "multivaluelist":
                fields += [(f"attribute[{code}][]", value) for value in values]
            else:
                fields.append((f"attribute[{code}]", values[0]))
        if problems:
            raise CannotForward("; ".join(problems).capitalize() + ".")
        return fields

    # What comes back ---------------------------------------------------------------------

    def city_status(self, value: str) -> CityStatus | None:
        """The local meaning of a status of the city's system (``None``: unknown here)."""
        return CITY_STATUSES.get(city_status_key(value))

    def scheduled_for(self, record: dict) -> date | None:
        expected = parse_w3c(record.get("expected_datetime"))
        return timezone.localdate(expected) if expected else None


def _coordinate(value: float) -> str:
    return f"{value:.7f}".rstrip("0").rstrip(".")


def open311_forwarder() -> Open311Forwarder:
    """The configured backend when it forwards by Open311, else a plain forwarder (the outbox
    may hold messages from before a change of backend)."""
    configured = import_string(app_settings.CASE_FORWARDING_BACKEND)
    if isinstance(configured, type) and issubclass(configured, Open311Forwarder):
        return configured()
    return Open311Forwarder()


def forwarding_enabled() -> bool:
    """Whether cases are forwarded by Open311 (the periodic sweep runs only then)."""
    configured = import_string(app_settings.CASE_FORWARDING_BACKEND)
    return isinstance(configured, type) and issubclass(configured, Open311Forwarder)
