"""JSON API for alerts (official notices and resident reports) and personal notifications.

The views check who is asking, turn the request into arguments for :mod:`alerts.services` and
return :func:`alerts.services.alert_payload`; the rules themselves live in the services.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import NotAuthenticated
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import IsAuthenticatedOrReadOnly
from rest_framework.response import Response

from neighborhoods.apibase import ApiError, ApiView, AuthenticatedApiView
from neighborhoods.conf import app_settings as neighborhood_settings
from neighborhoods.models import Neighborhood
from neighborhoods.permissions import is_authenticated, is_city_staff

from . import notify, services
from .conf import app_settings
from .models import Alert, AlertCategory, AlertConfirmation, AlertRevision, Notification, Severity

SEVERITIES = [severity.slug for severity in Severity]
KINDS = [kind.value for kind in Alert.Kind]
TRUE_VALUES = {"1", "true", "yes", "on"}
# Request fields that place an official notice; a resident report is placed by lat/lon alone.
PLACEMENT_FIELDS = ("neighborhoods", "area", "lat")
NOT_FOR_REPORTS = {
    "neighborhoods": "Resident reports are placed with lat and lon, not by neighborhood.",
    "area": "Resident reports are placed with lat and lon; only the city draws areas.",
    "radius_m": "The radius of a resident report comes from its category.",
    "starts_at": "A resident report starts when it is posted.",
    "expires_at": "A resident report lives for its category's lifetime after each confirmation.",
}


# Pagination ---------------------------------------------------------------------------------


class ApiPagination(PageNumberPagination):
    """``?page=`` (and ``?page_size=`` up to 100); ``PAGE_SIZE`` rows a page by default."""

    page_size_query_param = "page_size"
    max_page_size = 100

    def get_page_size(self, request) -> int:
        self.page_size = neighborhood_settings.PAGE_SIZE
        return super().get_page_size(request)


class NotificationPagination(ApiPagination):
    """A page of the inbox, with the number of unread notifications."""

    def get_paginated_response_schema(self, schema: dict) -> dict:
        paginated = super().get_paginated_response_schema(schema)
        paginated["required"] = [*paginated.get("required", []), "unread_count"]
        paginated["properties"]["unread_count"] = {"type": "integer", "example": 3}
        return paginated


# Response shapes (for the schema; the data itself is built by the services) -----------------


class CategoryRefSerializer(serializers.Serializer):
    slug = serializers.SlugField()
    name = serializers.CharField()


class PointSerializer(serializers.Serializer):
    lat = serializers.FloatField()
    lon = serializers.FloatField()
    radius_m = serializers.IntegerField(allow_null=True)


class AlertSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=KINDS)
    category = CategoryRefSerializer()
    severity = serializers.ChoiceField(choices=SEVERITIES)
    title = serializers.CharField()
    body = serializers.CharField(help_text="Markdown.")
    body_html = serializers.CharField(help_text="The body rendered and sanitised.")
    provenance = serializers.CharField(help_text="Who says so, e.g. “Official · Water Department”.")
    department = serializers.CharField(allow_null=True)
    source = serializers.ChoiceField(choices=[s.value for s in Alert.Source])
    source_name = serializers.CharField()
    status = serializers.ChoiceField(choices=[s.value for s in Alert.Status])
    is_active = serializers.BooleanField()
    corroborated = serializers.BooleanField()
    confirmations = serializers.IntegerField(help_text="Verified members who confirmed it.")
    gone_reports = serializers.IntegerField()
    verified = serializers.BooleanField(help_text="A resident report confirmed by the city.")
    neighborhoods = serializers.ListField(child=serializers.SlugField())
    area = serializers.JSONField(help_text="GeoJSON (Multi)Polygon, longitude/latitude.")
    point = PointSerializer(allow_null=True)
    starts_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField(allow_null=True)
    status_note = serializers.CharField()
    version = serializers.IntegerField()
    photo = serializers.CharField(allow_null=True)
    url = serializers.CharField(help_text="The alert's page.")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class RevisionSerializer(serializers.Serializer):
    version = serializers.IntegerField()
    title = serializers.CharField()
    body = serializers.CharField()
    severity = serializers.ChoiceField(choices=SEVERITIES)
    expires_at = serializers.DateTimeField(allow_null=True)
    note = serializers.CharField()
    created_at = serializers.DateTimeField(help_text="When this version was replaced.")


class ViewerSerializer(serializers.Serializer):
    can_manage = serializers.BooleanField()
    confirmation = serializers.ChoiceField(
        choices=["there", "gone"], allow_null=True, help_text="The caller's own answer."
    )


class AlertDetailSerializer(AlertSerializer):
    revisions = RevisionSerializer(
        many=True,
        allow_null=True,
        help_text="Official notices: what the notice said before each correction, newest first. "
        "Null for resident reports.",
    )
    viewer = ViewerSerializer()


class CategorySerializer(serializers.Serializer):
    slug = serializers.SlugField()
    name = serializers.CharField()
    description = serializers.CharField()
    lifetime_hours = serializers.IntegerField(source="default_lifetime_hours")
    default_radius_m = serializers.IntegerField()
    residents_may_report = serializers.BooleanField()


class NotificationSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    severity = serializers.SerializerMethodField()
    title = serializers.CharField()
    body = serializers.CharField()
    url = serializers.CharField()
    alert = serializers.IntegerField(source="alert_id", allow_null=True)
    created_at = serializers.DateTimeField()
    read_at = serializers.DateTimeField(allow_null=True)

    def get_severity(self, obj: Notification) -> str:
        return Severity(obj.severity).slug


# Requests -----------------------------------------------------------------------------------


class AlertCreateSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(
        choices=KINDS,
        required=False,
        help_text="Staff post `official` notices (the default for staff); others `community`.",
    )
    title = serializers.CharField(max_length=140)
    body = serializers.CharField(required=False, allow_blank=True, max_length=10_000)
    category = serializers.SlugField(help_text="A slug from `GET /api/v1/alerts/categories/`.")
    severity = serializers.ChoiceField(
        choices=SEVERITIES,
        required=False,
        help_text="Required for official notices; resident reports default to `advisory`.",
    )
    neighborhoods = serializers.ListField(
        child=serializers.SlugField(),
        required=False,
        allow_empty=False,
        help_text="Official notices: the neighborhoods it is for.",
    )
    area = serializers.JSONField(
        required=False,
        allow_null=True,
        help_text="Official notices: a GeoJSON Polygon, MultiPolygon or a Feature holding one.",
    )
    lat = serializers.FloatField(required=False, allow_null=True)
    lon = serializers.FloatField(required=False, allow_null=True)
    radius_m = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, help_text="Official notices; default 500."
    )
    starts_at = serializers.DateTimeField(required=False, allow_null=True)
    expires_at = serializers.DateTimeField(required=False, allow_null=True)
    photo = serializers.ImageField(required=False, help_text="multipart/form-data only.")

    def validate_radius_m(self, value: int | None) -> int | None:
        if value is not None and value > app_settings.ALERT_MAX_RADIUS_M:
            raise serializers.ValidationError(
                f"The radius may be at most {app_settings.ALERT_MAX_RADIUS_M} metres."
            )
        return value


class AlertEditSerializer(serializers.Serializer):
    title = serializers.CharField(required=False, max_length=140)
    body = serializers.CharField(required=False, allow_blank=True, max_length=10_000)
    severity = serializers.ChoiceField(choices=SEVERITIES, required=False)
    expires_at = serializers.DateTimeField(required=False)
    note = serializers.CharField(
        required=False, allow_blank=True, max_length=500, help_text="What was corrected and why."
    )

    def validate(self, attrs: dict) -> dict:
        if not set(attrs) - {"note"}:
            raise serializers.ValidationError(
                "Give at least one of title, body, severity or expires_at."
            )
        return attrs


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(
        required=False, allow_blank=True, max_length=500, help_text="Required; shown with it."
    )


class NoteSerializer(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, max_length=500)


class MarkReadSerializer(serializers.Serializer):
    ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1), required=False, max_length=500
    )
    all = serializers.BooleanField(required=False, default=False)

    def validate(self, attrs: dict) -> dict:
        if attrs.get("all") == bool(attrs.get("ids")):
            raise serializers.ValidationError(
                {"ids": ["Give a list of notification ids, or all: true (not both)."]}
            )
        return attrs


# Helpers ------------------------------------------------------------------------------------


def _validated(serializer_class, request, **kwargs) -> dict:
    serializer = serializer_class(data=request.data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _severity(name: str) -> int:
    return int(Severity.from_name(name))


def _neighborhoods_from_slugs(slugs: list[str], field: str) -> list[Neighborhood]:
    wanted = list(dict.fromkeys(slugs))
    found = {n.slug: n for n in Neighborhood.objects.filter(slug__in=wanted)}
    unknown = [slug for slug in wanted if slug not in found]
    if unknown:
        raise ApiError(
            "Unknown neighborhood.",
            code="invalid",
            fields={field: [f"No neighborhood has the slug {slug!r}." for slug in unknown]},
        )
    return [found[slug] for slug in wanted]


def _visible_alert(request, pk: int) -> Alert:
    """The alert, unless it was dismissed and the caller is neither staff nor its author."""
    alert = get_object_or_404(Alert.objects.select_related("category", "department"), pk=pk)
    if not services.visible_to(request.user, alert):
        raise Http404("No such alert.")
    return alert


def _ensure_can_manage(user, alert: Alert) -> None:
    """Refuse before looking at the request's fields, so a 403 is never hidden by a 400."""
    if not services.can_manage(user, alert):
        raise PermissionDenied("Only staff of the issuing department may change this alert.")


def _alert_response(alert: Alert, http_status: int = status.HTTP_200_OK) -> Response:
    return Response(services.alert_payload(alert), status=http_status)


def _revision_payload(revision: AlertRevision) -> dict:
    return {
        "version": revision.version,
        "title": revision.title,
        "body": revision.body,
        "severity": Severity(revision.severity).slug,
        "expires_at": revision.expires_at.isoformat() if revision.expires_at else None,
        "note": revision.note,
        "created_at": revision.created_at.isoformat(),
    }


ALERT_ERRORS = {400: None, 401: None, 403: None, 404: None}


# Alerts -------------------------------------------------------------------------------------


class AlertListView(ApiView):
    permission_classes = [IsAuthenticatedOrReadOnly]
    pagination_class = ApiPagination

    @extend_schema(
        summary="Active alerts, most severe first, then newest",
        parameters=[
            OpenApiParameter(
                "neighborhood", str, description="a neighborhood's slug (several: comma-separated)"
            ),
            OpenApiParameter("kind", str, enum=KINDS),
            OpenApiParameter("category", str, description="a category's slug"),
            OpenApiParameter(
                "mine", bool, description="only the caller's neighborhoods (needs sign-in)"
            ),
        ],
        responses={200: AlertSerializer(many=True), 400: None, 401: None},
    )
    def get(self, request):
        params = request.query_params
        errors: dict[str, list[str]] = {}
        neighborhoods: list[Neighborhood] | None = None
        slugs = [s for s in params.get("neighborhood", "").split(",") if s.strip()]
        if slugs:
            neighborhoods = _neighborhoods_from_slugs([s.strip() for s in slugs], "neighborhood")
        if params.get("mine", "").lower() in TRUE_VALUES:
            if not is_authenticated(request.user):
                raise NotAuthenticated("Sign in to see the alerts of your neighborhoods.")
            mine = services.my_neighborhoods(request.user)
            if neighborhoods is not None:
                chosen = {n.pk for n in neighborhoods}
                mine = [n for n in mine if n.pk in chosen]
            neighborhoods = mine
        kind = params.get("kind") or None
        if kind is not None and kind not in KINDS:
            errors["kind"] = [f"Use one of {', '.join(KINDS)}."]
        category = params.get("category") or None
        if category is not None and not AlertCategory.objects.filter(slug=category).exists():
            errors["category"] = [f"No category has the slug {category!r}."]
        if errors:
            raise ApiError("Some filters are invalid.", code="invalid", fields=errors)
        queryset = services.feed(neighborhoods=neighborhoods, kind=kind, category=category)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(queryset, request, view=self)
        alerts = services.with_neighborhood_slugs(list(page))
        return paginator.get_paginated_response([services.alert_payload(a) for a in alerts])

    @extend_schema(
        summary="Post an official notice (staff) or report something (members)",
        request={
            "application/json": AlertCreateSerializer,
            "multipart/form-data": AlertCreateSerializer,
        },
        responses={201: AlertSerializer, **ALERT_ERRORS, 429: None},
    )
    def post(self, request):
        staff = is_city_staff(request.user)
        asked = request.data.get("kind") if isinstance(request.data, dict) else None
        if asked == Alert.Kind.OFFICIAL and not staff:
            raise ApiError(
                "Only city staff post official notices; report it as a resident instead.",
                code="staff_only",
                status_code=status.HTTP_403_FORBIDDEN,
                fields={"kind": ["Only city staff post official notices."]},
            )
        data = _validated(AlertCreateSerializer, request)
        kind = data.get("kind") or (Alert.Kind.OFFICIAL if staff else Alert.Kind.COMMUNITY)
        category = AlertCategory.objects.filter(slug=data["category"]).first()
        if category is None:
            raise ApiError(
                "Unknown category.",
                code="invalid",
                fields={"category": [f"No category has the slug {data['category']!r}."]},
            )
        if kind == Alert.Kind.OFFICIAL:
            alert = self._create_official(request, data, category)
        else:
            alert = self._create_report(request, data, category)
        response = _alert_response(alert, status.HTTP_201_CREATED)
        response["Location"] = reverse("api-alert", args=[alert.pk])
        return response

    def _create_official(self, request, data: dict, category: AlertCategory) -> Alert:
        given = [f for f in PLACEMENT_FIELDS if data.get(f) not in (None, "")]
        errors: dict[str, list[str]] = {}
        if "severity" not in data:
            errors["severity"] = ["An official notice needs a severity."]
        if not given:
            errors["neighborhoods"] = ["Give neighborhoods, an area, or lat and lon."]
        elif len(given) > 1:
            for field in given:
                errors[field] = ["Give only one of neighborhoods, area, or lat and lon."]
        if (data.get("lat") is None) != (data.get("lon") is None):
            missing = "lon" if data.get("lon") is None else "lat"
            errors[missing] = ["Give both lat and lon."]
        if data.get("radius_m") is not None and data.get("lat") is None:
            errors["radius_m"] = ["A radius goes with lat and lon."]
        if errors:
            raise ApiError("Some fields are invalid.", code="invalid", fields=errors)
        chosen = (
            _neighborhoods_from_slugs(data["neighborhoods"], "neighborhoods")
            if data.get("neighborhoods")
            else []
        )
        return services.create_official_notice(
            author=request.user,
            category=category,
            severity=_severity(data["severity"]),
            title=data["title"],
            body=data.get("body", ""),
            neighborhoods=chosen,
            area=data.get("area"),
            lat=data.get("lat"),
            lon=data.get("lon"),
            radius_m=data.get("radius_m"),
            starts_at=data.get("starts_at"),
            expires_at=data.get("expires_at"),
            photo=data.get("photo"),
            source=Alert.Source.API,
        )

    def _create_report(self, request, data: dict, category: AlertCategory) -> Alert:
        errors = {
            field: [message]
            for field, message in NOT_FOR_REPORTS.items()
            if data.get(field) not in (None, "", [])
        }
        for field in ("lat", "lon"):
            if data.get(field) is None:
                errors[field] = ["A resident report needs lat and lon."]
        if errors:
            raise ApiError("Some fields are invalid.", code="invalid", fields=errors)
        return services.create_resident_report(
            author=request.user,
            category=category,
            title=data["title"],
            body=data.get("body", ""),
            severity=_severity(data.get("severity", Severity.ADVISORY.slug)),
            lat=data["lat"],
            lon=data["lon"],
            photo=data.get("photo"),
            source=Alert.Source.API,
        )


class AlertDetailView(ApiView):
    permission_classes = [IsAuthenticatedOrReadOnly]

    @extend_schema(
        summary="One alert, whatever its status, with the history of an official notice",
        responses={200: AlertDetailSerializer, 404: None},
    )
    def get(self, request, pk: int):
        alert = _visible_alert(request, pk)
        data = services.alert_payload(alert)
        data["revisions"] = (
            [_revision_payload(r) for r in alert.revisions.order_by("-version")]
            if alert.is_official
            else None
        )
        answer = None
        if is_authenticated(request.user) and not alert.is_official:
            still_there = (
                AlertConfirmation.objects.filter(alert=alert, user=request.user)
                .values_list("still_there", flat=True)
                .first()
            )
            answer = None if still_there is None else ("there" if still_there else "gone")
        data["viewer"] = {
            "can_manage": services.can_manage(request.user, alert),
            "confirmation": answer,
        }
        return Response(data)

    @extend_schema(
        summary="Correct an alert (staff who manage it); the previous version is kept",
        request=AlertEditSerializer,
        responses={200: AlertSerializer, **ALERT_ERRORS},
    )
    def patch(self, request, pk: int):
        alert = _visible_alert(request, pk)
        _ensure_can_manage(request.user, alert)
        data = _validated(AlertEditSerializer, request)
        alert = services.edit_alert(
            alert,
            user=request.user,
            note=data.get("note", ""),
            title=data.get("title"),
            body=data.get("body"),
            severity=_severity(data["severity"]) if "severity" in data else None,
            expires_at=data.get("expires_at"),
        )
        return _alert_response(alert)


class AlertActionView(AuthenticatedApiView):
    """Base of the ``POST /alerts/<id>/<action>/`` endpoints."""

    def act(self, request, alert: Alert) -> Alert:
        raise NotImplementedError

    def post(self, request, pk: int):
        alert = _visible_alert(request, pk)
        return _alert_response(self.act(request, alert))


def _action_schema(summary: str, request=None, extra: dict | None = None):
    return extend_schema(
        summary=summary,
        request=request,
        responses={200: AlertSerializer, **ALERT_ERRORS, **(extra or {})},
    )


class AlertConfirmView(AlertActionView):
    @_action_schema(
        "Say a resident report is still there (members; once per person)", None, {429: None}
    )
    def post(self, request, pk: int):
        return super().post(request, pk)

    def act(self, request, alert: Alert) -> Alert:
        return services.confirm_alert(alert, user=request.user, still_there=True)


class AlertGoneView(AlertActionView):
    @_action_schema("Say a resident report is gone (members; once per person)", None, {429: None})
    def post(self, request, pk: int):
        return super().post(request, pk)

    def act(self, request, alert: Alert) -> Alert:
        return services.confirm_alert(alert, user=request.user, still_there=False)


class AlertRetractView(AlertActionView):
    @_action_schema("Retract a notice (staff of the issuing department)", ReasonSerializer)
    def post(self, request, pk: int):
        return super().post(request, pk)

    def act(self, request, alert: Alert) -> Alert:
        _ensure_can_manage(request.user, alert)
        data = _validated(ReasonSerializer, request)
        return services.retract_alert(alert, user=request.user, reason=data.get("reason", ""))


class AlertVerifyView(AlertActionView):
    @_action_schema("Verify a resident report (staff)")
    def post(self, request, pk: int):
        return super().post(request, pk)

    def act(self, request, alert: Alert) -> Alert:
        return services.verify_alert(alert, user=request.user)


class AlertResolveView(AlertActionView):
    @_action_schema("Mark an alert as over (staff, or the report's author)", NoteSerializer)
    def post(self, request, pk: int):
        return super().post(request, pk)

    def act(self, request, alert: Alert) -> Alert:
        data = _validated(NoteSerializer, request)
        return services.resolve_alert(alert, user=request.user, note=data.get("note", ""))


class AlertDismissView(AlertActionView):
    @_action_schema("Take down a wrong or abusive resident report (staff)", NoteSerializer)
    def post(self, request, pk: int):
        return super().post(request, pk)

    def act(self, request, alert: Alert) -> Alert:
        data = _validated(NoteSerializer, request)
        return services.dismiss_alert(alert, user=request.user, note=data.get("note", ""))


class CategoryListView(ApiView):
    @extend_schema(summary="Alert categories", responses=CategorySerializer(many=True))
    def get(self, request):
        return Response(CategorySerializer(AlertCategory.objects.all(), many=True).data)


# Notifications ------------------------------------------------------------------------------


class NotificationListView(AuthenticatedApiView):
    pagination_class = NotificationPagination

    @extend_schema(
        summary="The caller's notifications, newest first",
        parameters=[OpenApiParameter("unread", bool, description="only unread ones")],
        responses={200: NotificationSerializer(many=True), 401: None},
    )
    def get(self, request):
        queryset = notify.inbox(request.user)
        if request.query_params.get("unread", "").lower() in TRUE_VALUES:
            queryset = queryset.filter(read_at__isnull=True)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(queryset, request, view=self)
        response = paginator.get_paginated_response(NotificationSerializer(page, many=True).data)
        response.data["unread_count"] = notify.unread_count(request.user)
        return response


class NotificationReadView(AuthenticatedApiView):
    @extend_schema(
        summary="Mark some (or all) of the caller's notifications read",
        request=MarkReadSerializer,
        responses={
            200: inline_serializer(
                "NotificationsMarkedRead",
                {"marked": serializers.IntegerField(), "unread_count": serializers.IntegerField()},
            ),
            400: None,
            401: None,
        },
    )
    def post(self, request):
        data = _validated(MarkReadSerializer, request)
        marked = notify.mark_read(request.user, None if data["all"] else data["ids"])
        return Response({"marked": marked, "unread_count": notify.unread_count(request.user)})
