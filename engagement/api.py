"""JSON API of 311 cases: the service catalogue, cases and their filters, filing, escalating a
thread, "me too", surveys, reopening, and the staff's status changes, notes and assignment.

The views check who is asking, turn the request into arguments for :mod:`engagement.services`
and return :func:`engagement.services.case_payload` (with its ``staff`` block for staff who work
the case, and a ``viewer`` block about the caller); the rules themselves live in the services.
"""

from __future__ import annotations

import json

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Prefetch
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
)
from rest_framework import serializers, status
from rest_framework.exceptions import NotAuthenticated
from rest_framework.permissions import IsAuthenticatedOrReadOnly
from rest_framework.response import Response

from alerts.api import TRUE_VALUES, ApiPagination
from forums.api import ERRORS, LIMITED
from forums.models import Thread
from forums.services import can_read_thread
from neighborhoods.apibase import ApiError, ApiView, AuthenticatedApiView
from neighborhoods.apibase import invalid as _invalid
from neighborhoods.apibase import query_list as _codes
from neighborhoods.apibase import validated as _validated
from neighborhoods.geometry import GeometryError, validate_point
from neighborhoods.models import Neighborhood
from neighborhoods.permissions import is_authenticated
from neighborhoods.ratelimit import client_ip

from . import services
from .models import (
    Case,
    CaseNote,
    CasePhoto,
    CaseSupport,
    ServiceQuestion,
    ServiceType,
    SurveyResponse,
)

CHANNELS = Case.Channel.choices
RESOLUTIONS = Case.Resolution.choices
ROLES = ["staff", "reporter", "supporter", "public"]
NEAR_DEFAULT_M = 500
NEAR_MAX_M = 5000
IDEMPOTENCY_HEADER = "Idempotency-Key"
IDEMPOTENCY_KEY_MAX = 80
CASE_RELATIONS = ("service_type", "department", "neighborhood", "duplicate_of")


# Response shapes (for the schema; the data itself is built by the services) -----------------


class ChoiceRefSerializer(serializers.Serializer):
    key = serializers.CharField()
    name = serializers.CharField()


class ServiceQuestionSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="The key of its answer in `answers`.")
    prompt = serializers.CharField()
    datatype = serializers.ChoiceField(choices=ServiceQuestion.Datatype.choices)
    datatype_description = serializers.CharField(help_text="How to answer (may be empty).")
    required = serializers.BooleanField()
    variable = serializers.BooleanField(help_text="False for text that is shown, not answered.")
    order = serializers.IntegerField(help_text="1 is asked first.")
    values = ChoiceRefSerializer(
        many=True, help_text="The choices of `singlevaluelist` and `multivaluelist` questions."
    )


class ServiceTypeSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="The Open311 service_code.")
    name = serializers.CharField()
    description = serializers.CharField()
    group = serializers.CharField()
    keywords = serializers.ListField(child=serializers.CharField())
    department = serializers.CharField(help_text="The department that works these cases.")
    sla_working_days = serializers.IntegerField(
        help_text="Working days to close a case (weekends and holidays do not count)."
    )
    questions = ServiceQuestionSerializer(many=True)


@extend_schema_field(
    {
        "type": "object",
        "additionalProperties": {
            "oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]
        },
        "example": {"size": "large", "lanes": ["bike", "car"]},
    }
)
class AnswersField(serializers.Field):
    """Answers to a service type's questions, by question code: a value, or a list of keys for
    a multi-value list. A multipart form sends the object as JSON text."""

    def to_internal_value(self, data) -> dict:
        if isinstance(data, str):
            try:
                data = json.loads(data) if data.strip() else {}
            except ValueError:
                raise serializers.ValidationError("Give the answers as a JSON object.") from None
        if not isinstance(data, dict):
            raise serializers.ValidationError(
                "Give an object of answers by question code (a list for several choices)."
            )
        for value in data.values():
            values = value if isinstance(value, list) else [value]
            if not all(
                v is None or (isinstance(v, str | int | float) and not isinstance(v, bool))
                for v in values
            ):
                raise serializers.ValidationError(
                    "Each answer is a text or a number, or a list of them."
                )
        return data

    def to_representation(self, value):
        return value


class CaseStaffSerializer(serializers.Serializer):
    reporter = serializers.IntegerField(allow_null=True, help_text="The reporter's user id.")
    contact_name = serializers.CharField()
    contact_email = serializers.CharField()
    contact_phone = serializers.CharField()
    filed_by = serializers.IntegerField(
        allow_null=True, help_text="The call taker or liaison who filed it for someone."
    )
    assigned_to = serializers.IntegerField(allow_null=True)
    api_client = serializers.CharField()


class CaseSerializer(serializers.Serializer):
    """:func:`engagement.services.case_payload`: what lists and live events show of a case."""

    tracking_number = serializers.CharField(help_text="e.g. `26-000123`.")
    url = serializers.CharField(help_text="The case's page.")
    # Not an enum in the schema: alerts have a `status` of their own.
    status = serializers.CharField(
        help_text="`open`, `acknowledged`, `in_progress`, `scheduled` or `closed`."
    )
    status_label = serializers.CharField()
    resolution = serializers.ChoiceField(
        choices=RESOLUTIONS, allow_blank=True, help_text="Set when closed."
    )
    resolution_label = serializers.CharField()
    resolution_note = serializers.CharField()
    duplicate_of = serializers.CharField(
        allow_null=True, help_text="A duplicate's original (tracking number)."
    )
    responsible_party = serializers.CharField(help_text="Whose it is, when not the city's.")
    service_code = serializers.CharField()
    service_name = serializers.CharField()
    department = serializers.CharField()
    description = serializers.CharField()
    answers = AnswersField(help_text="Answers by question code.")
    lat = serializers.FloatField(allow_null=True)
    lon = serializers.FloatField(allow_null=True)
    address = serializers.CharField()
    neighborhood = serializers.SlugField(allow_null=True)
    thread = serializers.IntegerField(allow_null=True, help_text="Escalated from this thread.")
    channel = serializers.ChoiceField(choices=CHANNELS)
    supporter_count = serializers.IntegerField(
        help_text="The reporter, “me too” and the supporters of its threads."
    )
    verified_supporter_count = serializers.IntegerField(
        help_text="Of them, verified residents of the case's neighborhood."
    )
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    expected_at = serializers.DateTimeField(allow_null=True, help_text="From the service level.")
    scheduled_for = serializers.DateField(allow_null=True)
    acknowledged_at = serializers.DateTimeField(allow_null=True)
    closed_at = serializers.DateTimeField(allow_null=True)
    is_overdue = serializers.BooleanField()
    contested_count = serializers.IntegerField(
        help_text="Closures the reporter or supporters contested."
    )
    staff = CaseStaffSerializer(
        required=False,
        help_text="Only for staff of the case's department and supervisors: who reported it "
        "and how to reach them.",
    )


class CaseNoteSerializer(serializers.Serializer):
    """:func:`engagement.services.note_payload` and the note's photo."""

    id = serializers.IntegerField()
    # Not an enum in the schema: alerts have a `kind` of their own.
    kind = serializers.CharField(
        help_text="`created`, `status`, `note`, `assigned`, `reopened`, `contested`, `merged` "
        "or `forwarded`."
    )
    kind_label = serializers.CharField()
    text = serializers.CharField()
    is_public = serializers.BooleanField(help_text="False: an internal note (staff only).")
    status_from = serializers.CharField()
    status_to = serializers.CharField()
    created_at = serializers.DateTimeField()
    created_label = serializers.CharField(
        help_text="`created_at` as the site shows it, in its time zone (“Dec 6, 2026, 3:07 p.m.”)."
    )
    by_staff = serializers.BooleanField()
    photo = serializers.CharField(allow_null=True, help_text="A photo given when contesting.")


class CasePhotoSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    url = serializers.CharField()
    width = serializers.IntegerField(help_text="0 when given by address.")
    height = serializers.IntegerField()


class AnswerLabelSerializer(serializers.Serializer):
    question = serializers.CharField()
    answer = serializers.CharField(help_text="As shown: choices by their names.")


class CaseViewerSerializer(serializers.Serializer):
    role = serializers.ChoiceField(
        choices=ROLES, help_text="`staff` is any city staff; only `can_work` sees private data."
    )
    supported = serializers.BooleanField(help_text="The caller said “me too” (or reported it).")
    can_work = serializers.BooleanField(help_text="Staff of the department, or a supervisor.")
    can_reopen = serializers.BooleanField(
        help_text="The reporter or a supporter, within the window after closing."
    )
    can_survey = serializers.BooleanField()
    survey_answered = serializers.BooleanField()


class CaseDetailSerializer(CaseSerializer):
    timeline = CaseNoteSerializer(
        many=True, help_text="Oldest first; internal notes only for those who work the case."
    )
    photos = CasePhotoSerializer(many=True)
    answer_labels = AnswerLabelSerializer(many=True)
    viewer = CaseViewerSerializer()


class NearbyViewerSerializer(serializers.Serializer):
    reported = serializers.BooleanField(help_text="the signed-in person reported this case")
    supported = serializers.BooleanField(help_text="they said “me too” to it already")


class NearbyCaseSerializer(serializers.Serializer):
    case = CaseSerializer()
    distance_m = serializers.IntegerField()
    you = NearbyViewerSerializer()


class SupportResultSerializer(serializers.Serializer):
    supporter_count = serializers.IntegerField()
    verified_supporter_count = serializers.IntegerField()
    supported = serializers.BooleanField()


class SurveyResultSerializer(serializers.Serializer):
    fixed = serializers.BooleanField()
    satisfaction = serializers.IntegerField()
    comment = serializers.CharField()
    created_at = serializers.DateTimeField()


# Requests -----------------------------------------------------------------------------------


class CaseCreateSerializer(serializers.Serializer):
    service_type = serializers.CharField(help_text="A code from `GET /api/v1/service-types/`.")
    description = serializers.CharField(
        required=False, allow_blank=True, default="", help_text="Up to 4,000 characters."
    )
    lat = serializers.FloatField(required=False, allow_null=True, help_text="The map pin.")
    lon = serializers.FloatField(required=False, allow_null=True)
    address = serializers.CharField(
        required=False, allow_blank=True, default="", help_text="Instead of, or with, the pin."
    )
    answers = AnswersField(required=False, help_text="Answers to the type's questions.")
    photos = serializers.ListField(
        child=serializers.FileField(allow_empty_file=True),
        required=False,
        help_text="multipart only: JPEG, PNG or WebP files (repeat the field).",
    )


class EscalateSerializer(serializers.Serializer):
    service_type = serializers.CharField(
        required=False,
        allow_blank=True,
        help_text="Default: the type suggested by the thread's tags, category and title.",
    )
    description = serializers.CharField(
        required=False, allow_blank=True, default="", help_text="Default: drawn from the thread."
    )
    lat = serializers.FloatField(
        required=False, allow_null=True, help_text="Default: the thread's pin."
    )
    lon = serializers.FloatField(required=False, allow_null=True)
    address = serializers.CharField(required=False, allow_blank=True, default="")
    answers = AnswersField(required=False)


def _optional_boolean(help_text: str):
    # allow_null: a form that leaves the field out means "the default", not False.
    return serializers.BooleanField(
        required=False, allow_null=True, default=None, help_text=help_text
    )


class StatusRequestSerializer(serializers.Serializer):
    status = serializers.CharField(
        help_text="`open`, `acknowledged`, `in_progress`, `scheduled` or `closed`."
    )
    note = serializers.CharField(
        required=False, allow_blank=True, default="", help_text="Shown on the timeline."
    )
    resolution = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        help_text="Closing: `fixed`, `not_fixed`, `duplicate`, `not_city` or `unable_to_locate`.",
    )
    duplicate_of = serializers.CharField(
        required=False, allow_blank=True, default="", help_text="Duplicate: the original."
    )
    responsible_party = serializers.CharField(
        required=False, allow_blank=True, default="", help_text="Not the city's: whose."
    )
    scheduled_for = serializers.DateField(
        required=False, allow_null=True, help_text="Scheduling: the date of the work."
    )
    public = _optional_boolean("Default true; false keeps the note (and the change) internal.")


class NoteRequestSerializer(serializers.Serializer):
    text = serializers.CharField(allow_blank=True, help_text="Up to 4,000 characters.")
    public = _optional_boolean("Default true; false: an internal note, seen by staff only.")


class AssignRequestSerializer(serializers.Serializer):
    assignee = serializers.IntegerField(
        allow_null=True, help_text="A user id of the case's department; null unassigns."
    )


class SurveyRequestSerializer(serializers.Serializer):
    fixed = serializers.BooleanField(allow_null=True, help_text="Was it fixed?")
    satisfaction = serializers.IntegerField(help_text="1 (very unhappy) to 5 (very happy).")
    comment = serializers.CharField(required=False, allow_blank=True, default="")

    def validate_fixed(self, value: bool | None) -> bool:
        if value is None:
            raise serializers.ValidationError("Say whether it was fixed.")
        return value


class ReopenRequestSerializer(serializers.Serializer):
    comment = serializers.CharField(allow_blank=True, help_text="What is still wrong.")
    photo = serializers.FileField(
        required=False, allow_empty_file=True, help_text="multipart only: a JPEG, PNG or WebP."
    )


# Helpers ------------------------------------------------------------------------------------


def _service_type(code: str, field: str = "service_type") -> ServiceType:
    found = ServiceType.objects.select_related("department").filter(code=code).first()
    if found is None:
        raise _invalid({field: [f"No service type has the code {code!r}."]}, "Unknown type.")
    return found


def _case(tracking_number: str) -> Case:
    case = services.find_case(tracking_number)
    if case is None:
        raise Http404("No such case.")
    return case


def _ensure_can_work(user, case: Case) -> None:
    """Refuse before looking at the request's fields, so a 403 is never hidden by a 400."""
    if not services.can_work(user, case):
        raise PermissionDenied(
            f"Only staff of {case.department.name} (or a supervisor) can work this case."
        )


def _idempotency_key(request) -> str:
    """The client's ``Idempotency-Key``, kept apart from every other caller's keys."""
    key = request.headers.get(IDEMPOTENCY_HEADER, "").strip()
    if not key:
        return ""
    if len(key) > IDEMPOTENCY_KEY_MAX:
        raise _invalid({IDEMPOTENCY_HEADER: [f"Keep the key to {IDEMPOTENCY_KEY_MAX} characters."]})
    return f"api:{request.user.pk}:{key}"


def _question_payload(question: ServiceQuestion, order: int) -> dict:
    return {
        "code": question.code,
        "prompt": question.prompt,
        "datatype": question.datatype,
        "datatype_description": question.datatype_description,
        "required": question.required,
        "variable": question.variable,
        "order": order,
        "values": [{"key": key, "name": name} for key, name in question.value_list()],
    }


def _service_type_payload(service_type: ServiceType) -> dict:
    return {
        "code": service_type.code,
        "name": service_type.name,
        "description": service_type.description,
        "group": service_type.group,
        "keywords": service_type.keyword_list,
        "department": service_type.department.name,
        "sla_working_days": service_type.sla_working_days,
        "questions": [
            _question_payload(question, order)
            for order, question in enumerate(service_type.questions.all(), start=1)
        ],
    }


def _catalogue():
    questions = ServiceQuestion.objects.order_by("sort_order", "id")
    return (
        ServiceType.objects.filter(is_active=True)
        .select_related("department")
        .prefetch_related(Prefetch("questions", queryset=questions))
    )


def _case_item(case: Case, user) -> dict:
    return services.case_payload(case, staff=services.can_work(user, case))


def _note_item(note: CaseNote) -> dict:
    return {**services.note_payload(note), "photo": note.photo.url if note.photo else None}


def _photo_item(photo: CasePhoto) -> dict:
    return {
        "id": photo.pk,
        "url": photo.image.url if photo.image else photo.url,
        "width": photo.width,
        "height": photo.height,
    }


def _viewer(case: Case, user, can_work: bool) -> dict:
    signed_in = is_authenticated(user)
    supported = signed_in and CaseSupport.objects.filter(case=case, user=user).exists()
    answered = signed_in and SurveyResponse.objects.filter(case=case, user=user).exists()
    return {
        "role": services.case_viewer_role(user, case),
        "supported": supported,
        "can_work": can_work,
        "can_reopen": services.can_reopen(user, case),
        "can_survey": not case.is_open and not answered and services.is_supporter(case, user),
        "survey_answered": answered,
    }


def _case_detail(case: Case, user) -> dict:
    can_work = services.can_work(user, case)
    data = services.case_payload(case, staff=can_work)
    data.update(
        timeline=[_note_item(note) for note in services.timeline(case, staff=can_work)],
        photos=[_photo_item(photo) for photo in case.photos.all()],
        answer_labels=[
            {"question": question, "answer": answer}
            for question, answer in services.answer_labels(case)
        ],
        viewer=_viewer(case, user, can_work),
    )
    return data


def _detail_response(case: Case, request, http_status: int = status.HTTP_200_OK) -> Response:
    case = Case.objects.select_related(*CASE_RELATIONS).get(pk=case.pk)
    return Response(_case_detail(case, request.user), status=http_status)


def _filed_response(filed: services.Filed, request) -> Response:
    """``201`` with a new case, ``200`` with the case a retry or a second escalation found."""
    response = _detail_response(
        filed.case, request, status.HTTP_201_CREATED if filed.created else status.HTTP_200_OK
    )
    response["Location"] = reverse("api-case", args=[filed.case.tracking_number])
    return response


def _near(value: str) -> tuple[float, float, float]:
    """``lat,lon`` or ``lat,lon,radius_m``."""
    parts = [part.strip() for part in value.split(",")]
    if len(parts) not in (2, 3):
        raise ValidationError("Give lat,lon or lat,lon,radius_m.")
    try:
        lat, lon = validate_point(parts[0], parts[1])
    except GeometryError as exc:
        raise ValidationError(str(exc)) from exc
    radius = float(NEAR_DEFAULT_M)
    if len(parts) == 3:
        try:
            radius = float(parts[2])
        except ValueError:
            radius = 0.0
        if not 0 < radius <= NEAR_MAX_M:
            raise ValidationError(f"Give a radius in metres, at most {NEAR_MAX_M}.")
    return lat, lon, radius


IDEMPOTENCY_PARAMETER = OpenApiParameter(
    IDEMPOTENCY_HEADER,
    str,
    location=OpenApiParameter.HEADER,
    description="Any string up to 80 characters: a retry with the same key answers `200` with "
    "the case the first request filed, instead of filing another.",
)
FILED_RESPONSES = {
    201: CaseDetailSerializer,
    200: OpenApiResponse(
        CaseDetailSerializer, description="The case filed before (same key, or already open)."
    ),
}


# The service catalogue ----------------------------------------------------------------------


class ServiceTypeListView(ApiView):
    @extend_schema(
        summary="What can be reported: active service types with their questions",
        responses=ServiceTypeSerializer(many=True),
    )
    def get(self, request):
        return Response([_service_type_payload(t) for t in _catalogue()])


class ServiceTypeDetailView(ApiView):
    @extend_schema(
        summary="One active service type with its questions",
        responses={200: ServiceTypeSerializer, 404: None},
    )
    def get(self, request, code: str):
        service_type = get_object_or_404(_catalogue(), code=code)
        return Response(_service_type_payload(service_type))


# Cases --------------------------------------------------------------------------------------


class CaseListView(ApiView):
    permission_classes = [IsAuthenticatedOrReadOnly]
    pagination_class = ApiPagination

    @extend_schema(
        summary="Cases, newest first, with filters",
        parameters=[
            OpenApiParameter(
                "status",
                str,
                description="`open` (every state but closed), or one of `open`, `acknowledged`, "
                "`in_progress`, `scheduled`, `closed`",
            ),
            OpenApiParameter("type", str, description="service codes, comma-separated"),
            OpenApiParameter("neighborhood", str, description="a neighborhood's slug"),
            OpenApiParameter(
                "near",
                str,
                description=f"`lat,lon` or `lat,lon,radius_m` (default {NEAR_DEFAULT_M}, at most "
                f"{NEAR_MAX_M} metres)",
            ),
            OpenApiParameter("overdue", bool, description="only open cases past their date"),
            OpenApiParameter(
                "mine", bool, description="cases the caller reported or supports (needs sign-in)"
            ),
        ],
        responses={200: CaseSerializer(many=True), 400: None, 401: None},
    )
    def get(self, request):
        params = request.query_params
        errors: dict[str, list[str]] = {}
        if params.get("mine", "").lower() in TRUE_VALUES:
            if not is_authenticated(request.user):
                raise NotAuthenticated("Sign in to see your requests.")
            cases = services.my_cases(request.user)
        else:
            cases = services.public_cases()
        codes = _codes(request, "type")
        if codes:
            known = set(ServiceType.objects.filter(code__in=codes).values_list("code", flat=True))
            unknown = [code for code in codes if code not in known]
            if unknown:
                errors["type"] = [f"No service type has the code {code!r}." for code in unknown]
        slug = params.get("neighborhood", "").strip()
        if slug and not Neighborhood.objects.filter(slug=slug).exists():
            errors["neighborhood"] = [f"No neighborhood has the slug {slug!r}."]
        near = None
        if params.get("near", "").strip():
            try:
                near = _near(params["near"])
            except ValidationError as exc:
                errors["near"] = exc.messages
        try:
            cases = services.filter_cases(
                cases,
                status=params.get("status", "").strip(),
                service_code=",".join(codes),
                neighborhood=slug,
                near=near,
                overdue=params.get("overdue", "").lower() in TRUE_VALUES,
            )
        except ValidationError as exc:
            for field, messages in exc.message_dict.items():
                errors.setdefault(field, []).extend(messages)
        if errors:
            raise _invalid(errors, "Some filters are invalid.")
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(
            cases.select_related(*CASE_RELATIONS), request, view=self
        )
        return paginator.get_paginated_response([_case_item(c, request.user) for c in page])

    @extend_schema(
        summary="Report a problem (residents with a verified e-mail address)",
        description="JSON, or multipart/form-data to attach photos (`answers` as JSON text).",
        parameters=[IDEMPOTENCY_PARAMETER],
        request={
            "application/json": CaseCreateSerializer,
            "multipart/form-data": CaseCreateSerializer,
        },
        responses={**FILED_RESPONSES, **LIMITED},
    )
    def post(self, request):
        key = _idempotency_key(request)
        data = _validated(CaseCreateSerializer, request)
        filed = services.file_case(
            service_type=_service_type(data["service_type"]),
            description=data["description"],
            lat=data.get("lat"),
            lon=data.get("lon"),
            address=data["address"],
            answers=data.get("answers"),
            photos=data.get("photos", ()),
            reporter=request.user,
            channel=Case.Channel.API,
            idempotency_key=key,
            ip=client_ip(request),
        )
        return _filed_response(filed, request)


class NearbyCasesView(ApiView):
    @extend_schema(
        summary="Open cases of a type near a point, nearest first: “me too” candidates",
        parameters=[
            OpenApiParameter("type", str, required=True, description="a service code"),
            OpenApiParameter("lat", float, required=True),
            OpenApiParameter("lon", float, required=True),
        ],
        responses={200: NearbyCaseSerializer(many=True), 400: None},
    )
    def get(self, request):
        missing = {
            name: ["This parameter is required."]
            for name in ("type", "lat", "lon")
            if not request.query_params.get(name, "").strip()
        }
        if missing:
            raise ApiError(
                f"Missing: {', '.join(missing)}.", code="missing_parameter", fields=missing
            )
        service_type = _service_type(request.query_params["type"].strip(), field="type")
        try:
            lat, lon = validate_point(request.query_params["lat"], request.query_params["lon"])
        except GeometryError as exc:
            raise ApiError(
                str(exc), code="invalid_point", fields={"lat": [str(exc)], "lon": [str(exc)]}
            ) from exc
        found = services.nearby_open_cases(service_type, lat, lon)
        user = request.user
        mine: set[int] = set()
        if is_authenticated(user) and found:
            mine = set(
                CaseSupport.objects.filter(
                    user=user, case__in=[case for case, _ in found]
                ).values_list("case_id", flat=True)
            )
        return Response(
            [
                {
                    "case": _case_item(case, user),
                    "distance_m": round(distance),
                    "you": {
                        "reported": is_authenticated(user) and case.reporter_id == user.pk,
                        "supported": case.pk in mine,
                    },
                }
                for case, distance in found
            ]
        )


class CaseDetailView(ApiView):
    @extend_schema(
        summary="One case with its timeline, photos, answers and what the caller may do",
        responses={200: CaseDetailSerializer, 404: None},
    )
    def get(self, request, tracking_number: str):
        return _detail_response(_case(tracking_number), request)


class EscalateView(AuthenticatedApiView):
    @extend_schema(
        summary="Turn a thread into a case (its author, an organizer, city staff); once",
        description="One open case per thread: a second escalation answers `200` with it.",
        parameters=[IDEMPOTENCY_PARAMETER],
        request=EscalateSerializer,
        responses={**FILED_RESPONSES, **LIMITED},
    )
    def post(self, request, pk: int):
        thread = get_object_or_404(Thread.objects.select_related("neighborhood"), pk=pk)
        if not can_read_thread(request.user, thread):
            raise Http404("No such thread.")
        if not services.can_escalate(request.user, thread):
            raise PermissionDenied(
                "The thread's author, an organizer of the neighborhood or city staff can "
                "escalate it."
            )
        key = _idempotency_key(request)
        data = _validated(EscalateSerializer, request)
        code = (data.get("service_type") or "").strip()
        service_type = _service_type(code) if code else services.suggested_service_type(thread)
        if service_type is None:
            existing = services.open_case_for_thread(thread)
            if existing is not None:
                return _filed_response(services.Filed(existing, False), request)
            raise _invalid({"service_type": ["Choose a service type: none matches this thread."]})
        filed = services.escalate_thread(
            thread,
            user=request.user,
            service_type=service_type,
            description=data["description"],
            answers=data.get("answers"),
            lat=data.get("lat"),
            lon=data.get("lon"),
            address=data["address"],
            idempotency_key=key,
            channel=Case.Channel.API,
        )
        return _filed_response(filed, request)


# What residents do with a case --------------------------------------------------------------


def _support_response(case: Case, supported: bool) -> Response:
    return Response(
        {
            "supporter_count": case.supporter_count,
            "verified_supporter_count": case.verified_supporter_count,
            "supported": supported,
        }
    )


class SupportView(AuthenticatedApiView):
    @extend_schema(
        summary="“Me too”: support an open case and follow it (idempotent)",
        request=None,
        responses={200: SupportResultSerializer, **LIMITED},
    )
    def post(self, request, tracking_number: str):
        case = services.support(_case(tracking_number), user=request.user, ip=client_ip(request))
        return _support_response(case, True)

    @extend_schema(
        summary="Withdraw one's support (idempotent; the reporter's stays)",
        request=None,
        responses={200: SupportResultSerializer, **ERRORS},
    )
    def delete(self, request, tracking_number: str):
        case = services.withdraw_support(_case(tracking_number), user=request.user)
        return _support_response(case, False)


class SurveyView(AuthenticatedApiView):
    @extend_schema(
        summary="Answer the survey of a closed case (the reporter and supporters; once)",
        request=SurveyRequestSerializer,
        responses={201: SurveyResultSerializer, **ERRORS},
    )
    def post(self, request, tracking_number: str):
        case = _case(tracking_number)
        data = _validated(SurveyRequestSerializer, request)
        answer = services.answer_survey(
            case,
            user=request.user,
            fixed=data["fixed"],
            satisfaction=data["satisfaction"],
            comment=data["comment"],
        )
        return Response(
            {
                "fixed": answer.fixed,
                "satisfaction": answer.satisfaction,
                "comment": answer.comment,
                "created_at": answer.created_at.isoformat(),
            },
            status=status.HTTP_201_CREATED,
        )


class ReopenView(AuthenticatedApiView):
    @extend_schema(
        summary="Contest a closure (the reporter or a supporter, within the window)",
        description="JSON, or multipart/form-data with a `photo`.",
        request={
            "application/json": ReopenRequestSerializer,
            "multipart/form-data": ReopenRequestSerializer,
        },
        responses={200: CaseDetailSerializer, **ERRORS},
    )
    def post(self, request, tracking_number: str):
        case = _case(tracking_number)
        data = _validated(ReopenRequestSerializer, request)
        case = services.reopen(
            case, user=request.user, comment=data["comment"], photo=data.get("photo")
        )
        return _detail_response(case, request)


# Working a case (staff of its department, supervisors) --------------------------------------


class StatusView(AuthenticatedApiView):
    @extend_schema(
        summary="Move a case along; closing needs a resolution (staff of its department)",
        request=StatusRequestSerializer,
        responses={200: CaseDetailSerializer, **ERRORS},
    )
    def post(self, request, tracking_number: str):
        case = _case(tracking_number)
        _ensure_can_work(request.user, case)
        data = _validated(StatusRequestSerializer, request)
        case = services.change_status(
            case,
            user=request.user,
            status=data["status"],
            note=data["note"],
            resolution=data["resolution"],
            duplicate_of=data["duplicate_of"] or None,
            responsible_party=data["responsible_party"],
            scheduled_for=data.get("scheduled_for"),
            public=data["public"] is not False,
        )
        return _detail_response(case, request)


class NoteView(AuthenticatedApiView):
    @extend_schema(
        summary="Add a public or internal note (staff of the case's department)",
        request=NoteRequestSerializer,
        responses={201: CaseNoteSerializer, **ERRORS},
    )
    def post(self, request, tracking_number: str):
        case = _case(tracking_number)
        _ensure_can_work(request.user, case)
        data = _validated(NoteRequestSerializer, request)
        note = services.add_note(
            case, user=request.user, text=data["text"], public=data["public"] is not False
        )
        return Response(_note_item(note), status=status.HTTP_201_CREATED)


class AssignView(AuthenticatedApiView):
    @extend_schema(
        summary="Give the case to someone of its department, or to nobody (staff)",
        request=AssignRequestSerializer,
        responses={200: CaseDetailSerializer, **ERRORS},
    )
    def post(self, request, tracking_number: str):
        case = _case(tracking_number)
        _ensure_can_work(request.user, case)
        data = _validated(AssignRequestSerializer, request)
        assignee = None
        if data["assignee"] is not None:
            assignee = (
                get_user_model()
                .objects.select_related("city_staff")
                .filter(pk=data["assignee"], is_active=True)
                .first()
            )
            if assignee is None:
                raise _invalid({"assignee": [f"Choose someone in {case.department.name}."]})
        case = services.assign(case, user=request.user, assignee=assignee)
        return _detail_response(case, request)
