"""Open311 GeoReport v2 documents: what each resource contains, written as XML or JSON.

Each document is built once as plain Python data and written in either format. JSON follows the
"Spark convention", a mechanical mapping of the XML: the outer element disappears and a container
whose children share one name becomes an array, even with a single child (``<services><service>``
→ ``[{…}]``). :data:`ITEM_NAMES` names the repeated child of every container.

Types follow what validators and clients expect: ids and codes are strings, ``lat``/``long``
numbers, ``order`` an integer, booleans ``true``/``false`` (lower case in XML too), datetimes in
whole seconds with ``Z`` or ``±hh:mm``; ``None`` is JSON ``null`` and an empty XML element.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, tzinfo
from xml.etree import ElementTree as ET

from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from ..models import Case, CaseNote, CasePhoto, ServiceQuestion, ServiceType

JSON, XML = "json", "xml"
FORMATS = (JSON, XML)
CONTENT_TYPES = {JSON: "application/json; charset=utf-8", XML: "text/xml; charset=utf-8"}
# Discovery answers with the bare MIME types: some validators compare them exactly.
DISCOVERY_CONTENT_TYPES = {JSON: "application/json", XML: "text/xml"}
XML_DECLARATION = '<?xml version="1.0" encoding="utf-8"?>\n'
SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"

ITEM_NAMES = {
    "services": "service",
    "service_requests": "request",
    "attributes": "attribute",
    "values": "value",
    "errors": "error",
    "endpoints": "endpoint",
    "formats": "format",
    "notes": "note",
}
# Characters XML 1.0 cannot carry at all (even escaped).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


# Writers ----------------------------------------------------------------------------------


def to_json(data) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


def to_xml(root: str, data) -> bytes:
    element = ET.Element(root)
    _fill(element, root, data)
    return (XML_DECLARATION + ET.tostring(element, encoding="unicode")).encode()


def _fill(element: ET.Element, name: str, value) -> None:
    if isinstance(value, dict):
        for key, child in value.items():
            _fill(ET.SubElement(element, key), key, child)
    elif isinstance(value, list | tuple):
        item = ITEM_NAMES[name]
        for child in value:
            _fill(ET.SubElement(element, item), item, child)
    elif value is None:
        return
    elif isinstance(value, bool):
        element.text = "true" if value else "false"
    else:
        element.text = _NOT_XML.sub("", str(value))


def document(
    fmt: str,
    root: str,
    data,
    *,
    status: int = 200,
    content_type: str | None = None,
    headers: dict[str, str] | None = None,
) -> HttpResponse:
    """A response in ``fmt``: ``data`` as JSON, or as XML under the element ``root``."""
    body = to_xml(root, data) if fmt == XML else to_json(data)
    return HttpResponse(
        body, status=status, content_type=content_type or CONTENT_TYPES[fmt], headers=headers
    )


def errors(
    fmt: str, status: int, messages: list[str], *, headers: dict[str, str] | None = None
) -> HttpResponse:
    """The standard's error list, one ``{code, description}`` per problem (code = HTTP status)."""
    return document(
        fmt,
        "errors",
        [{"code": status, "description": message} for message in messages],
        status=status,
        headers=headers,
    )


# Values -----------------------------------------------------------------------------------


def w3c(value: datetime | None, zone: tzinfo | None = None) -> str | None:
    """A W3C datetime in whole seconds and the site's zone (or ``zone``):
    ``2026-03-01T09:30:00-05:00``."""
    if value is None:
        return None
    local = value.astimezone(zone or timezone.get_current_timezone())
    text = local.replace(microsecond=0).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def open311_status(status: str) -> str:
    """Core GeoReport v2 knows two statuses: every state before closing is ``open``."""
    return "closed" if status == Case.Status.CLOSED else "open"


def _day(value) -> str:
    return f"{value.day} {value:%B %Y}"


# Documents --------------------------------------------------------------------------------


def discovery(*, endpoint_url: str, changeset: datetime | None, contact: str, key_service: str):
    stamp = w3c(changeset) or "1970-01-01T00:00:00Z"
    return {
        "changeset": stamp,
        "contact": contact,
        "key_service": key_service,
        "endpoints": [
            {
                "specification": SPECIFICATION,
                "url": endpoint_url,
                "changeset": stamp,
                "type": "production",
                "formats": [DISCOVERY_CONTENT_TYPES[XML], DISCOVERY_CONTENT_TYPES[JSON]],
            }
        ],
    }


def service(service_type: ServiceType, *, has_questions: bool) -> dict:
    return {
        "service_code": service_type.code,
        "service_name": service_type.name,
        "description": service_type.description,
        "metadata": has_questions,
        "type": "realtime",
        "keywords": ", ".join(service_type.keyword_list),
        "group": service_type.group,
    }


def service_definition(service_type: ServiceType, questions: list[ServiceQuestion]) -> dict:
    """The attributes of a service; ``order`` counts from 1 in the staff's order."""
    return {
        "service_code": service_type.code,
        "attributes": [
            {
                "variable": question.variable,
                "code": question.code,
                "datatype": question.datatype,
                "required": question.required and question.variable,
                "datatype_description": question.datatype_description or None,
                "order": order,
                "description": question.prompt,
                "values": [{"key": key, "name": name} for key, name in question.value_list()]
                if question.is_list
                else [],
            }
            for order, question in enumerate(questions, start=1)
        ],
    }


def status_notes(case: Case) -> str | None:
    """A closed case's resolution note (or how it was resolved); else its latest public note."""
    if case.status == Case.Status.CLOSED:
        return case.resolution_note or case.get_resolution_display() or None
    return case.latest_public_note or None


def service_notice(case: Case) -> str | None:
    """What will happen next, in a sentence."""
    if case.status == Case.Status.CLOSED:
        if case.resolution == Case.Resolution.DUPLICATE:
            original = case.duplicate_number
            return f"Duplicate of {original}." if original else "Closed as a duplicate."
        if case.resolution == Case.Resolution.NOT_CITY and case.responsible_party:
            return f"Not the city's responsibility: {case.responsible_party}."
        return None
    if case.status == Case.Status.SCHEDULED and case.scheduled_for:
        return f"Work is scheduled for {_day(case.scheduled_for)}."
    if case.expected_at:
        expected = timezone.localtime(case.expected_at)
        return f"{case.agency} expects to resolve it by {_day(expected)}."
    return None


_PHOTO_STORAGE = CasePhoto._meta.get_field("image").storage


def media_url(case: Case, request: HttpRequest) -> str | None:
    """The first photo, by absolute address (``views.request_records`` annotates its file name
    ``first_photo_image`` and address ``first_photo_url``)."""
    if case.first_photo_image:
        return request.build_absolute_uri(_PHOTO_STORAGE.url(case.first_photo_image))
    return case.first_photo_url or None


NOTE_SUMMARIES = {
    CaseNote.Kind.CREATED: "Request filed",
    CaseNote.Kind.NOTE: "Update",
    CaseNote.Kind.REOPENED: "Reopened",
    CaseNote.Kind.CONTESTED: "Closure contested",
    CaseNote.Kind.MERGED: "Duplicate merged into this request",
    CaseNote.Kind.FORWARDED: "Forwarded",
    CaseNote.Kind.ASSIGNED: "Assigned",
}


def note(entry: CaseNote) -> dict:
    """One entry of the public timeline (the ``extensions=true`` ``notes``), without authors."""
    if entry.kind == CaseNote.Kind.STATUS and entry.status_to in Case.Status.values:
        summary = f"Status: {Case.Status(entry.status_to).label}"
    else:
        summary = NOTE_SUMMARIES.get(entry.kind, entry.get_kind_display())
    return {
        "datetime": w3c(entry.created_at),
        "type": entry.kind,
        "summary": summary,
        "description": entry.text or None,
    }


def service_request(
    case: Case, request: HttpRequest, *, extensions: bool = False, zone: tzinfo | None = None
) -> dict:
    """A service request record: public facts only, never who reported it or how to reach them.

    ``case`` comes from ``views.request_records``, which annotates ``service_code``,
    ``service_name``, ``agency``, ``latest_public_note``, ``duplicate_number`` (and
    ``neighborhood_name``) and ``first_photo_image``/``first_photo_url`` (and prefetches
    ``public_notes``).
    """
    zone = zone or timezone.get_current_timezone()
    record = {
        "service_request_id": case.tracking_number,
        "status": open311_status(case.status),
        "status_notes": status_notes(case),
        "service_name": case.service_name,
        "service_code": case.service_code,
        "description": case.description or None,
        "agency_responsible": case.agency,
        "service_notice": service_notice(case),
        "requested_datetime": w3c(case.created_at, zone),
        "updated_datetime": w3c(case.updated_at, zone),
        "expected_datetime": w3c(case.expected_at, zone),
        "address": case.address or None,
        "address_id": None,
        "zipcode": None,
        "lat": case.lat,
        "long": case.lon,
        "media_url": media_url(case, request),
    }
    if extensions:
        record["extended_attributes"] = {
            "channel": case.channel,
            "neighborhood": case.neighborhood_name,
            "duplicate": case.duplicate_number,
            "supporter_count": case.supporter_count,
        }
        record["notes"] = [note(entry) for entry in case.public_notes]
    return record
