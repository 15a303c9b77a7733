"""The Open311 GeoReport v2 server (see docs/open311.md).

Every resource is ``<endpoint>/<resource>.<format>`` with ``json`` or ``xml``; every answer,
errors included, is in that format (never an HTML page). Business rules stay in
``engagement.services``: a request filed here becomes an ordinary case of the ``open311`` channel.
"""

from __future__ import annotations

import codecs
import logging
import re
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import wraps
from urllib.parse import urlencode

from django.core.exceptions import BadRequest, SuspiciousOperation, ValidationError
from django.db.models import Exists, F, Max, OuterRef, Prefetch, QuerySet, Subquery
from django.http import HttpRequest, HttpResponse, QueryDict
from django.http.multipartparser import MultiPartParserError
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.views.decorators.common import no_append_slash
from django.views.decorators.csrf import csrf_exempt

from neighborhoods.ratelimit import RateLimited, client_ip

from .. import services
from ..conf import app_settings
from ..models import Case, CaseNote, CasePhoto, ServiceQuestion, ServiceType
from . import keys, render

logger = logging.getLogger(__name__)

# The longest span of requested_datetime one list may cover (the standard's limit).
WINDOW = timedelta(days=90)
MEDIA_URL_MAX = 200
_ATTRIBUTE = re.compile(r"^attribute\[([A-Za-z0-9_.-]+)\](\[\])?$")
# A "+hh:mm" offset sent unencoded in a query string arrives as " hh:mm".
_SPACE_OFFSET = re.compile(r"^(.*T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?) (\d{2}:?\d{2})$")
_TRUE = {"true", "1", "yes"}
# The columns a service request record is made of (annotations add the related names).
RECORD_FIELDS = (
    "tracking_number",
    "status",
    "resolution",
    "resolution_note",
    "responsible_party",
    "description",
    "lat",
    "lon",
    "address",
    "channel",
    "supporter_count",
    "created_at",
    "updated_at",
    "expected_at",
    "scheduled_for",
    "neighborhood_id",
)


class Open311Error(Exception):
    """An answer in the standard's error format: one description per problem."""

    def __init__(self, status: int, messages: list[str], headers: dict | None = None) -> None:
        super().__init__(messages)
        self.status = status
        self.messages = messages
        self.headers = headers


def endpoint(*methods: str) -> Callable:
    """Wrap a view: allowed methods, jurisdiction check, errors in the requested format."""
    allowed = {*methods, "HEAD"} if "GET" in methods else set(methods)

    def decorate(view: Callable) -> Callable:
        @csrf_exempt
        @no_append_slash
        @wraps(view)
        def wrapper(request: HttpRequest, *args, fmt: str, **kwargs) -> HttpResponse:
            try:
                if request.method not in allowed:
                    raise Open311Error(
                        405,
                        [f"Use {' or '.join(sorted(allowed - {'HEAD'}))} here."],
                        {"Allow": ", ".join(sorted(allowed))},
                    )
                check_jurisdiction(request)
                response = view(request, *args, fmt=fmt, **kwargs)
                if request.method in ("GET", "HEAD"):
                    # Public data: a web page on another site may read it (filing needs a key).
                    response["Access-Control-Allow-Origin"] = "*"
                return response
            except Open311Error as exc:
                return render.errors(fmt, exc.status, exc.messages, headers=exc.headers)
            except RateLimited as exc:
                return render.errors(
                    fmt,
                    429,
                    [f"Too many requests with this api_key. {exc}"],
                    headers={"Retry-After": str(exc.retry_after)},
                )
            except (SuspiciousOperation, BadRequest, MultiPartParserError):
                return render.errors(fmt, 400, ["The request body could not be read."])
            except Exception:
                logger.exception("Open311 %s %s failed", request.method, request.path)
                return render.errors(fmt, 500, ["The server could not answer. Try again later."])

        return wrapper

    return decorate


# Parameters -----------------------------------------------------------------------------------


def _form(request: HttpRequest) -> QueryDict:
    """The POST body. A form body labelled with another charset than UTF-8 (older clients send
    ``charset=iso-8859-1`` with plain ASCII) is read in that charset instead of refused."""
    charset = request.content_params.get("charset", "") if request.content_params else ""
    if (
        request.method == "POST"
        and request.content_type == "application/x-www-form-urlencoded"
        and charset.lower().replace("_", "-") not in ("", "utf-8", "utf8")
    ):
        try:
            codecs.lookup(charset)
        except LookupError:
            raise Open311Error(400, [f"Content-Type: unknown charset “{charset[:40]}”."]) from None
        return QueryDict(request.body, encoding=charset)
    return request.POST


def parameters(request: HttpRequest) -> dict[str, list[str]]:
    """Body and query string together (the body wins): clients put ``api_key`` and
    ``jurisdiction_id`` in either."""
    form = _form(request)
    merged = {name: form.getlist(name) for name in form}
    for name in request.GET:
        merged.setdefault(name, request.GET.getlist(name))
    return merged


def first(params: dict[str, list[str]], name: str) -> str:
    """The parameter's value, stripped; an empty value is the same as an absent one."""
    for value in params.get(name, ()):
        if value.strip():
            return value.strip()
    return ""


def check_jurisdiction(request: HttpRequest) -> None:
    """One jurisdiction per site: a missing or empty ``jurisdiction_id`` means this one."""
    wanted = first(parameters(request), "jurisdiction_id")
    ours = app_settings.OPEN311_JURISDICTION
    if wanted and ours and wanted.lower() != ours.lower():
        raise Open311Error(404, [f"jurisdiction_id: this server serves “{ours}” only."])


def comma_list(value: str) -> list[str]:
    return list(dict.fromkeys(part.strip() for part in value.split(",") if part.strip()))


# Dates outside these years mean nothing here (and would overflow the 90-day window's arithmetic).
EARLIEST_YEAR, LATEST_YEAR = 1970, 2999


def parse_when(name: str, value: str, problems: list[str]) -> datetime | None:
    """A W3C datetime (``2026-03-01T09:30:00Z``, ``…-05:00``); a bare date is local midnight."""
    if not value:
        return None
    spaced = _SPACE_OFFSET.match(value)
    if spaced:
        value = f"{spaced[1]}+{spaced[2]}"
    parsed = None
    try:
        if "T" in value:
            parsed = parse_datetime(value)
        else:
            day = parse_date(value)
            parsed = datetime(day.year, day.month, day.day) if day else None
    except ValueError:
        parsed = None
    if parsed is None:
        problems.append(f"{name}: give a W3C date and time such as 2026-03-01T00:00:00Z.")
        return None
    if not EARLIEST_YEAR <= parsed.year <= LATEST_YEAR:
        problems.append(f"{name}: give a date between {EARLIEST_YEAR} and {LATEST_YEAR}.")
        return None
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed)
    return parsed


def positive_int(name: str, value: str, default: int, most: int, problems: list[str]) -> int:
    if not value:
        return default
    try:
        number = int(value)
    except ValueError:
        number = 0
    if not 1 <= number <= most:
        problems.append(f"{name}: give a whole number from 1 to {most:,}.")
        return default
    return number


# Discovery and services -----------------------------------------------------------------------


@endpoint("GET")
def discovery(request: HttpRequest, *, fmt: str) -> HttpResponse:
    changeset = ServiceType.objects.aggregate(latest=Max("updated_at"))["latest"]
    base = reverse("open311:services", kwargs={"fmt": fmt}).rsplit("/", 1)[0]
    data = render.discovery(
        endpoint_url=request.build_absolute_uri(base),
        changeset=changeset,
        contact=app_settings.OPEN311_CONTACT,
        key_service=app_settings.OPEN311_KEY_SERVICE,
    )
    return render.document(fmt, "discovery", data, content_type=render.DISCOVERY_CONTENT_TYPES[fmt])


@endpoint("GET")
def service_list(request: HttpRequest, *, fmt: str) -> HttpResponse:
    types = ServiceType.objects.filter(is_active=True).annotate(
        has_questions=Exists(ServiceQuestion.objects.filter(service_type=OuterRef("pk")))
    )
    data = [render.service(t, has_questions=t.has_questions) for t in types]
    return render.document(fmt, "services", data)


@endpoint("GET")
def service_definition(request: HttpRequest, *, fmt: str, code: str) -> HttpResponse:
    service_type = ServiceType.objects.filter(code=code, is_active=True).first()
    if service_type is None:
        raise Open311Error(404, [f"service_code: no service “{code}”."])
    data = render.service_definition(service_type, services.questions_of(service_type))
    return render.document(fmt, "service_definition", data)


# Reading requests -----------------------------------------------------------------------------


def request_records(*, extensions: bool = False) -> QuerySet[Case]:
    """Cases with what a record shows, newest first, in a fixed number of queries however many
    rows: one for the cases (with their service, department, latest public note, first photo and
    the original of a duplicate annotated) and, with ``extensions``, one for their public
    timelines. The reporter and contact columns are not even read."""
    latest_note = (
        CaseNote.objects.filter(case=OuterRef("pk"), is_public=True)
        .exclude(kind=CaseNote.Kind.CREATED)
        .exclude(text="")
        .order_by("-created_at", "-id")
        .values("text")[:1]
    )
    # The first photo that has a file or an address (both subqueries pick the same row).
    first_photo = (
        CasePhoto.objects.filter(case=OuterRef("pk"))
        .exclude(image="", url="")
        .order_by("created_at", "id")
    )
    cases = (
        Case.objects.only(*RECORD_FIELDS)
        .annotate(
            service_code=F("service_type__code"),
            service_name=F("service_type__name"),
            agency=F("department__name"),
            latest_public_note=Subquery(latest_note),
            duplicate_number=F("duplicate_of__tracking_number"),
        )
        .annotate(
            first_photo_image=Subquery(first_photo.values("image")[:1]),
            first_photo_url=Subquery(first_photo.values("url")[:1]),
        )
        .order_by("-created_at", "-id")
    )
    if extensions:
        cases = cases.annotate(neighborhood_name=F("neighborhood__name")).prefetch_related(
            Prefetch(
                "notes",
                queryset=CaseNote.objects.filter(is_public=True)
                .only("case_id", "kind", "text", "status_to", "created_at")
                .order_by("created_at", "id"),
                to_attr="public_notes",
            )
        )
    return cases


def _records(request: HttpRequest, cases, extensions: bool) -> list[dict]:
    zone = timezone.get_current_timezone()
    return [
        render.service_request(case, request, extensions=extensions, zone=zone) for case in cases
    ]


def _wants_extensions(params: dict[str, list[str]]) -> bool:
    return first(params, "extensions").lower() in _TRUE


@endpoint("GET", "POST")
def requests_resource(request: HttpRequest, *, fmt: str) -> HttpResponse:
    """``GET requests`` lists, ``POST requests`` files."""
    if request.method == "POST":
        return create_request(request, fmt=fmt)
    return request_list(request, fmt=fmt)


def request_list(request: HttpRequest, *, fmt: str) -> HttpResponse:
    """``GET requests``: the standard filters, ``updated_after``/``updated_before`` and pages."""
    params = parameters(request)
    problems: list[str] = []
    extensions = _wants_extensions(params)
    cases = Case.objects.order_by("-created_at", "-id")
    most = app_settings.OPEN311_MAX_PAGE_SIZE
    default_size = app_settings.OPEN311_PAGE_SIZE
    ids = comma_list(first(params, "service_request_id"))
    if ids:
        # A list of ids overrides every other filter (the standard's rule).
        if len(ids) > most:
            problems.append(f"service_request_id: ask for at most {most:,} ids at a time.")
        cases = cases.filter(tracking_number__in=ids)
        default_size = min(most, max(default_size, len(ids)))
    else:
        cases = _filtered(cases, params, problems)
    page = positive_int("page", first(params, "page"), 1, 1_000_000, problems)
    size = positive_int("page_size", first(params, "page_size"), default_size, most, problems)
    if problems:
        raise Open311Error(400, problems)
    offset = (page - 1) * size
    # The page's ids first, from the indexes alone; then the records of those rows only, so a
    # deep page or a narrow filter never computes records it skips.
    page_ids = list(cases.values_list("pk", flat=True)[offset : offset + size + 1])
    rows = list(request_records(extensions=extensions).filter(pk__in=page_ids[:size]))
    headers = {}
    if len(page_ids) > size:
        following = {k: v for k, v in request.GET.lists() if k != "page"}
        query = urlencode({**following, "page": [str(page + 1)]}, doseq=True)
        headers["Link"] = f'<{request.build_absolute_uri(request.path)}?{query}>; rel="next"'
    return render.document(
        fmt, "service_requests", _records(request, rows, extensions), headers=headers
    )


def _filtered(cases: QuerySet[Case], params: dict[str, list[str]], problems: list[str]):
    codes = comma_list(first(params, "service_code"))
    if codes:
        cases = cases.filter(service_type__code__in=codes)
    statuses = {s.lower() for s in comma_list(first(params, "status"))}
    if statuses - {"open", "closed"}:
        problems.append("status: use open, closed or open,closed.")
    elif statuses == {"open"}:
        # Listing the open states (rather than "not closed") lets the database use its
        # (service type, status) and (status, created) indexes.
        cases = cases.filter(status__in=services.OPEN_STATUSES)
    elif statuses == {"closed"}:
        cases = cases.filter(status=Case.Status.CLOSED)
    start = parse_when("start_date", first(params, "start_date"), problems)
    end = parse_when("end_date", first(params, "end_date"), problems)
    updated_after = parse_when("updated_after", first(params, "updated_after"), problems)
    updated_before = parse_when("updated_before", first(params, "updated_before"), problems)
    if start and end:
        if end < start:
            problems.append("end_date: give a date after start_date.")
        elif end - start > WINDOW:
            problems.append(
                f"start_date, end_date: the window may span at most {WINDOW.days} days; "
                "ask for shorter windows one after another."
            )
    elif start:
        end = start + WINDOW
    elif end:
        start = end - WINDOW
    elif not (updated_after or updated_before):
        start = timezone.now() - WINDOW
    if start:
        cases = cases.filter(created_at__gte=start)
    if end:
        cases = cases.filter(created_at__lte=end)
    if updated_after and updated_before and updated_before < updated_after:
        problems.append("updated_before: give a date after updated_after.")
    if updated_after:
        cases = cases.filter(updated_at__gte=updated_after)
    if updated_before:
        cases = cases.filter(updated_at__lte=updated_before)
    return cases


@endpoint("GET")
def request_detail(request: HttpRequest, *, fmt: str, request_id: str) -> HttpResponse:
    extensions = _wants_extensions(parameters(request))
    case = request_records(extensions=extensions).filter(tracking_number=request_id).first()
    if case is None:
        raise Open311Error(404, [f"service_request_id: no request “{request_id}”."])
    return render.document(fmt, "service_requests", _records(request, [case], extensions))


@endpoint("GET")
def token_lookup(request: HttpRequest, *, fmt: str, token: str) -> HttpResponse:
    try:
        value = uuid.UUID(token)
    except ValueError:
        value = None
    number = (
        Case.objects.filter(token=value).values_list("tracking_number", flat=True).first()
        if value
        else None
    )
    if number is None:
        raise Open311Error(404, [f"token: no request has the token “{token}”."])
    data = [{"service_request_id": number, "token": str(value)}]
    return render.document(fmt, "service_requests", data)


# Filing requests ------------------------------------------------------------------------------

# Fields of services.file_case's errors → the parameter a client sent.
PARAMETER_OF = {
    "service_type": "service_code",
    "address": "address_string",
    "photos": "media",
    "contact_email": "email",
    "contact_phone": "phone",
    "contact_name": "first_name",
}


def _error_messages(exc: ValidationError) -> list[str]:
    if not hasattr(exc, "error_dict"):
        return list(exc.messages)
    messages = []
    for field, field_messages in exc.message_dict.items():
        if field.startswith("answers."):
            name = f"attribute[{field.removeprefix('answers.')}]"
        else:
            name = PARAMETER_OF.get(field, field)
        messages.extend(f"{name}: {message}" for message in field_messages)
    return messages


def _location(params: dict[str, list[str]], problems: list[str]) -> tuple[str, str]:
    lat = first(params, "lat")
    lon = first(params, "long") or first(params, "lon")
    if bool(lat) != bool(lon):
        problems.append("lat, long: give both, or neither.")
        return "", ""
    for name, value, limit in (("lat", lat, 90), ("long", lon, 180)):
        if not value:
            continue
        try:
            number = float(value)
        except ValueError:
            number = float("nan")
        if not -limit <= number <= limit:
            problems.append(f"{name}: give a decimal number from -{limit} to {limit} (WGS84).")
    return lat, lon


def _answers(params: dict[str, list[str]]) -> dict:
    """``attribute[code]=v`` and ``attribute[code][]=v1&attribute[code][]=v2`` → answers."""
    answers: dict[str, list[str]] = {}
    for name, values in params.items():
        match = _ATTRIBUTE.match(name)
        if match:
            answers.setdefault(match[1], []).extend(v for v in values if v.strip())
    return {code: values[0] if len(values) == 1 else values for code, values in answers.items()}


def _media_urls(params: dict[str, list[str]], problems: list[str]) -> list[str]:
    urls = [url.strip() for url in params.get("media_url", ()) if url.strip()]
    for url in urls:
        if not url.lower().startswith(("http://", "https://")) or len(url) > MEDIA_URL_MAX:
            problems.append(
                f"media_url: give an http or https address of at most {MEDIA_URL_MAX} characters."
            )
            break
    if len(urls) > app_settings.CASE_MAX_PHOTOS:
        problems.append(f"media_url: give at most {app_settings.CASE_MAX_PHOTOS} addresses.")
    return urls


# Values of ``address_id`` that mean "none": FixMyStreet sends this when the pin is all it has.
NO_ADDRESS_IDS = {"#NOTPINPOINTED#"}
ADDRESS_ID_MAX = 200


def create_request(request: HttpRequest, *, fmt: str) -> HttpResponse:
    """``POST requests``: file a case for a client holding an active ``api_key``."""
    params = parameters(request)
    key = keys.authenticate(first(params, "api_key"))
    if key is None:
        raise Open311Error(403, ["api_key: missing, unknown or revoked."])
    keys.check_key_rate(key)
    problems: list[str] = []
    code = first(params, "service_code")
    service_type = ServiceType.objects.filter(code=code, is_active=True).first() if code else None
    if not code:
        problems.append("service_code: required.")
    elif service_type is None:
        raise Open311Error(404, [f"service_code: no service “{code}”."])
    lat, lon = _location(params, problems)
    address = first(params, "address_string")
    address_id = first(params, "address_id")
    if address_id.upper() in NO_ADDRESS_IDS:
        address_id = ""  # FixMyStreet's "no address id" placeholder
    elif len(address_id) > ADDRESS_ID_MAX:
        problems.append(f"address_id: at most {ADDRESS_ID_MAX} characters.")
    if not (first(params, "lat") or first(params, "long") or first(params, "lon")) and not (
        address or address_id
    ):
        problems.append("location: give lat and long, address_string or address_id.")
    answers = _answers(params)
    uploads = []
    if request.content_type == "multipart/form-data":  # reading FILES parses the body as such
        uploads = request.FILES.getlist("media") + request.FILES.getlist("media[]")
    # Uploaded files win over media_url (the v2.1 draft's rule).
    media_urls = [] if uploads else _media_urls(params, problems)
    idempotency = request.headers.get("Idempotency-Key", "").strip()
    if len(idempotency) > 80:
        problems.append("Idempotency-Key: at most 80 characters.")
    if problems:
        if service_type is not None:
            try:
                services.clean_answers(service_type, answers)
            except ValidationError as exc:
                problems.extend(_error_messages(exc))
        raise Open311Error(400, problems)
    name = " ".join(f"{first(params, 'first_name')} {first(params, 'last_name')}".split())
    try:
        filed = services.file_case(
            service_type=service_type,
            description=first(params, "description"),
            lat=lat or None,
            lon=lon or None,
            # Without a pin or an address, the address id is all there is to go on.
            address=address or ("" if lat else f"Address id {address_id}"),
            answers=answers,
            photos=uploads,
            media_urls=media_urls,
            channel=Case.Channel.OPEN311,
            contact_name=name,
            contact_email=first(params, "email"),
            contact_phone=first(params, "phone"),
            api_client=key.name,
            idempotency_key=f"open311:{key.pk}:{idempotency}" if idempotency else "",
            ip=client_ip(request),
        )
    except ValidationError as exc:
        raise Open311Error(400, _error_messages(exc)) from None
    case = request_records().get(pk=filed.case.pk)
    item = {
        "service_request_id": case.tracking_number,
        "service_notice": render.service_notice(case),
    }
    account_id = first(params, "account_id")
    if account_id:
        item["account_id"] = account_id
    return render.document(fmt, "service_requests", [item])


@csrf_exempt
@no_append_slash
def not_found(request: HttpRequest, rest: str = "") -> HttpResponse:
    """Anything else under the Open311 prefix: a 404 in the format the path asks for."""
    fmt = render.JSON if rest.endswith(".json") else render.XML
    suffix = rest.rsplit("/", 1)[-1]
    if rest.endswith("/") and rest.rstrip("/").endswith((".json", ".xml")):
        fmt = render.JSON if rest.rstrip("/").endswith(".json") else render.XML
        message = "Remove the slash at the end of the address."
    elif "." not in suffix:
        message = "Add .json or .xml to the address."
    elif not suffix.endswith((".json", ".xml")):
        message = "Use .json or .xml."
    else:
        message = "No such Open311 resource."
    return render.errors(fmt, 404, [message])
