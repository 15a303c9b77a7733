"""OASIS Common Alerting Protocol 1.2: official notices as CAP messages, and CAP read back.

Writing: :func:`cap_message` turns an official notice into one ``<alert>`` whose elements follow
the sequence of the CAP 1.2 schema. Each version of a notice is its own message: version 1 is an
``Alert`` with the notice's base identifier, later versions are ``Update`` messages with
``:v<n>`` appended and ``<references>`` to every earlier version, and a retracted (or resolved)
notice is a ``Cancel`` that references them all.

Reading: :func:`parse_cap` checks a CAP ``<alert>`` element (from untrusted XML already parsed
with defusedxml) and returns a :class:`CapMessage`, or raises :class:`CapError` with the reason.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from xml.etree import ElementTree as ET

import numpy as np
import shapely
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from shapely.geometry import Polygon

from neighborhoods.text import plain_text

from .conf import app_settings
from .models import Alert, Severity

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
# CAP 1.1 has the same structure for everything read here; feeds still publishing it are read.
CAP_NAMESPACES = (CAP_NS, "urn:oasis:names:tc:emergency:cap:1.1")
CONTENT_TYPE = "application/cap+xml; charset=utf-8"

# Our category slugs → CAP <category>. Categories editors add later are published as "Other".
CATEGORY_TO_CAP = {
    "public-safety": "Safety",
    "traffic": "Transport",
    "utilities": "Infra",
    "street-conditions": "Infra",
    "sanitation": "Env",
    "noise": "Other",
    "community": "Other",
    "weather": "Met",
    "public-health": "Health",
    "transit": "Transport",
}
# CAP <category> → our category slug, for ingested messages. "Other" has no mapping: the feed's
# configured category is used.
CAP_TO_CATEGORY = {
    "Geo": "public-safety",
    "Met": "weather",
    "Safety": "public-safety",
    "Security": "public-safety",
    "Rescue": "public-safety",
    "Fire": "public-safety",
    "Health": "public-health",
    "Env": "public-health",
    "Transport": "traffic",
    "Infra": "utilities",
    "CBRNE": "public-safety",
}
CAP_CATEGORIES = frozenset([*CAP_TO_CATEGORY, "Other"])

SEVERITY_TO_CAP = {
    Severity.INFO: "Minor",
    Severity.ADVISORY: "Moderate",
    Severity.WARNING: "Severe",
    Severity.EMERGENCY: "Extreme",
}
CAP_TO_SEVERITY = {cap: ours for ours, cap in SEVERITY_TO_CAP.items()}
CAP_SEVERITIES = frozenset([*CAP_TO_SEVERITY, "Unknown"])
# Urgency of a current notice, by our severity.
SEVERITY_TO_URGENCY = {
    Severity.INFO: "Future",
    Severity.ADVISORY: "Expected",
    Severity.WARNING: "Immediate",
    Severity.EMERGENCY: "Immediate",
}
CAP_URGENCIES = frozenset({"Immediate", "Expected", "Future", "Past", "Unknown"})
CAP_CERTAINTIES = frozenset(
    {"Observed", "Likely", "Possible", "Unlikely", "Unknown", "Very Likely"}
)
CAP_STATUSES = frozenset({"Actual", "Exercise", "System", "Test", "Draft"})
CAP_MSG_TYPES = frozenset({"Alert", "Update", "Cancel", "Ack", "Error"})
CAP_SCOPES = frozenset({"Public", "Restricted", "Private"})

# Identifiers and senders may not contain whitespace, commas, "<" or "&" (CAP 1.2, 3.2.1).
_CAP_TOKEN = re.compile(r"^[^\s,<&]+$")


class CapError(ValueError):
    """A CAP message that cannot be used, with the reason."""


# Times ----------------------------------------------------------------------------------------


def cap_time(value: datetime) -> str:
    """A CAP dateTime: seconds precision, UTC written as ``-00:00`` (CAP forbids ``Z``)."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S-00:00")


def parse_cap_time(text: str | None, name: str) -> datetime | None:
    """Read a CAP dateTime; ``None`` when absent. A time without an offset is taken as UTC."""
    if text is None or not text.strip():
        return None
    try:
        value = parse_datetime(text.strip())
    except ValueError:  # well-formed but impossible, such as 30 February
        value = None
    if value is None:
        raise CapError(f"<{name}> is not a date and time: {text.strip()[:40]!r}")
    if timezone.is_naive(value):
        value = value.replace(tzinfo=UTC)
    return value


# Writing --------------------------------------------------------------------------------------


def base_identifier(alert: Alert) -> str:
    """The identifier of a notice's first message: an ingested notice keeps its CAP identifier."""
    if alert.external_id and _CAP_TOKEN.match(alert.external_id):
        return alert.external_id
    return f"{app_settings.CAP_SENDER}:alert-{alert.pk}"


def _is_closed(alert: Alert) -> bool:
    return alert.status in (Alert.Status.RETRACTED, Alert.Status.RESOLVED)


@dataclass(frozen=True)
class MessageRef:
    identifier: str
    sent: datetime

    def as_reference(self, sender: str) -> str:
        return f"{sender},{self.identifier},{cap_time(self.sent)}"


def message_history(alert: Alert, revision_times: dict[int, datetime]) -> list[MessageRef]:
    """Every message published for ``alert``, oldest first; the last is the current one.

    Version ``n`` was sent when version ``n - 1`` was snapshotted (``revision_times[n - 1]``).
    A retraction adds a version (the Cancel); resolving does not, so its Cancel comes after.
    """
    base = base_identifier(alert)
    created = alert.created_at or alert.starts_at
    refs = []
    for version in range(1, alert.version + 1):
        sent = created if version == 1 else revision_times.get(version - 1, alert.updated_at)
        identifier = base if version == 1 else f"{base}:v{version}"
        refs.append(MessageRef(identifier, sent))
    if alert.status == Alert.Status.RESOLVED:
        sent = alert.closed_at or alert.updated_at
        refs.append(MessageRef(f"{base}:v{alert.version + 1}", sent))
    return refs


def revision_times(alert: Alert) -> dict[int, datetime]:
    return dict(alert.revisions.values_list("version", "created_at"))


def message_identifier(alert: Alert, history: Sequence[MessageRef] | None = None) -> str:
    history = history if history is not None else message_history(alert, revision_times(alert))
    return history[-1].identifier


def msg_type(alert: Alert) -> str:
    if _is_closed(alert):
        return "Cancel"
    return "Update" if alert.version > 1 else "Alert"


def _sub(parent: ET.Element, name: str, text: str | None = None) -> ET.Element:
    element = ET.SubElement(parent, f"{{{CAP_NS}}}{name}")
    if text is not None:
        element.text = text
    return element


def _number(value: float) -> str:
    """Shortest decimal that reads back as the same float (no exponent): shared edges stay shared."""
    text = np.format_float_positional(float(value), trim="-")
    return "0" if text == "-0" else text


def cap_polygons(area: dict) -> list[str]:
    """GeoJSON (Multi)Polygon → CAP polygons: closed rings of ``lat,lon`` pairs (outer rings)."""
    if area.get("type") == "Polygon":
        polygons = [area["coordinates"]]
    elif area.get("type") == "MultiPolygon":
        polygons = area["coordinates"]
    else:
        return []
    result = []
    for rings in polygons:
        ring = [tuple(point[:2]) for point in rings[0]]
        if ring and ring[0] != ring[-1]:
            ring.append(ring[0])
        if len(ring) >= 4:
            result.append(" ".join(f"{_number(lat)},{_number(lon)}" for lon, lat in ring))
    return result


def cap_category(alert: Alert) -> str:
    return CATEGORY_TO_CAP.get(alert.category.slug, "Other")


def urgency_of(alert: Alert, sent: datetime) -> str:
    if _is_closed(alert):
        return "Past"
    if alert.starts_at > sent:
        return "Future"
    return SEVERITY_TO_URGENCY[Severity(alert.severity)]


def certainty_of(alert: Alert, sent: datetime) -> str:
    return "Likely" if alert.starts_at > sent and not _is_closed(alert) else "Observed"


def sender_name(alert: Alert) -> str:
    if alert.department_id:
        return alert.department.name
    return app_settings.CAP_SENDER_NAME or alert.source_name or "City"


def cap_message(
    alert: Alert,
    *,
    absolute_url: Callable[[str], str],
    neighborhood_names: Sequence[str],
    revision_times: dict[int, datetime],
    language: str = "en-US",
) -> ET.Element:
    """The current CAP 1.2 message of an official notice, as an ``<alert>`` element.

    ``absolute_url`` turns a path into an absolute URL (for ``<web>``). Elements follow the
    schema's sequence: alert (identifier, sender, sent, status, msgType, source, scope, note,
    references, info), info (language, category, event, urgency, severity, certainty,
    effective, expires, senderName, headline, description, web, contact, area) and area
    (areaDesc, polygon, circle).
    """
    if not alert.is_official:
        raise ValueError("only official notices are published as CAP")
    sender = app_settings.CAP_SENDER
    history = message_history(alert, revision_times)
    current, earlier = history[-1], history[:-1]
    root = ET.Element(f"{{{CAP_NS}}}alert")
    _sub(root, "identifier", current.identifier)
    _sub(root, "sender", sender)
    _sub(root, "sent", cap_time(current.sent))
    _sub(root, "status", "Actual")
    _sub(root, "msgType", msg_type(alert))
    if alert.source == Alert.Source.FEED and alert.source_name:
        _sub(root, "source", alert.source_name)
    _sub(root, "scope", "Public")
    if _is_closed(alert) and alert.status_note:
        _sub(root, "note", alert.status_note)
    if earlier:
        _sub(root, "references", " ".join(ref.as_reference(sender) for ref in earlier))

    info = _sub(root, "info")
    _sub(info, "language", language)
    _sub(info, "category", cap_category(alert))
    _sub(info, "event", alert.category.name)
    _sub(info, "urgency", urgency_of(alert, current.sent))
    _sub(info, "severity", SEVERITY_TO_CAP[Severity(alert.severity)])
    _sub(info, "certainty", certainty_of(alert, current.sent))
    _sub(info, "effective", cap_time(alert.starts_at))
    if alert.expires_at:
        _sub(info, "expires", cap_time(alert.expires_at))
    _sub(info, "senderName", sender_name(alert))
    _sub(info, "headline", alert.title)
    description = plain_text(alert.body)
    if description:
        _sub(info, "description", description)
    _sub(info, "web", absolute_url(alert.get_absolute_url()))
    contact = _contact(alert)
    if contact:
        _sub(info, "contact", contact)

    area = _sub(info, "area")
    _sub(area, "areaDesc", "; ".join(neighborhood_names) or sender_name(alert))
    if alert.lat is not None and alert.lon is not None and alert.radius_m:
        radius_km = alert.radius_m / 1000
        _sub(area, "circle", f"{_number(alert.lat)},{_number(alert.lon)} {_number(radius_km)}")
    else:
        for polygon in cap_polygons(alert.area):
            _sub(area, "polygon", polygon)
    return root


def _contact(alert: Alert) -> str:
    if not alert.department_id:
        return ""
    parts = [alert.department.email, alert.department.phone]
    return " · ".join(p for p in parts if p)


def to_bytes(element: ET.Element) -> bytes:
    ET.register_namespace("", CAP_NS)
    return ET.tostring(element, encoding="utf-8", xml_declaration=True)


# Reading --------------------------------------------------------------------------------------


@dataclass
class CapArea:
    description: str
    polygons: list[Polygon] = field(default_factory=list)
    # (lat, lon, radius in metres)
    circles: list[tuple[float, float, float]] = field(default_factory=list)


@dataclass
class CapInfo:
    categories: list[str]
    event: str
    urgency: str
    severity: str
    certainty: str
    effective: datetime | None
    onset: datetime | None
    expires: datetime | None
    sender_name: str
    headline: str
    description: str
    instruction: str
    web: str
    areas: list[CapArea]


@dataclass
class CapMessage:
    identifier: str
    sender: str
    sent: datetime
    status: str
    msg_type: str
    scope: str
    note: str
    references: list[str]
    info: CapInfo | None

    @property
    def referenced_identifiers(self) -> list[str]:
        """Identifiers named in ``<references>`` (``sender,identifier,sent`` triples)."""
        ids = []
        for triple in self.references:
            parts = triple.split(",")
            if len(parts) >= 2 and parts[1]:
                ids.append(parts[1])
        return ids


def is_cap_alert(element: ET.Element) -> bool:
    return element.tag in {f"{{{ns}}}alert" for ns in CAP_NAMESPACES}


def _ns(element: ET.Element) -> str:
    return element.tag[1:].split("}", 1)[0] if element.tag.startswith("{") else ""


def _text(parent: ET.Element, ns: str, name: str) -> str:
    child = parent.find(f"{{{ns}}}{name}")
    return (child.text or "").strip() if child is not None else ""


def _texts(parent: ET.Element, ns: str, name: str) -> list[str]:
    return [(c.text or "").strip() for c in parent.findall(f"{{{ns}}}{name}")]


def _required(parent: ET.Element, ns: str, name: str, allowed=None) -> str:
    value = _text(parent, ns, name)
    if not value:
        raise CapError(f"required <{name}> is missing")
    if allowed is not None and value not in allowed:
        raise CapError(f"<{name}> {value[:40]!r} is not a CAP 1.2 value")
    return value


def parse_polygon(text: str) -> Polygon:
    """``"lat,lon lat,lon …"`` (closed ring of at least four pairs) → a shapely polygon."""
    points = []
    for pair in text.split():
        try:
            lat_text, lon_text = pair.split(",")
            lat, lon = float(lat_text), float(lon_text)
        except ValueError:
            raise CapError(f"<polygon> has a point that is not 'lat,lon': {pair[:40]!r}") from None
        _check_point(lat, lon, "polygon")
        points.append((lon, lat))
    if len(points) < 4 or points[0] != points[-1]:
        raise CapError("a <polygon> needs at least four points, the first equal to the last")
    polygon = Polygon(points)
    if not polygon.is_valid:
        fixed = shapely.make_valid(polygon)
        parts = [g for g in getattr(fixed, "geoms", [fixed]) if isinstance(g, Polygon)]
        if not parts:
            raise CapError("a <polygon> encloses no area")
        polygon = max(parts, key=lambda g: g.area)
    if polygon.area == 0:
        raise CapError("a <polygon> encloses no area")
    return polygon


def parse_circle(text: str) -> tuple[float, float, float]:
    """``"lat,lon radius_km"`` → ``(lat, lon, radius_m)``."""
    try:
        centre, radius_text = text.split()
        lat_text, lon_text = centre.split(",")
        lat, lon, radius_km = float(lat_text), float(lon_text), float(radius_text)
    except ValueError:
        raise CapError(f"<circle> is not 'lat,lon radius': {text[:40]!r}") from None
    _check_point(lat, lon, "circle")
    if not math.isfinite(radius_km) or radius_km < 0:
        raise CapError("a <circle> radius must be a positive number of kilometres")
    return lat, lon, radius_km * 1000


def _check_point(lat: float, lon: float, name: str) -> None:
    if not (math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180):
        raise CapError(f"<{name}> has coordinates outside latitude/longitude")


def _parse_info(info: ET.Element, ns: str) -> CapInfo:
    categories = _texts(info, ns, "category")
    if not categories or not all(categories):
        raise CapError("required <category> is missing")
    unknown = [c for c in categories if c not in CAP_CATEGORIES]
    if unknown:
        raise CapError(f"<category> {unknown[0][:40]!r} is not a CAP 1.2 value")
    areas = []
    for area in info.findall(f"{{{ns}}}area"):
        areas.append(
            CapArea(
                description=_required(area, ns, "areaDesc"),
                polygons=[parse_polygon(t) for t in _texts(area, ns, "polygon") if t],
                circles=[parse_circle(t) for t in _texts(area, ns, "circle") if t],
            )
        )
    return CapInfo(
        categories=categories,
        event=_required(info, ns, "event"),
        urgency=_required(info, ns, "urgency", CAP_URGENCIES),
        severity=_required(info, ns, "severity", CAP_SEVERITIES),
        certainty=_required(info, ns, "certainty", CAP_CERTAINTIES),
        effective=parse_cap_time(_text(info, ns, "effective"), "effective"),
        onset=parse_cap_time(_text(info, ns, "onset"), "onset"),
        expires=parse_cap_time(_text(info, ns, "expires"), "expires"),
        sender_name=_text(info, ns, "senderName"),
        headline=_text(info, ns, "headline"),
        description=_text(info, ns, "description"),
        instruction=_text(info, ns, "instruction"),
        web=_text(info, ns, "web"),
        areas=areas,
    )


def _choose_info(infos: list[ET.Element], ns: str) -> ET.Element | None:
    """The English ``<info>`` (no ``<language>`` means en-US), else the first."""
    for info in infos:
        language = _text(info, ns, "language").lower() or "en-us"
        if language.startswith("en"):
            return info
    return infos[0] if infos else None


def parse_cap(element: ET.Element) -> CapMessage:
    """Check a CAP ``<alert>`` element and read what the ingester needs."""
    if not is_cap_alert(element):
        raise CapError(f"the root element is <{element.tag}>, not a CAP 1.2 <alert>")
    ns = _ns(element)
    identifier = _required(element, ns, "identifier")
    sender = _required(element, ns, "sender")
    for name, value in (("identifier", identifier), ("sender", sender)):
        if not _CAP_TOKEN.match(value):
            raise CapError(f"<{name}> may not contain spaces, commas, '<' or '&'")
    if len(identifier) > 255:
        raise CapError("<identifier> is longer than 255 characters")
    sent = parse_cap_time(_required(element, ns, "sent"), "sent")
    status = _required(element, ns, "status", CAP_STATUSES)
    kind = _required(element, ns, "msgType", CAP_MSG_TYPES)
    scope = _required(element, ns, "scope", CAP_SCOPES)
    references = _text(element, ns, "references").split()
    if kind in ("Update", "Cancel") and not references:
        raise CapError(f"a {kind} message needs <references>")
    chosen = _choose_info(element.findall(f"{{{ns}}}info"), ns)
    info = _parse_info(chosen, ns) if chosen is not None else None
    if info is None and kind in ("Alert", "Update") and status == "Actual":
        raise CapError(f"an {kind} message needs an <info> block")
    return CapMessage(
        identifier=identifier,
        sender=sender,
        sent=sent,
        status=status,
        msg_type=kind,
        scope=scope,
        note=_text(element, ns, "note"),
        references=references,
        info=info,
    )
