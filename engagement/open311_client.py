"""A client of a city's own Open311 GeoReport v2 endpoint, used to forward cases to it.

What it does (see docs/forwarding.md):

- **Formats**: ``OPEN311_FORWARD_FORMAT``, else JSON when the city's discovery lists
  ``application/json``, else XML (the only format the standard makes mandatory). XML is parsed
  with defusedxml (no entity expansion, no external references). Either format comes back as the
  same Python data, with every container (``services``, ``service_requests``, ``errors``,
  ``attributes``, ``values``...) a list even when a naive server collapsed a single item.
- **Caching**: discovery for a few minutes; the services list and service definitions until the
  discovery ``changeset`` changes (an hour when the city has no discovery).
- **Transport**: http.client with a timeout on every step, a size limit, no redirect followed for
  a POST and none to another host for a GET. Failures are classified for the outbox:
  :class:`NotDelivered` (nothing reached the city, or it said it did nothing: retry),
  :class:`OutcomeUnknown` (the request went out but the answer was lost or unreadable: the city may
  have acted, so look before sending again) and :class:`Rejected` (a 4xx answer with the city's
  errors: do not retry).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import ssl
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit
from xml.etree import ElementTree as ET

from defusedxml import DefusedXmlException
from defusedxml import ElementTree as SafeET
from django.core.cache import cache

JSON, XML = "json", "xml"
USER_AGENT = "wagtail-engagement Open311 forwarder"
TIMEOUT_SECONDS = 20.0
MAX_BYTES = 5 * 1024 * 1024
MAX_REDIRECTS = 3
DISCOVERY_CACHE_SECONDS = 600
SERVICES_CACHE_SECONDS = 24 * 3600
SERVICES_CACHE_SECONDS_WITHOUT_DISCOVERY = 3600
# Containers of the standard and of its common extensions → the name of their repeated child.
CONTAINERS = {
    "services": "service",
    "service_requests": "request",
    "errors": "error",
    "attributes": "attribute",
    "values": "value",
    "endpoints": "endpoint",
    "formats": "format",
    "groups": "group",
    "service_request_updates": "request_update",
    "notes": "note",
}
ITEMS = frozenset(CONTAINERS.values())
# Answers that say the server did nothing and may be asked again later.
BUSY_STATUSES = frozenset({408, 425, 429, 503})


class Open311Error(Exception):
    """A call to the city's endpoint did not give a usable answer."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotDelivered(Open311Error):
    """Nothing reached the city (no connection, a redirect), or it answered that it did nothing
    (busy, rate-limited): asking again cannot make a duplicate."""


class OutcomeUnknown(Open311Error):
    """The request was sent but no readable answer came back (a timeout, a dropped connection,
    a server error, a garbled body): the city may have acted on it."""


class Rejected(Open311Error):
    """The city refused the request (HTTP 4xx); ``errors`` are its ``(code, description)``."""

    def __init__(self, status: int, errors: Sequence[tuple[str, str]], message: str = "") -> None:
        self.status = status
        self.errors = list(errors)
        text = "; ".join(description or code for code, description in self.errors)
        super().__init__(message or f"HTTP {status}: {text or 'no reason given'}")


# Parsing -----------------------------------------------------------------------------------


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _element_data(element: ET.Element) -> Any:
    children = list(element)
    tag = _local(element.tag)
    if tag in CONTAINERS or (
        children
        and len({_local(child.tag) for child in children}) == 1
        and _local(children[0].tag) in ITEMS
    ):
        return [_element_data(child) for child in children]
    if not children:
        text = (element.text or "").strip()
        return text or None
    data: dict[str, Any] = {}
    for child in children:
        key, value = _local(child.tag), _element_data(child)
        if key in data:
            previous = data[key]
            data[key] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            data[key] = value
    return data


def parse_document(body: bytes, fmt: str) -> Any:
    """An Open311 document as Python data; :class:`ValueError` for anything unreadable."""
    if fmt == JSON:
        try:
            return json.loads(body.decode("utf-8-sig"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"not JSON ({exc.__class__.__name__})") from None
    try:
        root = SafeET.fromstring(body, forbid_dtd=False, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise ValueError(f"unsafe XML refused ({exc.__class__.__name__})") from None
    except ET.ParseError as exc:
        raise ValueError(f"not well-formed XML ({exc})") from None
    return _element_data(root)


def as_list(value: Any, item: str | None = None) -> list:
    """A container as a list, whatever a server or a naive converter made of it: ``None`` → ``[]``,
    one object → ``[object]``, ``{"request": [...]}`` or ``{"service_requests": {...}}`` → the
    items."""
    if value is None or value == "":
        return []
    if isinstance(value, dict) and len(value) == 1:
        ((key, inner),) = value.items()
        if key == item or key in ITEMS:
            return as_list(inner, item)
        if key in CONTAINERS:
            return as_list(inner, CONTAINERS[key])
    if isinstance(value, list):
        return value
    return [value]


def records(value: Any, item: str) -> list[dict]:
    """The objects of a container (anything that is not an object is dropped; an item wrapped
    in its own name, ``[{"request": {…}}]``, is unwrapped)."""
    found = []
    for entry in as_list(value, item):
        if isinstance(entry, dict) and set(entry) == {item} and isinstance(entry[item], dict):
            entry = entry[item]
        if isinstance(entry, dict):
            found.append(entry)
    return found


def error_list(data: Any) -> list[tuple[str, str]]:
    """The ``(code, description)`` pairs when ``data`` is the standard's error list (some servers
    send one with HTTP 200), else ``[]``."""
    if isinstance(data, dict) and set(data) == {"errors"}:
        data = data["errors"]
    if not isinstance(data, list) or not data:
        return []
    entries = records(data, "error")
    if len(entries) != len(data):
        return []
    for entry in entries:
        if not {"code", "description"} & set(entry) or {
            "service_request_id",
            "service_code",
            "token",
        } & set(entry):
            return []
    return [(text(e.get("code")), text(e.get("description"))[:500]) for e in entries]


def truthy(value: Any) -> bool:
    """Open311 booleans: JSON ``true``, XML ``true`` (any case), ``1``."""
    if isinstance(value, bool):
        return value
    return str(value or "").strip().lower() in ("true", "1", "yes")


def text(value: Any) -> str:
    """A scalar as a stripped string (``None`` → ``""``; numbers as written)."""
    if value is None or isinstance(value, dict | list):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).strip()


def parse_errors(body: bytes, fmt: str) -> list[tuple[str, str]]:
    """The ``(code, description)`` pairs of an error body; ``[]`` for HTML or garbage."""
    for candidate in (fmt, XML if fmt == JSON else JSON):
        try:
            data = parse_document(body, candidate)
        except ValueError:
            continue
        errors = [
            (code, description) for code, description in error_list(data) if code or description
        ]
        if errors:
            return errors
    return []


def w3c(value: datetime) -> str:
    """A W3C datetime in whole seconds, UTC (``2026-03-01T14:30:00Z``)."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# The client -------------------------------------------------------------------------------


@dataclass
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes
    url: str


class Open311Client:
    """One city's endpoint: ``endpoint`` is the GeoReport v2 base (``https://host/open311/v2``)."""

    def __init__(
        self,
        endpoint: str,
        *,
        api_key: str = "",
        jurisdiction_id: str = "",
        format: str = "",
        timeout: float = TIMEOUT_SECONDS,
        max_bytes: int = MAX_BYTES,
    ) -> None:
        endpoint = (endpoint or "").strip().rstrip("/")
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("The Open311 endpoint must be an http or https address.")
        format = (format or "").strip().lower()
        if format not in ("", JSON, XML):
            raise ValueError("The Open311 format is json or xml.")
        self.endpoint = endpoint
        self.api_key = (api_key or "").strip()
        self.jurisdiction_id = (jurisdiction_id or "").strip()
        self.configured_format = format
        self.timeout = timeout
        self.max_bytes = max_bytes
        key = f"{endpoint}|{self.jurisdiction_id}".encode()
        self.cache_prefix = f"open311-forward:{hashlib.sha256(key).hexdigest()[:16]}"

    # Transport ------------------------------------------------------------------------------

    def _send(self, method: str, url: str, body: bytes | None, headers: dict[str, str]) -> Answer:
        parts = urlsplit(url)
        if parts.scheme == "https":
            connection: http.client.HTTPConnection = http.client.HTTPSConnection(
                parts.hostname,
                parts.port,
                timeout=self.timeout,
                context=ssl.create_default_context(),
            )
        else:
            connection = http.client.HTTPConnection(
                parts.hostname, parts.port, timeout=self.timeout
            )
        target = parts.path or "/"
        if parts.query:
            target = f"{target}?{parts.query}"
        deadline = time.monotonic() + self.timeout
        try:
            try:
                connection.connect()
            except (OSError, http.client.HTTPException) as exc:
                raise NotDelivered(f"could not connect to {parts.netloc}: {_reason(exc)}") from None
            try:
                connection.request(
                    method,
                    target,
                    body=body,
                    headers={"User-Agent": USER_AGENT, "Accept": "*/*", **headers},
                )
                response = connection.getresponse()
                length = (response.headers.get("Content-Length") or "").strip()
                if length.isdigit() and int(length) > self.max_bytes:
                    raise OutcomeUnknown(f"the answer is larger than {self.max_bytes} bytes")
                chunks, total = [], 0
                while chunk := response.read(64 * 1024):
                    total += len(chunk)
                    if total > self.max_bytes:
                        raise OutcomeUnknown(f"the answer is larger than {self.max_bytes} bytes")
                    if time.monotonic() > deadline:
                        raise OutcomeUnknown(f"no complete answer within {self.timeout:g} s")
                    chunks.append(chunk)
            except TimeoutError:
                raise OutcomeUnknown(f"no answer within {self.timeout:g} s") from None
            except (OSError, http.client.HTTPException) as exc:
                raise OutcomeUnknown(f"the connection failed: {_reason(exc)}") from None
            return Answer(response.status, response.headers, b"".join(chunks), url)
        finally:
            connection.close()

    def _url(self, resource: str, fmt: str, params: Sequence[tuple[str, str]] = ()) -> str:
        url = f"{self.endpoint}/{resource}.{fmt}"
        query = [(name, value) for name, value in params if value != ""]
        if self.jurisdiction_id:
            query.append(("jurisdiction_id", self.jurisdiction_id))
        return f"{url}?{urlencode(query)}" if query else url

    def get(
        self, resource: str, params: Sequence[tuple[str, str]] = (), *, fmt: str | None = None
    ) -> tuple[Any, Answer]:
        """``GET <endpoint>/<resource>.<fmt>``: the parsed document and the raw answer.

        Redirects are followed only to the same host (at most three); errors are raised as
        :class:`Rejected` (4xx), :class:`NotDelivered` or :class:`OutcomeUnknown`.
        """
        fmt = fmt or self.format
        url = self._url(resource, fmt, params)
        origin = urlsplit(url)
        for _ in range(MAX_REDIRECTS + 1):
            answer = self._send("GET", url, None, {})
            if answer.status not in (301, 302, 303, 307, 308):
                return self._document(answer, fmt), answer
            location = urljoin(url, answer.headers.get("Location") or "")
            target = urlsplit(location)
            if target.scheme not in ("http", "https") or target.hostname != origin.hostname:
                raise NotDelivered(f"refused a redirect to another host ({location[:120]})")
            url = location
        raise NotDelivered("too many redirects")

    def post(
        self,
        resource: str,
        fields: Sequence[tuple[str, str]],
        *,
        headers: dict[str, str] | None = None,
        fmt: str | None = None,
    ) -> Any:
        """``POST <endpoint>/<resource>.<fmt>`` with a form body (``api_key`` and
        ``jurisdiction_id`` added when set); a redirect is never followed."""
        fmt = fmt or self.format
        body_fields = [(name, value) for name, value in fields if value != ""]
        if self.api_key:
            body_fields.append(("api_key", self.api_key))
        if self.jurisdiction_id:
            body_fields.append(("jurisdiction_id", self.jurisdiction_id))
        body = urlencode(body_fields).encode()
        url = f"{self.endpoint}/{resource}.{fmt}"
        answer = self._send(
            "POST",
            url,
            body,
            {
                "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
                **(headers or {}),
            },
        )
        if 300 <= answer.status < 400:
            location = answer.headers.get("Location") or "?"
            raise NotDelivered(
                f"the endpoint redirects a POST to {location[:120]}; set the forwarding address "
                "to the final one"
            )
        return self._document(answer, fmt)

    def _document(self, answer: Answer, fmt: str) -> Any:
        status = answer.status
        if 200 <= status < 300:
            try:
                data = parse_document(answer.body, fmt)
            except ValueError as exc:
                raise OutcomeUnknown(f"HTTP {status} with an unreadable answer: {exc}") from None
            errors = error_list(data)
            if errors:
                raise Rejected(status, errors)
            return data
        errors = parse_errors(answer.body, fmt)
        if status in BUSY_STATUSES:
            raise NotDelivered(_status_message(status, errors, "the city's server is busy"))
        if 400 <= status < 500:
            raise Rejected(status, errors)
        if 300 <= status < 400:
            raise NotDelivered(f"HTTP {status}: an unexpected redirect")
        raise OutcomeUnknown(_status_message(status, errors, "the city's server failed"))

    # Discovery, services, definitions ---------------------------------------------------------

    def discovery(self) -> dict | None:
        """The city's discovery document (cached), or ``None`` when it has none."""
        key = f"{self.cache_prefix}:discovery"
        cached = cache.get(key)
        if cached is not None:
            return cached or None
        found: dict = {}
        fmt = self.configured_format or XML
        parent = self.endpoint.rsplit("/", 1)[0]
        for base in (self.endpoint, parent):
            url = f"{base}/discovery.{fmt}"
            try:
                answer = self._send("GET", url, None, {})
                data = self._document(answer, fmt) if answer.status == 200 else None
            except Open311Error:
                data = None
            if isinstance(data, dict) and ("endpoints" in data or "changeset" in data):
                found = data
                break
        cache.set(key, found, DISCOVERY_CACHE_SECONDS)
        return found or None

    @property
    def format(self) -> str:
        """``json`` or ``xml``: the configured one, else JSON if discovery lists it, else XML."""
        if self.configured_format:
            return self.configured_format
        discovery = self.discovery()
        if discovery:
            for endpoint in records(discovery.get("endpoints"), "endpoint"):
                formats = [text(f).lower() for f in as_list(endpoint.get("formats"), "format")]
                if any("json" in f for f in formats):
                    return JSON
        return XML

    def changeset(self) -> str:
        discovery = self.discovery() or {}
        return text(discovery.get("changeset"))

    def _cached(self, name: str, load) -> Any:
        changeset = self.changeset()
        key = f"{self.cache_prefix}:{name}:{hashlib.sha256(changeset.encode()).hexdigest()[:12]}"
        value = cache.get(key)
        if value is None:
            value = load()
            seconds = (
                SERVICES_CACHE_SECONDS if changeset else SERVICES_CACHE_SECONDS_WITHOUT_DISCOVERY
            )
            cache.set(key, value, seconds)
        return value

    def services(self) -> list[dict]:
        """The city's services list (cached until its discovery changeset changes)."""
        return self._cached("services", lambda: records(self.get("services")[0], "service"))

    def service(self, code: str) -> dict | None:
        for entry in self.services():
            if text(entry.get("service_code")) == code:
                return entry
        return None

    def definition(self, code: str) -> dict:
        """A service definition with ``attributes`` (and their ``values``) as lists."""

        def load() -> dict:
            data, _ = self.get(f"services/{code}")
            if isinstance(data, list):  # a server that wrapped it
                data = data[0] if data and isinstance(data[0], dict) else {}
            if not isinstance(data, dict):
                raise OutcomeUnknown("the service definition is not an object")
            if set(data) == {"service_definition"}:
                data = data["service_definition"]
            attributes = []
            for attribute in records(data.get("attributes"), "attribute"):
                attribute = dict(attribute)
                attribute["values"] = records(attribute.get("values"), "value")
                attributes.append(attribute)
            return {**data, "attributes": attributes}

        return self._cached(f"definition:{code}", load)

    # Requests ---------------------------------------------------------------------------------

    def create_request(
        self, fields: Sequence[tuple[str, str]], *, idempotency_key: str = ""
    ) -> dict:
        """``POST requests``: the first item of the answer (``service_request_id`` or ``token``,
        or neither for a service that gives no number)."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        data = self.post("requests", fields, headers=headers)
        items = records(data, "request")
        if not items and data not in (None, [], ""):
            raise OutcomeUnknown("the answer to the POST lists no request")
        return items[0] if items else {}

    def token(self, token: str) -> str | None:
        """The request id a token stands for, once the city has given one."""
        try:
            data, _ = self.get(f"tokens/{token}")
        except Rejected as exc:
            if exc.status == 404:
                return None
            raise
        for item in records(data, "request"):
            number = text(item.get("service_request_id"))
            if number:
                return number
        return None

    def requests_by_id(self, ids: Iterable[str]) -> list[dict]:
        """``GET requests?service_request_id=a,b,c`` (the list overrides every other filter)."""
        ids = [i for i in ids if i]
        if not ids:
            return []
        data, _ = self.get("requests", [("service_request_id", ",".join(ids))])
        return [item for item in records(data, "request") if text(item.get("service_request_id"))]

    def request_detail(self, request_id: str) -> dict | None:
        try:
            data, _ = self.get(f"requests/{request_id}")
        except Rejected as exc:
            if exc.status == 404:
                return None
            raise
        items = records(data, "request")
        return items[0] if items else None

    def search(
        self,
        *,
        service_code: str,
        start: datetime,
        end: datetime,
        page_size: int = 100,
        max_pages: int = 20,
    ) -> tuple[list[dict], bool]:
        """Requests of one service filed between ``start`` and ``end``, page by page.

        Returns the records and whether the list is complete: ``False`` when the last page was
        still full after ``max_pages`` (the server may hold more).
        """
        found: list[dict] = []
        seen: set[str] = set()
        base = [
            ("service_code", service_code),
            ("start_date", w3c(start)),
            ("end_date", w3c(end)),
            ("page_size", str(page_size)),
        ]
        for page in range(1, max_pages + 1):
            data, answer = self.get("requests", [*base, ("page", str(page))])
            rows = records(data, "request")
            new = []
            for row in rows:
                number = text(row.get("service_request_id"))
                key = number or json.dumps(row, sort_keys=True, default=str)
                if key not in seen:
                    seen.add(key)
                    new.append(row)
            found.extend(new)
            if not new:
                # Nothing new on a later page: the server ignores paging, so a full first page
                # may not be all there is.
                return found, page == 1
            more = 'rel="next"' in (answer.headers.get("Link") or "")
            if len(rows) < page_size and not more:
                return found, True
        return found, False


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, TimeoutError):
        return "timed out"
    return str(exc) or exc.__class__.__name__


def _status_message(status: int, errors: list[tuple[str, str]], fallback: str) -> str:
    described = "; ".join(description or code for code, description in errors)
    return f"HTTP {status}: {described or fallback}"


__all__ = [
    "JSON",
    "XML",
    "NotDelivered",
    "Open311Client",
    "Open311Error",
    "OutcomeUnknown",
    "Rejected",
    "as_list",
    "error_list",
    "parse_document",
    "parse_errors",
    "records",
    "text",
    "truthy",
    "w3c",
]
