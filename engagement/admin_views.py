"""The case desk in the Wagtail admin: the list of cases with filters and a map, bulk status
changes, one case's page with every detail and action, the field and call-taker forms, the
history of a location, the metrics and the audit log.

Who sees what: city staff see their department's cases; supervisors (and superusers) see every
department's (:func:`engagement.services.desk_cases`). The admin itself lets in only people with
Wagtail's ``wagtailadmin.access_admin`` permission (a city grants it through a group); these
screens then refuse anyone who is not city staff. Every change goes through
:mod:`engagement.services`, which checks permission again and writes the audit log.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

import django_filters
from django import forms
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import cached_property
from django.views import View
from django.views.generic import TemplateView
from wagtail.admin import messages
from wagtail.admin.filters import DateRangePickerWidget, WagtailFilterSet
from wagtail.admin.paginator import WagtailPaginator
from wagtail.admin.ui.components import Component
from wagtail.admin.utils import get_valid_next_url_from_request
from wagtail.admin.views.generic.base import WagtailAdminTemplateMixin
from wagtail.admin.views.reports.base import ReportView
from wagtail.admin.widgets import BooleanRadioSelect

from forums.admin_views import HEAVY_NEIGHBORHOOD_FIELDS
from forums.models import Thread
from neighborhoods import uploads
from neighborhoods.admin_actions import ActionFormsMixin
from neighborhoods.models import Department, Neighborhood
from neighborhoods.permissions import is_city_staff, is_supervisor, staff_record

from . import metrics, services
from .admin_forms import (
    AUDIT_NAMESPACE,
    CALL_NAMESPACE,
    DESK_NAMESPACE,
    FIELD_NAMESPACE,
    HISTORY_NAMESPACE,
    METRICS_NAMESPACE,
    AssignForm,
    BulkStatusForm,
    CallForm,
    FilingForm,
    LocationForm,
    MergeForm,
    MetricsForm,
    NoteForm,
    StatusForm,
    add_service_errors,
    staff_label,
)
from .exports import COLUMNS as EXPORT_COLUMNS
from .forwarding import backend as forwarding_backend
from .models import Case, CaseAudit, CaseNote, ServiceType

Status = Case.Status
MAP_LIMIT = 2000
TRACKING = re.compile(r"^\d{2}-\d+$")
SORTS = {
    "created_at": "Filed",
    "expected_at": "Expected",
    "supporter_count": "Supporters",
}
AUDIT_LABELS = {
    "filed": "Filed",
    "escalated": "Escalated from a thread",
    "status": "Status changed",
    "note": "Note added",
    "assigned": "Assigned",
    "merged": "Merged a duplicate",
    "contested": "Closure contested",
    "reopened": "Reopened",
    "forwarded": "Forwarded to the city's system",
    "forward_failed": "Forwarding failed",
    "city_update": "Updated by the city's system",
}


# Who may use these screens --------------------------------------------------------------------


def can_use_desk(request: HttpRequest) -> bool:
    """City staff (and superusers); remembered for the request, as the menu asks often."""
    if not hasattr(request, "_case_desk"):
        request._case_desk = is_city_staff(request.user)
    return request._case_desk


class DeskAccessMixin:
    """Refuse (Wagtail shows "permission denied") anyone who is not city staff."""

    def dispatch(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not can_use_desk(request):
            raise PermissionDenied
        return super().dispatch(request, *args, **kwargs)


class DeskPageMixin(DeskAccessMixin, WagtailAdminTemplateMixin):
    """A page of the desk that is not a listing: its title ends the breadcrumbs."""

    def get_breadcrumbs_items(self) -> list[dict]:
        return [*self.breadcrumbs_items, {"url": "", "label": self.get_page_title()}]


def desk_scope(user) -> QuerySet[Case]:
    """The cases ``user`` works, with what the lists show, without heavy neighborhood fields."""
    return (
        services.desk_cases(user)
        .select_related("assigned_to")
        .defer(*(f"neighborhood__{name}" for name in HEAVY_NEIGHBORHOOD_FIELDS))
    )


def light_neighborhoods() -> QuerySet[Neighborhood]:
    return Neighborhood.objects.defer(*HEAVY_NEIGHBORHOOD_FIELDS).order_by("name")


def desk_url(case: Case) -> str:
    return reverse(f"{DESK_NAMESPACE}:case", args=[case.tracking_number])


def person_label(user) -> str:
    """A person on a staff-only page: their name and account e-mail."""
    if user is None:
        return "—"
    name = staff_label(user)
    return f"{name} <{user.email}>" if user.email and user.email != name else name


# The list -------------------------------------------------------------------------------------


def _departments(request: HttpRequest) -> QuerySet[Department]:
    return Department.objects.filter(pk__in=[d.pk for d in services.departments_of(request.user)])


class DeskFilterSet(WagtailFilterSet):
    status = django_filters.ChoiceFilter(
        label="Status",
        choices=[("open", "Open (any open status)"), *Status.choices],
        method="filter_status",
        empty_label="All",
    )
    service_type = django_filters.ModelChoiceFilter(
        label="Service type",
        queryset=lambda request: ServiceType.objects.filter(
            department__in=_departments(request)
        ).order_by("name"),
        empty_label="All",
    )
    neighborhood = django_filters.ModelChoiceFilter(
        label="Neighborhood", queryset=lambda request: light_neighborhoods(), empty_label="All"
    )
    department = django_filters.ModelChoiceFilter(
        label="Department", queryset=_departments, empty_label="All"
    )
    channel = django_filters.ChoiceFilter(
        label="Channel", choices=Case.Channel.choices, empty_label="All"
    )
    overdue = django_filters.BooleanFilter(
        label="Overdue", method="filter_overdue", widget=BooleanRadioSelect
    )
    contested = django_filters.BooleanFilter(
        label="Closure contested", method="filter_contested", widget=BooleanRadioSelect
    )
    assigned = django_filters.ChoiceFilter(
        label="Assigned to",
        choices=[("me", "Me"), ("nobody", "Nobody")],
        method="filter_assigned",
        empty_label="Anyone",
    )

    class Meta:
        model = Case
        fields: list[str] = []

    def filter_status(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return services.filter_cases(queryset, status=value)

    def filter_overdue(self, queryset: QuerySet, name: str, value: bool) -> QuerySet:
        overdue = services.filter_cases(queryset, overdue=True)
        return overdue if value else queryset.exclude(pk__in=overdue.values("pk"))

    def filter_contested(self, queryset: QuerySet, name: str, value: bool) -> QuerySet:
        contested = Q(contested_count__gt=0)
        return queryset.filter(contested if value else ~contested)

    def filter_assigned(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        if value == "me":
            return queryset.filter(assigned_to=self.request.user)
        return queryset.filter(assigned_to__isnull=True)


class CasePaginator(WagtailPaginator):
    verbose_name = "case"
    verbose_name_plural = "cases"


class DeskListMixin(DeskAccessMixin):
    """The filtered, searched and sorted cases of the desk (the list and its map)."""

    filterset_class = DeskFilterSet
    is_searchable = True
    default_ordering = "-created_at"

    def get_valid_orderings(self) -> list[str]:
        return [*SORTS, *(f"-{key}" for key in SORTS)]

    def get_base_queryset(self) -> QuerySet[Case]:
        return desk_scope(self.request.user)

    def order_queryset(self, queryset: QuerySet[Case]) -> QuerySet[Case]:
        tie = "-id" if self.ordering.startswith("-") else "id"
        return queryset.order_by(self.ordering, tie)

    def search_queryset(self, queryset: QuerySet[Case]) -> QuerySet[Case]:
        query = self.search_query.strip()
        if not query:
            return queryset
        if TRACKING.match(query):
            return queryset.filter(tracking_number=query)
        return queryset.filter(
            Q(tracking_number__icontains=query)
            | Q(address__icontains=query)
            | Q(description__icontains=query)
            | Q(service_type__name__icontains=query)
            | Q(neighborhood__name__icontains=query)
            | Q(contact_name__icontains=query)  # a caller asking about their request
        )


class DeskView(DeskListMixin, ReportView):
    """The cases of the person's department (every department for a supervisor)."""

    page_title = "Case desk"
    header_icon = "clipboard-list"
    template_name = "engagement/admin/desk.html"
    results_template_name = "engagement/admin/desk_results.html"
    index_url_name = f"{DESK_NAMESPACE}:index"
    index_results_url_name = f"{DESK_NAMESPACE}:results"
    paginator_class = CasePaginator
    verbose_name_plural = "cases"
    paginate_by = 50

    def get_filtered_queryset(self) -> QuerySet[Case]:
        return self.get_queryset()

    def decorate_paginated_queryset(self, object_list) -> list[Case]:
        cases = list(object_list)
        for case in cases:
            case.desk_url = desk_url(case)
        return cases

    def get_context_data(self, **kwargs) -> dict:
        context = super().get_context_data(**kwargs)
        query = self.request.GET.copy()
        query.pop("_w_filter_fragment", None)
        context.update(
            next_url=f"{self.index_url}?{query.urlencode()}" if query else self.index_url,
            sorts=[
                {"key": key, "label": label, "current": self.ordering}
                for key, label in SORTS.items()
            ],
            bulk_form=BulkStatusForm(cases=Case.objects.none(), prefix="bulk"),
            map_url=reverse(f"{DESK_NAMESPACE}:map"),
            map_limit=MAP_LIMIT,
            field_url=reverse(f"{FIELD_NAMESPACE}:index"),
            call_url=reverse(f"{CALL_NAMESPACE}:index"),
        )
        return context


class DeskMapView(DeskListMixin, ReportView):
    """The desk's filtered cases as GeoJSON points for its map (at most :data:`MAP_LIMIT`)."""

    def get(self, request: HttpRequest, *args, **kwargs) -> JsonResponse:
        now = timezone.now()
        rows = list(
            self.get_queryset()
            .exclude(lat__isnull=True)
            .values_list(
                "tracking_number",
                "service_type__name",
                "status",
                "lat",
                "lon",
                "expected_at",
            )[: MAP_LIMIT + 1]
        )
        labels = dict(Status.choices)
        features = [
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [lon, lat]},
                "properties": {
                    "tracking_number": number,
                    "service": service,
                    "status": status,
                    "status_label": labels.get(status, status),
                    "overdue": bool(status != Status.CLOSED and expected and expected < now),
                    "url": reverse(f"{DESK_NAMESPACE}:case", args=[number]),
                },
            }
            for number, service, status, lat, lon, expected in rows[:MAP_LIMIT]
        ]
        return JsonResponse(
            {"type": "FeatureCollection", "features": features, "truncated": len(rows) > MAP_LIMIT},
            content_type="application/geo+json",
        )


class BulkStatusView(DeskAccessMixin, View):
    """POST: one status change, with a note, for each selected case (each through the services);
    says which were changed and which were not, and why."""

    http_method_names = ["post"]

    def post(self, request: HttpRequest) -> HttpResponse:
        back = get_valid_next_url_from_request(request) or reverse(f"{DESK_NAMESPACE}:index")
        form = BulkStatusForm(request.POST, cases=desk_scope(request.user), prefix="bulk")
        if not form.is_valid():
            problems = "; ".join(
                f"{label}: {' '.join(errs)}" if (label := _label(form, name)) else " ".join(errs)
                for name, errs in form.errors.items()
            )
            messages.error(request, f"Nothing was changed. {problems}")
            return redirect(back)
        changed, failed = [], []
        kwargs = form.service_kwargs()
        for case in form.cleaned_data["cases"].order_by("tracking_number"):
            try:
                services.change_status(case, user=request.user, **kwargs)
            except (ValidationError, PermissionDenied) as exc:
                failed.append((case.tracking_number, _reason(exc)))
            else:
                changed.append(case.tracking_number)
        label = dict(Status.choices)[kwargs["status"]]
        if changed:
            messages.success(
                request,
                f"{len(changed)} case{'s' if len(changed) != 1 else ''} now {label}: "
                f"{', '.join(changed)}.",
            )
        if failed:
            details = "; ".join(f"{number}: {why}" for number, why in failed)
            messages.error(
                request,
                f"{len(failed)} case{'s were' if len(failed) != 1 else ' was'} not changed. "
                f"{details}",
            )
        return redirect(back)


def _label(form: forms.Form, name: str) -> str:
    field = form.fields.get(name)
    return str(field.label) if field is not None and field.label else ""


def _reason(exc: ValidationError | PermissionDenied) -> str:
    if isinstance(exc, PermissionDenied):
        return str(exc) or "You may not change it."
    return " ".join(exc.messages)


# One case -------------------------------------------------------------------------------------


@dataclass
class TimelineEntry:
    note: CaseNote
    author: str


class CaseView(DeskAccessMixin, ActionFormsMixin, WagtailAdminTemplateMixin, TemplateView):
    """Everything about one case, and every action on it (each a POST to this page)."""

    template_name = "engagement/admin/case.html"
    unavailable_message = "That action is not available for this case."
    header_icon = "doc-full"

    def dispatch(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not can_use_desk(request):
            raise PermissionDenied
        found = services.find_case(kwargs["tracking_number"])
        if found is None:
            raise Http404
        if not services.can_work(request.user, found):
            raise PermissionDenied
        self.case = (
            desk_scope(request.user)
            .select_related("reporter", "filed_by", "duplicate_of")
            .get(pk=found.pk)
        )
        return super().dispatch(request, *args, **kwargs)

    def get_page_title(self) -> str:
        return f"Case {self.case.tracking_number}"

    def get_page_subtitle(self) -> str:
        return self.case.service_type.name

    def get_breadcrumbs_items(self) -> list[dict]:
        return [
            *self.breadcrumbs_items,
            {"url": reverse(f"{DESK_NAMESPACE}:index"), "label": "Case desk"},
            {"url": "", "label": self.get_page_title()},
        ]

    def get_forms(self, bound: str | None = None) -> dict[str, forms.Form]:
        def data(name: str):
            return self.request.POST if bound == name else None

        case = self.case
        found: dict[str, forms.Form] = {}
        if case.is_open:
            found["status"] = StatusForm(data("status"), prefix="status")
        found["note"] = NoteForm(data("note"), prefix="note")
        people = (
            get_user_model()
            .objects.filter(
                Q(city_staff__department=case.department_id) | Q(pk=case.assigned_to_id)
            )
            .order_by("first_name", "last_name", "username")
        )
        found["assign"] = AssignForm(
            data("assign"),
            people=people,
            prefix="assign",
            initial={"assignee": case.assigned_to_id},
        )
        if case.is_open:
            found["merge"] = MergeForm(data("merge"), prefix="merge")
        return found

    def get_context_data(self, **kwargs) -> dict:
        context = super().get_context_data(**kwargs)
        case = self.case
        timeline = [
            TimelineEntry(note, staff_label(note.author) if note.author_id else "—")
            for note in services.timeline(case, staff=True)
        ]
        audit = list(case.audit.select_related("actor")[:200])
        for entry in audit:
            _describe(entry)
        threads = (
            Thread.objects.filter(Q(pk=case.thread_id) | Q(linked_cases=case))
            .select_related("neighborhood")
            .defer(*(f"neighborhood__{name}" for name in HEAVY_NEIGHBORHOOD_FIELDS))
            .distinct()
            .order_by("created_at")
        )
        context.update(
            case=case,
            forms=kwargs.get("forms") or self.get_forms(),
            answers=services.answer_labels(case),
            shown_texts=[
                q.prompt for q in services.questions_of(case.service_type) if not q.variable
            ],
            photos=list(case.photos.all()),
            timeline=timeline,
            audit=audit,
            threads=list(threads),
            duplicates=list(case.duplicates.order_by("created_at")),
            forwarding=services.forwarding_state(case),
            forwarding_backend=forwarding_backend().name,
            reporter=person_label(case.reporter) if case.reporter_id else "",
            filed_by=person_label(case.filed_by) if case.filed_by_id else "",
            assigned_to=staff_label(case.assigned_to) if case.assigned_to_id else "",
            location_history_url=_history_url(case),
            map_point={"lat": case.lat, "lon": case.lon, "label": f"Case {case.tracking_number}"},
            index_url=reverse(f"{DESK_NAMESPACE}:index"),
        )
        return context

    def add_errors(self, form: forms.Form, exc: ValidationError) -> None:
        add_service_errors(form, exc)

    def perform(self, name: str, form: forms.Form) -> tuple[str, str]:
        """Apply one action through the services; return what to say and where to go."""
        user, case, data = self.request.user, self.case, form.cleaned_data
        here = desk_url(case)
        if name == "status":
            changed = services.change_status(case, user=user, **form.service_kwargs())
            label = changed.get_status_display()
            if changed.status == Status.CLOSED:
                label += f" ({changed.get_resolution_display()})"
            return f"Case {case.tracking_number} is now {label}.", here
        if name == "note":
            services.add_note(case, user=user, text=data["text"], public=data["public"])
            kind = "Public" if data["public"] else "Internal"
            return f"{kind} note added to case {case.tracking_number}.", here
        if name == "assign":
            assignee = data["assignee"]
            services.assign(case, user=user, assignee=assignee, reason=data["reason"])
            who = staff_label(assignee) if assignee else "nobody"
            return f"Case {case.tracking_number} is assigned to {who}.", here
        original = services.merge_cases(case, data["original"], user=user, reason=data["reason"])
        return (
            f"Case {case.tracking_number} was merged into {original.tracking_number}.",
            desk_url(original),
        )


def _history_url(case: Case) -> str:
    if case.lat is None:
        return ""
    return f"{reverse(f'{HISTORY_NAMESPACE}:index')}?case={case.tracking_number}"


def _describe(entry: CaseAudit) -> CaseAudit:
    """Attach what the audit tables show of an entry."""
    entry.action_label = AUDIT_LABELS.get(entry.action, entry.action.replace("_", " ").title())
    entry.actor_label = staff_label(entry.actor) if entry.actor_id else "System"
    entry.details = "; ".join(
        f"{key}: {value}" for key, value in sorted(entry.data.items()) if value not in (None, "")
    )
    return entry


# Filing from the desk -------------------------------------------------------------------------


class FilingView(DeskPageMixin, TemplateView):
    """Choose a service type (a list of links, easy to tap), then fill its form."""

    form_class: type[FilingForm] = FilingForm
    channel = Case.Channel.FIELD
    namespace = FIELD_NAMESPACE
    template_name = "engagement/admin/filing.html"
    choose_template_name = "engagement/admin/filing_choose.html"
    intro = ""

    def get_template_names(self) -> list[str]:
        return [self.template_name if self.service_type else self.choose_template_name]

    @cached_property
    def service_type(self) -> ServiceType | None:
        code = (self.request.GET.get("type") or "").strip()
        if not code:
            return None
        found = (
            ServiceType.objects.filter(code=code, is_active=True)
            .select_related("department")
            .first()
        )
        if found is None:
            raise Http404
        return found

    def get_context_data(self, **kwargs) -> dict:
        context = super().get_context_data(**kwargs)
        context.update(intro=self.intro, index_url=reverse(f"{self.namespace}:index"))
        if self.service_type is None:
            types = ServiceType.objects.filter(is_active=True).select_related("department")
            context["service_types"] = types.order_by("group", "sort_order", "name")
        else:
            context["service_type"] = self.service_type
            context["form"] = kwargs.get("form") or self.form_class(service_type=self.service_type)
            context["held"] = kwargs.get("held") or {}
            context["boundaries_url"] = reverse("neighborhoods:boundaries")
        return context

    def filing_kwargs(self, form: FilingForm) -> dict:
        # Staff in the field file for the city, not as a resident: no survey, no "me too".
        return {"channel": self.channel, "filed_by": self.request.user}

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if self.service_type is None:
            raise Http404
        files = uploads.with_held(request, "photo")
        form = self.form_class(request.POST, files, service_type=self.service_type)
        if form.is_valid():
            try:
                filed = services.file_case(**form.service_kwargs(), **self.filing_kwargs(form))
            except ValidationError as exc:
                add_service_errors(form, exc)
            except PermissionDenied as exc:
                form.add_error(None, str(exc) or "You may not file this case.")
            else:
                uploads.release(files, "photo")
                case = filed.case
                if services.can_work(request.user, case):
                    messages.success(request, f"Case {case.tracking_number} filed.")
                    return redirect(desk_url(case))
                messages.success(
                    request,
                    f"Case {case.tracking_number} filed; {case.department.name} will handle it.",
                )
                return redirect(reverse(f"{self.namespace}:index"))
        messages.error(request, "The case was not filed: see the form below.")
        held = uploads.hold(request, form, files, "photo")
        return self.render_to_response(self.get_context_data(form=form, held=held))


class FieldFormView(FilingView):
    """For staff in the field: a case at their position, filed in their own name."""

    page_title = "Report from the field"
    header_icon = "site"
    intro = "Open a case where you stand: your position, a photo and the type's questions."


class CallFormView(FilingView):
    """For a call taker: a case for a caller, who is reached by the contact details taken."""

    page_title = "Take a call"
    header_icon = "mobile-alt"
    form_class = CallForm
    channel = Case.Channel.PHONE
    namespace = CALL_NAMESPACE
    intro = (
        "Record a caller's problem. Their contact details stay with staff; the caller gets the "
        "tracking number."
    )

    def filing_kwargs(self, form: FilingForm) -> dict:
        return {"channel": self.channel, "filed_by": self.request.user}


# The history of a location --------------------------------------------------------------------


class LocationHistoryView(DeskPageMixin, TemplateView):
    """Every case and thread within a distance of a point, nearest first."""

    page_title = "History of a location"
    header_icon = "history"
    template_name = "engagement/admin/location_history.html"

    def get_context_data(self, **kwargs) -> dict:
        context = super().get_context_data(**kwargs)
        params = self.request.GET.copy()
        origin = None
        number = params.get("case", "").strip()
        if number:
            origin = services.find_case(number)
            if origin is not None and origin.lat is not None:
                params.setdefault("lat", str(origin.lat))
                params.setdefault("lon", str(origin.lon))
        if {"lat", "lon"} & set(params):
            params.setdefault("radius", str(LocationForm.base_fields["radius"].initial))
            form = LocationForm(params)
        else:
            form = LocationForm()
        context.update(form=form, origin=origin)
        if form.is_bound and form.is_valid():
            data = form.cleaned_data
            radius = data["radius"] or form.fields["radius"].initial
            history = services.location_history(data["lat"], data["lon"], radius_m=radius)
            user = self.request.user
            for case, _ in history.cases:
                case.link = desk_url(case) if services.can_work(user, case) else ""
            context.update(history=history, radius=radius)
        return context


# Metrics --------------------------------------------------------------------------------------


class MetricsView(DeskPageMixin, TemplateView):
    """Open and overdue cases, times to acknowledge and close, service level, satisfaction,
    contested closures and channels, for a period and a department."""

    page_title = "Case metrics"
    header_icon = "table"
    template_name = "engagement/admin/metrics.html"

    def get_context_data(self, **kwargs) -> dict:
        context = super().get_context_data(**kwargs)
        user = self.request.user
        form = MetricsForm(self.request.GET or None, departments=services.departments_of(user))
        start, end = metrics.default_period()
        cases = services.desk_cases(user)
        if form.is_bound and form.is_valid():
            data = form.cleaned_data
            tz = timezone.get_current_timezone()
            if data.get("period"):
                start = end - timedelta(days=int(data["period"]))
            if data.get("start"):
                start = datetime.combine(data["start"], time.min, tzinfo=tz)
            if data.get("end"):
                end = datetime.combine(data["end"] + timedelta(days=1), time.min, tzinfo=tz)
            if data.get("department"):
                cases = cases.filter(department=data["department"])
        report = metrics.case_metrics(cases, start=start, end=end)
        context.update(
            form=form,
            report=report,
            total=metric_row(report.total),
            tables=[
                ("By service type", "Service type", [metric_row(g) for g in report.by_type]),
                (
                    "By neighborhood",
                    "Neighborhood",
                    [metric_row(g) for g in report.by_neighborhood],
                ),
            ],
            channels=[
                {"label": share.label, "count": share.count, "percent": _percent(share.percent)}
                for share in report.channels
            ],
            period_end=end - timedelta(microseconds=1),
            export_columns=EXPORT_COLUMNS,
            export_csv_url=reverse("engagement:cases-csv"),
            export_geojson_url=reverse("engagement:cases-geojson"),
        )
        return context


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f}%"


def metric_row(group: metrics.Group) -> dict:
    """One group's figures as the metrics page shows them."""
    acknowledge, close = group.acknowledge, group.close
    return {
        "label": group.label,
        "filed": group.filed,
        "open": group.open,
        "overdue": group.overdue,
        "acknowledge_median": metrics.human_duration(acknowledge.median),
        "acknowledge_p90": metrics.human_duration(acknowledge.p90),
        "close_median": metrics.human_duration(close.median),
        "close_p90": metrics.human_duration(close.p90),
        "sla": _percent(group.sla_percent),
        "satisfaction": "—" if group.satisfaction is None else f"{group.satisfaction:.1f}",
        "satisfaction_n": group.satisfaction_n,
        "contested": group.contested_cases,
    }


# The audit log --------------------------------------------------------------------------------


def _scoped_audit(user) -> QuerySet[CaseAudit]:
    entries = CaseAudit.objects.all()
    if is_supervisor(user):
        return entries
    record = staff_record(user)
    if record is None:
        return entries.none()
    return entries.filter(case__department_id=record.department_id)


class StaffChoiceField(django_filters.fields.ModelChoiceField):
    def label_from_instance(self, obj) -> str:
        return staff_label(obj)


class StaffFilter(django_filters.ModelChoiceFilter):
    field_class = StaffChoiceField


class AuditFilterSet(WagtailFilterSet):
    action = django_filters.ChoiceFilter(
        label="Action", choices=list(AUDIT_LABELS.items()), empty_label="All"
    )
    actor = StaffFilter(
        label="By",
        queryset=lambda request: (
            get_user_model()
            .objects.filter(pk__in=_scoped_audit(request.user).values("actor_id"))
            .order_by("first_name", "last_name", "username")
        ),
        empty_label="Anyone",
    )
    created_at = django_filters.DateFromToRangeFilter(label="Date", widget=DateRangePickerWidget)

    class Meta:
        model = CaseAudit
        fields: list[str] = []


class AuditView(DeskAccessMixin, ReportView):
    """Who did what to which case, when and why; the department's cases (all for supervisors)."""

    page_title = "Case audit log"
    header_icon = "history"
    template_name = "engagement/admin/audit.html"
    results_template_name = "engagement/admin/audit_results.html"
    index_url_name = f"{AUDIT_NAMESPACE}:index"
    index_results_url_name = f"{AUDIT_NAMESPACE}:results"
    filterset_class = AuditFilterSet
    verbose_name_plural = "audit entries"
    paginate_by = 50
    list_export = ["created_at", "actor_label", "action_label", "case_number", "reason", "details"]
    export_headings = {
        "created_at": "When",
        "actor_label": "By",
        "action_label": "Action",
        "case_number": "Case",
        "reason": "Reason",
        "details": "Details",
    }

    def get_filename(self) -> str:
        return f"case-audit-{timezone.localdate():%Y-%m-%d}"

    def get_filtered_queryset(self) -> QuerySet[CaseAudit]:
        entries = _scoped_audit(self.request.user).select_related("actor", "case")
        return self.filter_queryset(entries).order_by("-created_at", "-id")

    def decorate_paginated_queryset(self, object_list) -> list[CaseAudit]:
        entries = [_describe(entry) for entry in object_list]
        for entry in entries:
            entry.case_number = entry.case.tracking_number if entry.case_id else ""
            entry.case_url = desk_url(entry.case) if entry.case_id else ""
        return entries


# The dashboard --------------------------------------------------------------------------------


class DeskPanel(Component):
    """On the admin dashboard of city staff: open, overdue and own cases, one query."""

    name = "case_desk"
    template_name = "engagement/admin/home_panel.html"
    order = 80

    def get_context_data(self, parent_context: Mapping[str, Any]) -> dict:
        user = parent_context["request"].user
        now = timezone.now()
        open_cases = ~Q(status=Status.CLOSED)
        counts = (
            services.desk_cases(user)
            .order_by()
            .aggregate(
                open=Count("pk", filter=open_cases),
                overdue=Count("pk", filter=open_cases & Q(expected_at__lt=now)),
                mine=Count("pk", filter=open_cases & Q(assigned_to=user)),
            )
        )
        index = reverse(f"{DESK_NAMESPACE}:index")
        return {
            **counts,
            "open_url": f"{index}?status=open",
            "overdue_url": f"{index}?overdue=true",
            "mine_url": f"{index}?status=open&assigned=me",
            "metrics_url": reverse(f"{METRICS_NAMESPACE}:index"),
        }
