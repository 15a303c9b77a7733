"""Pulling official alerts from other systems: CAP 1.2 messages, and plain Atom and RSS feeds.

Feeds are configured in ``ENGAGEMENT["ALERT_FEEDS"]`` (see :mod:`alerts.conf`) and pulled by
``manage.py ingest_alerts`` or the :func:`ingest_alert_feeds` task.

Every feed is handled in two steps. First it is fetched (http/https only, with a timeout and a
size limit), parsed with defusedxml (entity expansion and external references are refused) and
every item is checked and planned without writing anything: one malformed item refuses the whole
feed. Then the plan is applied inside one transaction. Items that are well-formed but do not
apply here (an area outside every neighborhood, an expired message, a cancel of an alert never
imported) are skipped with a reason, and the rest of the feed is imported.

Running a feed again imports nothing new: official notices are keyed on the CAP identifier (or
the Atom id / RSS guid) in ``Alert.external_id``; an applied CAP Update is remembered by its
identifier in the revision note.
"""

from __future__ import annotations

import hashlib
import html
import http.client
import ipaddress
import logging
import math
import re
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urljoin, urlsplit
from xml.etree import ElementTree as ET

import bleach
import shapely
from defusedxml import DefusedXmlException
from defusedxml import ElementTree as SafeET
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import DatabaseError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django_tasks import task
from shapely import affinity
from shapely.geometry import Polygon, mapping

from neighborhoods.geometry import GeometryError, parse_area
from neighborhoods.locate import intersecting
from neighborhoods.models import Department, Neighborhood

from . import cap, services
from .conf import app_settings
from .models import Alert, AlertCategory, AlertRevision, Severity

logger = logging.getLogger(__name__)

ATOM_NS = "http://www.w3.org/2005/Atom"
GEORSS_NS = "http://www.georss.org/georss"
FORMATS = ("cap", "atom", "rss")
# Most entries read from one feed (each CAP link is one more request).
MAX_ITEMS = 500
# A CAP circle of radius 0 is a point; it is drawn with this radius.
MIN_RADIUS_M = 100
# Tolerance (degrees, about 20 m) when simplifying the city's outline for city-wide notices.
CITY_OUTLINE_TOLERANCE = 0.0002
TITLE_MAX = 140
BODY_MAX = 10_000
USER_AGENT = "wagtail-engagement alert ingester"


class FeedError(Exception):
    """The whole feed is refused, with the reason."""


# Configuration --------------------------------------------------------------------------------


@dataclass(frozen=True)
class FeedConfig:
    name: str
    url: str
    format: str = "cap"
    department: str | None = None
    category: str | None = None
    severity: str | None = None

    @classmethod
    def from_setting(cls, value: Any) -> FeedConfig:
        if not isinstance(value, dict):
            raise FeedError("a feed is configured as a dict with at least 'name' and 'url'")
        unknown = set(value) - {"name", "url", "format", "department", "category", "severity"}
        if unknown:
            raise FeedError(
                f"unknown keys in the feed's configuration: {', '.join(sorted(unknown))}"
            )
        return cls(
            name=str(value.get("name") or "").strip(),
            url=str(value.get("url") or "").strip(),
            format=str(value.get("format") or "cap").strip().lower(),
            department=value.get("department") or None,
            category=value.get("category") or None,
            severity=value.get("severity") or None,
        )


def configured_feeds() -> list[dict]:
    """The raw ``ALERT_FEEDS`` setting."""
    return list(app_settings.ALERT_FEEDS or [])


# Results --------------------------------------------------------------------------------------


@dataclass
class FeedResult:
    name: str
    url: str = ""
    created: int = 0
    updated: int = 0
    cancelled: int = 0
    unchanged: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    error: str | None = None

    @property
    def failed(self) -> bool:
        return self.error is not None

    def reset_counts(self) -> None:
        self.created = self.updated = self.cancelled = self.unchanged = 0
        self.skipped = []

    def summary_lines(self) -> list[str]:
        if self.failed:
            return [f"{self.name}: FAILED, nothing imported: {self.error}"]
        lines = [
            f"{self.name}: {self.created} created, {self.updated} updated, "
            f"{self.cancelled} cancelled, {self.unchanged} unchanged, "
            f"{len(self.skipped)} skipped"
        ]
        lines += [f"  skipped {key}: {reason}" for key, reason in self.skipped]
        return lines

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "url": self.url,
            "created": self.created,
            "updated": self.updated,
            "cancelled": self.cancelled,
            "unchanged": self.unchanged,
            "skipped": [{"item": key, "reason": reason} for key, reason in self.skipped],
            "error": self.error,
        }


# Fetching and parsing -------------------------------------------------------------------------


def is_private_address(url: str) -> bool:
    """Whether the URL's host is (or resolves to) a loopback, private, link-local or reserved
    address. Unresolvable hosts count as private: they are refused where private ones are."""
    host = urlsplit(url).hostname or ""
    try:
        infos = socket.getaddrinfo(host, None)
    except (OSError, UnicodeError):
        return True
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%")[0])
        if (
            address.is_private
            or address.is_loopback
            or address.is_link_local
            or address.is_reserved
            or address.is_multicast
            or address.is_unspecified
        ):
            return True
    return False


def _check_reachable(url: str, allow_private: bool) -> None:
    if not allow_private and is_private_address(url):
        raise FeedError(f"refused to fetch an internal address named by the feed: {url[:120]}")


class _HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
    def __init__(self, allow_private: bool = True) -> None:
        super().__init__()
        self.allow_private = allow_private

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if urlsplit(newurl).scheme not in ("http", "https"):
            raise FeedError("the server redirected to an address that is not http or https")
        _check_reachable(newurl, self.allow_private)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _opener(allow_private: bool = True) -> urllib.request.OpenerDirector:
    """HTTP and HTTPS only: no file:, ftp: or data: handlers, even through a redirect."""
    opener = urllib.request.OpenerDirector()
    for handler in (
        urllib.request.ProxyHandler(),
        urllib.request.HTTPHandler(),
        urllib.request.HTTPSHandler(),
        _HttpOnlyRedirects(allow_private),
        urllib.request.HTTPDefaultErrorHandler(),
        urllib.request.HTTPErrorProcessor(),
    ):
        opener.add_handler(handler)
    return opener


def fetch(
    url: str,
    *,
    timeout: float | None = None,
    max_bytes: int | None = None,
    allow_private: bool = True,
) -> bytes:
    """The body at ``url``; raises :class:`FeedError` for anything but a complete, small answer.

    ``allow_private=False`` (for addresses a feed names, as opposed to the configured feed's own)
    refuses loopback, private and link-local hosts, also through redirects.
    """
    timeout = timeout or app_settings.ALERT_FEED_TIMEOUT_SECONDS
    max_bytes = max_bytes or app_settings.ALERT_FEED_MAX_BYTES
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise FeedError(f"only http and https addresses are fetched, not {url[:80]!r}")
    _check_reachable(url, allow_private)
    request = urllib.request.Request(
        url,
        headers={
            "User-Agent": USER_AGENT,
            "Accept": "application/cap+xml, application/atom+xml, application/rss+xml, "
            "application/xml;q=0.9, text/xml;q=0.9",
        },
    )
    deadline = time.monotonic() + timeout
    too_big = f"the response is larger than {max_bytes} bytes"
    try:
        with _opener(allow_private).open(request, timeout=timeout) as response:
            length = response.headers.get("Content-Length", "")
            if length.strip().isdigit() and int(length) > max_bytes:
                raise FeedError(too_big)
            chunks, total = [], 0
            while chunk := response.read(64 * 1024):
                total += len(chunk)
                if total > max_bytes:
                    raise FeedError(too_big)
                if time.monotonic() > deadline:
                    raise FeedError(f"timed out after {timeout} seconds")
                chunks.append(chunk)
            return b"".join(chunks)
    except urllib.error.HTTPError as exc:
        if 300 <= exc.code < 400:
            raise FeedError(f"refused a redirect (HTTP {exc.code}) from {url[:120]}") from None
        raise FeedError(f"HTTP {exc.code} from {url[:120]}") from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError):
            raise FeedError(f"timed out after {timeout} seconds") from None
        raise FeedError(f"could not connect: {exc.reason}") from None
    except TimeoutError:
        raise FeedError(f"timed out after {timeout} seconds") from None
    except (http.client.HTTPException, OSError) as exc:
        raise FeedError(f"the connection failed: {exc.__class__.__name__}") from None


def parse_xml(body: bytes) -> ET.Element:
    """Parse untrusted XML; entity declarations and external references are refused."""
    try:
        return SafeET.fromstring(body, forbid_dtd=False, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise FeedError(f"unsafe XML refused ({exc.__class__.__name__})") from None
    except ET.ParseError as exc:
        raise FeedError(f"not well-formed XML ({exc})") from None


# Reading items --------------------------------------------------------------------------------


class ItemError(ValueError):
    """A malformed item: the feed it is in is refused."""


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child_text(parent: ET.Element, *tags: str) -> str:
    for tag in tags:
        child = parent.find(tag)
        if child is not None and (child.text or "").strip():
            return child.text.strip()
    return ""


def _entries(root: ET.Element) -> tuple[str, list[ET.Element]]:
    """``("atom" | "rss", entries)`` of a feed document; :class:`FeedError` for another root."""
    if root.tag == f"{{{ATOM_NS}}}feed":
        entries = root.findall(f"{{{ATOM_NS}}}entry")
        kind = "atom"
    elif root.tag == "rss":
        channel = root.find("channel")
        entries = channel.findall("item") if channel is not None else []
        kind = "rss"
    else:
        raise FeedError(f"the document's root is <{_local(root.tag)}>, not an Atom or RSS feed")
    if len(entries) > MAX_ITEMS:
        raise FeedError(f"the feed has {len(entries)} entries; at most {MAX_ITEMS} are read")
    return kind, entries


def _html_to_text(value: str) -> str:
    """Feed HTML → plain text with paragraph breaks (it is stored as the notice's Markdown)."""
    value = re.sub(r"(?is)<(script|style)\b.*?</\1\s*>", "", value)
    value = re.sub(r"(?i)<\s*br\s*/?\s*>", "\n", value)
    value = re.sub(r"(?i)</\s*(p|div|li|h\d)\s*>", "\n\n", value)
    text = bleach.clean(value, tags=set(), strip=True, strip_comments=True)
    text = html.unescape(text)
    lines = [" ".join(line.split()) for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _entry_date(text: str) -> datetime | None:
    if not text:
        return None
    try:
        value = parse_datetime(text)
    except ValueError:  # well-formed but impossible, such as 30 February
        return None
    if value is None:
        try:
            value = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
    if value is not None and timezone.is_naive(value):
        value = timezone.make_aware(value, timezone.get_fixed_timezone(0))
    return value


@dataclass
class PlainItem:
    key: str
    title: str
    body: str
    link: str
    published: datetime | None
    georss: dict[str, list[str]]


def _georss(entry: ET.Element) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for element in entry.iter():
        if element.tag.startswith(f"{{{GEORSS_NS}}}") and (element.text or "").strip():
            found.setdefault(_local(element.tag), []).append(element.text.strip())
    return found


def _stable_key(value: str) -> str:
    if len(value) <= 255:
        return value
    return "sha256:" + hashlib.sha256(value.encode("utf-8")).hexdigest()


def read_plain_item(kind: str, entry: ET.Element, feed_url: str) -> PlainItem:
    if kind == "atom":
        a = f"{{{ATOM_NS}}}"
        key = _child_text(entry, f"{a}id")
        if not key:
            raise ItemError("the entry has no <id>")
        title = _html_to_text(_child_text(entry, f"{a}title"))
        body = _html_to_text(_child_text(entry, f"{a}content", f"{a}summary"))
        link = ""
        for element in entry.findall(f"{a}link"):
            if element.get("rel", "alternate") == "alternate" and element.get("href"):
                link = urljoin(feed_url, element.get("href"))
                break
        published = _entry_date(_child_text(entry, f"{a}published", f"{a}updated"))
    else:
        guid = _child_text(entry, "guid")
        link = _child_text(entry, "link")
        title = _html_to_text(_child_text(entry, "title"))
        body = _html_to_text(_child_text(entry, "description"))
        if guid:
            key = guid if ":" in guid else f"{feed_url}#{guid}"
        elif link:
            key = urljoin(feed_url, link)
        else:
            raise ItemError("the item has neither a <guid> nor a <link>")
        published = _entry_date(_child_text(entry, "pubDate"))
    if not title:
        raise ItemError(f"{key[:80]}: the entry has no title")
    return PlainItem(_stable_key(key), title, body, link, published, _georss(entry))


def _cap_link(kind: str, entry: ET.Element, feed_url: str) -> str:
    """Where an index entry's CAP message is: a link typed as CAP, else its alternate link."""
    if kind == "atom":
        links = entry.findall(f"{{{ATOM_NS}}}link")
        typed = [x for x in links if "cap" in (x.get("type") or "").lower() and x.get("href")]
        alternate = [x for x in links if x.get("rel", "alternate") == "alternate" and x.get("href")]
        chosen = (typed or alternate or [None])[0]
        href = chosen.get("href") if chosen is not None else ""
    else:
        enclosure = [
            x for x in entry.findall("enclosure") if "cap" in (x.get("type") or "").lower()
        ]
        href = enclosure[0].get("url", "") if enclosure else _child_text(entry, "link")
    return urljoin(feed_url, href) if href else ""


def _embedded_cap(entry: ET.Element) -> ET.Element | None:
    for element in entry.iter():
        if cap.is_cap_alert(element):
            return element
    return None


# Planning -------------------------------------------------------------------------------------


@dataclass
class Planned:
    action: str  # "create" | "update" | "cancel" | "unchanged" | "skip"
    key: str
    reason: str = ""
    create: dict[str, Any] = field(default_factory=dict)
    references: list[str] = field(default_factory=list)
    changes: dict[str, Any] = field(default_factory=dict)
    note: str = ""


def _update_marker(identifier: str) -> str:
    return f"({identifier})"


def _target_query(identifiers: Sequence[str]) -> Q:
    query = Q(external_id__in=list(identifiers))
    for identifier in identifiers:
        query |= Q(revisions__note__endswith=_update_marker(identifier))
    return query


def find_target(identifiers: Sequence[str]) -> Alert | None:
    """The notice that CAP messages with these identifiers created or updated (newest first)."""
    if not identifiers:
        return None
    return (
        Alert.objects.filter(_target_query(identifiers), kind=Alert.Kind.OFFICIAL)
        .order_by("-pk")
        .first()
    )


def _circle_polygon(lat: float, lon: float, radius_m: float) -> Polygon:
    """A circle as a polygon, for circles larger than a notice's point-and-radius allows."""
    unit = shapely.Point(lon, lat).buffer(1.0, quad_segs=8)
    dlat = radius_m / services.METERS_PER_DEGREE
    dlon = radius_m / (services.METERS_PER_DEGREE * max(math.cos(math.radians(lat)), 0.01))
    return affinity.scale(unit, xfact=dlon, yfact=dlat, origin=(lon, lat))


def _truncate(text: str, limit: int) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


class Planner:
    """Checks a feed's items and decides what each will do, without writing anything."""

    def __init__(self, config: FeedConfig, *, now: datetime | None = None) -> None:
        self.config = config
        self.now = now or timezone.now()
        self.seen: set[str] = set()
        self.planned: set[str] = set()
        self._categories = {c.slug: c for c in AlertCategory.objects.all()}
        self._city: tuple[list[Neighborhood], dict] | None = None
        self._names: list[tuple[re.Pattern, Neighborhood]] | None = None
        self.department = self._department()
        self.default_category = self._default_category()
        self.default_severity = self._default_severity()

    # Configuration checks

    def _department(self) -> Department | None:
        if not self.config.department:
            return None
        department = Department.objects.filter(slug=self.config.department).first()
        if department is None:
            raise FeedError(f"no department has the slug {self.config.department!r}")
        return department

    def _default_category(self) -> AlertCategory:
        slug = self.config.category
        if slug:
            if slug not in self._categories:
                raise FeedError(f"no alert category has the slug {slug!r}")
            return self._categories[slug]
        if "community" in self._categories:
            return self._categories["community"]
        if not self._categories:
            raise FeedError("there are no alert categories")
        return next(iter(self._categories.values()))

    def _default_severity(self) -> Severity | None:
        if not self.config.severity:
            return None
        try:
            return Severity.from_name(self.config.severity)
        except ValueError as exc:
            raise FeedError(str(exc)) from None

    # Places

    def city(self) -> tuple[list[Neighborhood], dict]:
        """Every neighborhood, and the city's (simplified) outline."""
        if self._city is None:
            neighborhoods = list(Neighborhood.objects.order_by("name"))
            if not neighborhoods:
                raise FeedError("there are no neighborhoods")
            merged = shapely.union_all([shapely.geometry.shape(n.boundary) for n in neighborhoods])
            outline = merged.simplify(CITY_OUTLINE_TOLERANCE, preserve_topology=True)
            self._city = (neighborhoods, parse_area(mapping(outline)))
        return self._city

    def named(self, texts: Iterable[str]) -> list[Neighborhood]:
        """Neighborhoods whose name (or slug) appears in the texts, longest names first."""
        if self._names is None:
            rows = sorted(
                Neighborhood.objects.only("id", "name", "slug"), key=lambda n: -len(n.name)
            )
            self._names = [
                (re.compile(rf"(?<!\w){re.escape(n.name)}(?!\w)", re.IGNORECASE), n) for n in rows
            ]
            self._slugs = {n.slug: n for n in rows}
        found: dict[int, Neighborhood] = {}
        for text in texts:
            remaining = text
            for pattern, neighborhood in self._names:
                if pattern.search(remaining):
                    found[neighborhood.pk] = neighborhood
                    remaining = pattern.sub(" ", remaining)
            for token in re.split(r"[\s;,]+", text.strip().lower()):
                if token in self._slugs:
                    found[self._slugs[token].pk] = self._slugs[token]
        return sorted(found.values(), key=lambda n: n.name)

    def _place_from_shapes(
        self, polygons: list[Polygon], circles: list[tuple[float, float, float]]
    ) -> dict[str, Any] | str:
        """Keyword arguments for the notice's area, or the reason it is skipped."""
        try:
            if (
                not polygons
                and len(circles) == 1
                and circles[0][2] <= app_settings.ALERT_MAX_RADIUS_M
            ):
                lat, lon, radius_m = circles[0]
                radius_m = max(int(round(radius_m)), MIN_RADIUS_M)
                area = services.circle_area(lat, lon, radius_m)
                place = {"lat": lat, "lon": lon, "radius_m": radius_m}
            else:
                shapes = list(polygons) + [
                    _circle_polygon(lat, lon, max(r, MIN_RADIUS_M)) for lat, lon, r in circles
                ]
                area = parse_area(mapping(shapely.union_all(shapes)))
                place = {"area": area}
        except GeometryError as exc:
            raise ItemError(f"the area is not usable: {exc}") from None
        if not intersecting(area):
            return "the area lies outside every neighborhood"
        return place

    def _place_from_names(self, descriptions: list[str]) -> dict[str, Any] | str:
        matched = self.named(descriptions)
        if not matched:
            shown = "; ".join(descriptions)[:120]
            return f"no neighborhood is named in the area “{shown}”"
        return {"neighborhoods": matched}

    def _citywide(self) -> dict[str, Any]:
        neighborhoods, outline = self.city()
        return {"neighborhoods": neighborhoods, "area": outline}

    # Items

    def _known(self, key: str) -> bool:
        return (
            Alert.objects.filter(external_id=key).exists()
            or AlertRevision.objects.filter(note__endswith=_update_marker(key)).exists()
        )

    def _common(self, key: str, source_url: str) -> dict[str, Any]:
        # The link is shown on the notice's page: only web addresses, never javascript: or data:.
        if urlsplit(source_url).scheme.lower() not in ("http", "https"):
            source_url = ""
        if len(source_url) > 500:
            source_url = self.config.url[:500] if len(self.config.url) <= 500 else ""
        return {
            "department": self.department,
            "source": Alert.Source.FEED,
            "source_name": self.config.name[:120],
            "source_url": source_url,
            "external_id": key,
        }

    def plan_cap(self, message: cap.CapMessage, source_url: str) -> Planned | None:
        key = message.identifier
        if key in self.seen:
            return None
        self.seen.add(key)
        if message.status != "Actual":
            return Planned("skip", key, f"status is {message.status}, not Actual")
        if message.scope != "Public":
            return Planned("skip", key, f"scope is {message.scope}, not Public")
        if message.msg_type in ("Ack", "Error"):
            return Planned("skip", key, f"{message.msg_type} messages are not alerts")
        if self._known(key):
            return Planned("unchanged", key)
        refs = message.referenced_identifiers
        target = find_target(refs)
        target_planned = any(ref in self.planned for ref in refs)
        if message.msg_type == "Cancel":
            if target is None and not target_planned:
                return Planned("skip", key, "it cancels an alert that was never imported")
            reason = message.note or f"Cancelled by {self.config.name}"
            return Planned("cancel", key, references=refs, note=reason)

        info = message.info
        assert info is not None  # parse_cap requires it for Alert and Update
        title = _truncate(info.headline or info.event, TITLE_MAX)
        body = _truncate(
            "\n\n".join(t for t in (info.description, info.instruction) if t), BODY_MAX
        )
        severity = cap.CAP_TO_SEVERITY.get(info.severity) or self.default_severity
        severity = severity or Severity.ADVISORY
        starts_at = info.effective or message.sent
        expires_at = info.expires or starts_at + timedelta(
            hours=app_settings.OFFICIAL_DEFAULT_LIFETIME_HOURS
        )
        if expires_at <= self.now:
            return Planned("skip", key, "it has already expired")
        if expires_at <= starts_at:
            return Planned("skip", key, "it expires before it takes effect")

        if message.msg_type == "Update" and (target is not None or target_planned):
            if target is not None and target.status in (
                Alert.Status.RETRACTED,
                Alert.Status.DISMISSED,
            ):
                return Planned("skip", key, "it updates an alert that was cancelled")
            if target is not None and expires_at <= target.starts_at:
                return Planned("skip", key, "it expires before the alert it updates starts")
            return Planned(
                "update",
                key,
                references=refs,
                changes={
                    "title": title,
                    "body": body,
                    "severity": int(severity),
                    "expires_at": expires_at,
                },
                note=f"Updated by {self.config.name[:120]} {_update_marker(key)}",
            )

        # An Alert, or an Update of a message never seen (it carries the whole alert).
        polygons = [p for area in info.areas for p in area.polygons]
        circles = [c for area in info.areas for c in area.circles]
        if polygons or circles:
            place = self._place_from_shapes(polygons, circles)
        elif info.areas:
            place = self._place_from_names([area.description for area in info.areas])
        else:
            place = self._citywide()
        if isinstance(place, str):
            return Planned("skip", key, place)
        slug = next(
            (cap.CAP_TO_CATEGORY[c] for c in info.categories if c in cap.CAP_TO_CATEGORY), None
        )
        category = self._categories.get(slug) if slug else None
        create = self._common(key, source_url)
        if create["department"] is None and info.sender_name:
            create["department"] = Department.objects.filter(name__iexact=info.sender_name).first()
        create.update(
            category=category or self.default_category,
            severity=int(severity),
            title=title,
            body=body,
            starts_at=starts_at,
            expires_at=expires_at,
            **place,
        )
        self.planned.add(key)
        return Planned("create", key, create=create)

    def plan_plain(self, item: PlainItem) -> Planned | None:
        key = item.key
        if key in self.seen:
            return None
        self.seen.add(key)
        if self._known(key):
            return Planned("unchanged", key)
        lifetime = timedelta(hours=app_settings.OFFICIAL_DEFAULT_LIFETIME_HOURS)
        starts_at = min(item.published or self.now, self.now)
        expires_at = starts_at + lifetime
        if expires_at <= self.now:
            return Planned("skip", key, "it is older than an official notice's lifetime")
        place = self._plain_place(item.georss)
        if isinstance(place, str):
            return Planned("skip", key, place)
        severity = min(self.default_severity or Severity.INFO, Severity.ADVISORY)
        create = self._common(key, item.link)
        create.update(
            category=self.default_category,
            severity=int(severity),
            title=_truncate(item.title, TITLE_MAX),
            body=_truncate(item.body, BODY_MAX),
            starts_at=starts_at,
            expires_at=expires_at,
            **place,
        )
        self.planned.add(key)
        return Planned("create", key, create=create)

    def _plain_place(self, georss: dict[str, list[str]]) -> dict[str, Any] | str:
        polygons, circles = [], []
        for text in georss.get("polygon", []):
            numbers = text.split()
            pairs = [f"{lat},{lon}" for lat, lon in zip(numbers[::2], numbers[1::2], strict=False)]
            try:
                polygons.append(cap.parse_polygon(" ".join(pairs)))
            except cap.CapError as exc:
                raise ItemError(f"georss:polygon: {exc}") from None
        for text in georss.get("box", []):
            try:
                south, west, north, east = (float(v) for v in text.split())
            except ValueError:
                raise ItemError("georss:box is not 'lat lon lat lon'") from None
            polygons.append(shapely.box(west, south, east, north))
        radius = georss.get("radius", [""])[0]
        for text in georss.get("point", []):
            try:
                lat, lon = (float(v) for v in text.split())
                radius_m = float(radius) if radius else 500.0
            except ValueError:
                raise ItemError("georss:point is not 'lat lon'") from None
            circles.append((lat, lon, radius_m))
        if polygons or circles:
            return self._place_from_shapes(polygons, circles)
        names = georss.get("featureName", []) + georss.get("featurename", [])
        if names:
            return self._place_from_names(names)
        return self._citywide()


def plan_feed(
    config: FeedConfig, root: ET.Element, *, now: datetime | None = None
) -> list[Planned]:
    """Check every item of a parsed feed and plan it; raises :class:`FeedError` if one is bad."""
    planner = Planner(config, now=now)
    if config.format == "cap":
        messages = _cap_messages(config, root)
        messages.sort(key=lambda pair: pair[0].sent)
        plan = [planner.plan_cap(message, url) for message, url in messages]
    else:
        kind, entries = _entries(root)
        if kind != config.format:
            raise FeedError(f"the feed is configured as {config.format} but is {kind}")
        plan = []
        for number, entry in enumerate(entries, 1):
            try:
                plan.append(planner.plan_plain(read_plain_item(kind, entry, config.url)))
            except ItemError as exc:
                raise FeedError(f"entry {number} is malformed: {exc}") from None
    return [item for item in plan if item is not None]


def _cap_messages(config: FeedConfig, root: ET.Element) -> list[tuple[cap.CapMessage, str]]:
    """The CAP messages of a feed: one ``<alert>``, or an index embedding or linking to them."""
    if cap.is_cap_alert(root):
        try:
            return [(cap.parse_cap(root), config.url)]
        except cap.CapError as exc:
            raise FeedError(f"the CAP message is malformed: {exc}") from None
    kind, entries = _entries(root)
    messages = []
    # A feed on the public internet may not send us to addresses inside the city's network.
    allow_private = is_private_address(config.url)
    for number, entry in enumerate(entries, 1):
        element, url = _embedded_cap(entry), config.url
        if element is None:
            url = _cap_link(kind, entry, config.url)
            if not url:
                raise FeedError(f"entry {number} has no CAP message and no link to one")
            try:
                element = parse_xml(fetch(url, allow_private=allow_private))
            except FeedError as exc:
                raise FeedError(f"entry {number} ({url[:120]}): {exc}") from None
        try:
            messages.append((cap.parse_cap(element), url))
        except cap.CapError as exc:
            raise FeedError(f"entry {number} is not a usable CAP message: {exc}") from None
    return messages


# Applying -------------------------------------------------------------------------------------


def apply_plan(plan: Sequence[Planned], result: FeedResult) -> None:
    """Apply planned items inside one transaction; any error undoes the whole feed."""
    with transaction.atomic():
        for item in plan:
            if item.action == "skip":
                result.skipped.append((item.key, item.reason))
            elif item.action == "unchanged":
                result.unchanged += 1
            elif item.action == "create":
                services.create_official_notice(author=None, **item.create)
                result.created += 1
            elif item.action == "update":
                _apply_update(item, result)
            elif item.action == "cancel":
                _apply_cancel(item, result)
            else:  # pragma: no cover - a programming error
                raise ValueError(f"unknown action {item.action!r}")


def _apply_update(item: Planned, result: FeedResult) -> None:
    target = find_target(item.references)
    if target is None or target.status in (Alert.Status.RETRACTED, Alert.Status.DISMISSED):
        result.skipped.append((item.key, "the alert it updates is gone or cancelled"))
        return
    before = target.version
    changes = dict(item.changes)
    if changes["expires_at"] <= target.starts_at:
        result.skipped.append((item.key, "it expires before the alert it updates starts"))
        return
    edited = services.edit_alert(target, user=None, system=True, note=item.note, **changes)
    if edited.version != before:
        result.updated += 1
    else:
        result.unchanged += 1


def _apply_cancel(item: Planned, result: FeedResult) -> None:
    target = find_target(item.references)
    if target is None:
        result.skipped.append((item.key, "it cancels an alert that was never imported"))
        return
    if target.status == Alert.Status.RETRACTED:
        result.unchanged += 1
        return
    services.retract_alert(target, user=None, system=True, reason=item.note)
    result.cancelled += 1


# Running --------------------------------------------------------------------------------------


def ingest_feed(config: FeedConfig, *, now: datetime | None = None) -> FeedResult:
    """Fetch, check and import one feed. Never raises for a bad feed: the result says why."""
    result = FeedResult(name=config.name or config.url or "(unnamed feed)", url=config.url)
    try:
        if not config.name:
            raise FeedError("the feed has no name")
        if config.format not in FORMATS:
            raise FeedError(f"format must be one of {', '.join(FORMATS)}, not {config.format!r}")
        root = parse_xml(fetch(config.url))
        plan = plan_feed(config, root, now=now)
    except FeedError as exc:
        result.error = str(exc)
    else:
        try:
            apply_plan(plan, result)
        except (ValidationError, PermissionDenied, DatabaseError) as exc:
            result.reset_counts()
            message = "; ".join(getattr(exc, "messages", [str(exc)]))
            result.error = f"could not be applied, nothing imported: {message}"
    if result.failed:
        logger.warning("Alert feed %s skipped: %s", result.name, result.error)
    else:
        for key, reason in result.skipped:
            logger.info("Alert feed %s: item %s skipped: %s", result.name, key, reason)
    return result


def ingest_feeds(names: Sequence[str] | None = None) -> list[FeedResult]:
    """Pull the configured feeds (or only those named); unknown names raise ``KeyError``."""
    raw = configured_feeds()
    if names:
        by_name = {str(entry.get("name")): entry for entry in raw if isinstance(entry, dict)}
        missing = [name for name in names if name not in by_name]
        if missing:
            raise KeyError(", ".join(missing))
        raw = [by_name[name] for name in names]
    results = []
    for entry in raw:
        try:
            config = FeedConfig.from_setting(entry)
        except FeedError as exc:
            name = entry.get("name", "(unnamed feed)") if isinstance(entry, dict) else "(feed)"
            result = FeedResult(name=str(name), error=str(exc))
            logger.warning("Alert feed %s skipped: %s", result.name, result.error)
            results.append(result)
            continue
        results.append(ingest_feed(config))
    return results


@task()
def ingest_alert_feeds(feed: str | None = None) -> dict[str, Any]:
    """Pull every configured alert feed (or the one named); for periodic runs."""
    results = ingest_feeds([feed] if feed else None)
    return {"feeds": [result.as_dict() for result in results]}
