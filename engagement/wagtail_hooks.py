"""Wagtail admin: the "Case desk" menu (cases, field and call-taker forms, the history of a
location, metrics, the audit log) for city staff, and the "311 catalogue" (service types with
their questions, holidays, Open311 API keys) for staff granted its model permissions.

The case desk appears to city staff only (see :mod:`engagement.admin_views`); each screen shows
the person's department, or every department to a supervisor. The catalogue follows Wagtail's
model permissions (``engagement.add_servicetype`` and so on), which a city grants through a
group.
"""

from __future__ import annotations

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.functional import cached_property
from wagtail import hooks
from wagtail.admin import messages
from wagtail.admin.menu import MenuItem
from wagtail.admin.panels import FieldPanel, MultiFieldPanel, ObjectList
from wagtail.admin.ui.menus import MenuItem as ListingMenuItem
from wagtail.admin.views.generic import CreateView, DeleteView, EditView, IndexView
from wagtail.admin.viewsets.base import ViewSet, ViewSetGroup
from wagtail.admin.viewsets.model import ModelViewSet
from wagtail.admin.widgets import AdminDateInput
from wagtail.admin.widgets.button import Button

from . import admin_views
from .admin_forms import (
    AUDIT_NAMESPACE,
    CALL_NAMESPACE,
    DESK_NAMESPACE,
    FIELD_NAMESPACE,
    HISTORY_NAMESPACE,
    METRICS_NAMESPACE,
    Open311KeyCreateForm,
    Open311KeyEditForm,
    QuestionsPanel,
    ServiceTypeForm,
)
from .models import Holiday, Open311Key, ServiceType
from .open311 import keys

KEYS_NAMESPACE = "engagement_open311_keys"

# The case desk --------------------------------------------------------------------------------


class DeskMenuItem(MenuItem):
    def is_shown(self, request: HttpRequest) -> bool:
        return admin_views.can_use_desk(request)


class DeskScreen(ViewSet):
    """A case desk screen: in the menu for city staff only."""

    menu_item_class = DeskMenuItem


class CasesViewSet(DeskScreen):
    menu_label = "Cases"
    icon = "clipboard-list"

    def get_urlpatterns(self) -> list[URLPattern]:
        return [
            path("", admin_views.DeskView.as_view(), name="index"),
            path("results/", admin_views.DeskView.as_view(results_only=True), name="results"),
            path("map.geojson", admin_views.DeskMapView.as_view(), name="map"),
            path("bulk/", admin_views.BulkStatusView.as_view(), name="bulk"),
            path("case/<str:tracking_number>/", admin_views.CaseView.as_view(), name="case"),
        ]


class FieldFormViewSet(DeskScreen):
    menu_label = "Report from the field"
    icon = "site"

    def get_urlpatterns(self) -> list[URLPattern]:
        return [path("", admin_views.FieldFormView.as_view(), name="index")]


class CallViewSet(DeskScreen):
    menu_label = "Take a call"
    icon = "mobile-alt"

    def get_urlpatterns(self) -> list[URLPattern]:
        return [path("", admin_views.CallFormView.as_view(), name="index")]


class LocationHistoryViewSet(DeskScreen):
    menu_label = "History of a location"
    icon = "history"

    def get_urlpatterns(self) -> list[URLPattern]:
        return [path("", admin_views.LocationHistoryView.as_view(), name="index")]


class MetricsViewSet(DeskScreen):
    menu_label = "Metrics"
    icon = "table"

    def get_urlpatterns(self) -> list[URLPattern]:
        return [path("", admin_views.MetricsView.as_view(), name="index")]


class AuditViewSet(DeskScreen):
    menu_label = "Audit log"
    icon = "list-ul"

    def get_urlpatterns(self) -> list[URLPattern]:
        return [
            path("", admin_views.AuditView.as_view(), name="index"),
            path("results/", admin_views.AuditView.as_view(results_only=True), name="results"),
        ]


class CaseDeskViewSetGroup(ViewSetGroup):
    menu_label = "Case desk"
    menu_icon = "clipboard-list"
    menu_order = 240
    items = (
        CasesViewSet(DESK_NAMESPACE, url_prefix="case-desk"),
        FieldFormViewSet(FIELD_NAMESPACE, url_prefix="case-desk/field"),
        CallViewSet(CALL_NAMESPACE, url_prefix="case-desk/call"),
        LocationHistoryViewSet(HISTORY_NAMESPACE, url_prefix="case-desk/location"),
        MetricsViewSet(METRICS_NAMESPACE, url_prefix="case-desk/metrics"),
        AuditViewSet(AUDIT_NAMESPACE, url_prefix="case-desk/audit"),
    )


# The service catalogue ------------------------------------------------------------------------


class ServiceTypeDeleteView(DeleteView):
    """A type that cases were filed under stays (cases need one): say so instead of failing."""

    @cached_property
    def case_count(self) -> int:
        return self.object.cases.count()

    @property
    def confirmation_message(self) -> str:
        if self.case_count:
            return (
                f"{self.case_count} case{'s were' if self.case_count != 1 else ' was'} filed as "
                f"this type, so it cannot be deleted. Untick “Is active” to stop taking it."
            )
        return super().confirmation_message

    def form_valid(self, form) -> HttpResponse:
        if self.case_count:
            messages.error(self.request, self.confirmation_message)
            return redirect(self.get_success_url())
        return super().form_valid(form)


QUESTION_PANELS = [
    FieldPanel("code"),
    FieldPanel("prompt"),
    FieldPanel("datatype"),
    FieldPanel("datatype_description"),
    FieldPanel("required"),
    FieldPanel("variable"),
    FieldPanel("values", widget=forms.Textarea(attrs={"rows": 4})),
]


class ServiceTypeViewSet(ModelViewSet):
    model = ServiceType
    icon = "list-ul"
    menu_label = "Service types"
    delete_view_class = ServiceTypeDeleteView
    list_display = ["name", "code", "department", "group", "sla_working_days", "is_active"]
    list_filter = ["department", "is_active"]
    search_fields = ["name", "code", "group", "keywords"]
    ordering = ["sort_order", "name"]
    edit_handler = ObjectList(
        [
            MultiFieldPanel(
                [
                    FieldPanel("code"),
                    FieldPanel("name"),
                    FieldPanel("description"),
                    FieldPanel("group"),
                    FieldPanel("keywords"),
                ],
                heading="The service",
            ),
            MultiFieldPanel(
                [FieldPanel("department"), FieldPanel("sla_working_days")],
                heading="Who handles it, and how fast",
            ),
            MultiFieldPanel(
                [FieldPanel("forum_category"), FieldPanel("forum_tags")],
                heading="Suggested when a discussion is escalated",
            ),
            QuestionsPanel(
                "questions",
                panels=QUESTION_PANELS,
                heading="Questions",
                label="Question",
                help_text="Asked when a case is filed (Open311 attributes). Pick-one and "
                "pick-several questions list their choices, one per line as key|label.",
            ),
            MultiFieldPanel(
                [FieldPanel("is_active"), FieldPanel("sort_order")], heading="Publishing"
            ),
        ],
        base_form_class=ServiceTypeForm,
    )

    def get_queryset(self, request: HttpRequest):
        return ServiceType.objects.select_related("department")


class HolidayViewSet(ModelViewSet):
    model = Holiday
    icon = "date"
    menu_label = "Holidays"
    list_display = ["date", "name"]
    ordering = ["-date"]
    search_fields = ["name"]
    panels = [FieldPanel("date", widget=AdminDateInput), FieldPanel("name")]


class Open311KeyCreateView(CreateView):
    """Issue a key: the page after saving shows it, once; only its hash is kept."""

    def save_instance(self) -> Open311Key:
        data = self.form.cleaned_data
        key, self.secret = keys.issue_key(
            data["name"],
            requests_per_minute=data["requests_per_minute"],
            created_by=self.request.user,
        )
        return key

    def save_action(self) -> HttpResponse:
        return TemplateResponse(
            self.request,
            "engagement/admin/key_issued.html",
            {
                "key": self.object,
                "secret": self.secret,
                "index_url": reverse(self.index_url_name),
                "page_title": f"Open311 key “{self.object.name}”",
                "header_icon": "key",
                "breadcrumbs_items": self.get_breadcrumbs_items(),
            },
        )


class Open311KeyRevokeView(DeleteView):
    """Revoke a key: it stops working at once; its record and last use stay listed."""

    template_name = "engagement/admin/key_revoke.html"
    permission_required = "change"
    page_title = "Revoke"

    def get_delete_url(self) -> str:
        return _revoke_url(self.object)

    @property
    def confirmation_message(self) -> str:
        return (
            f"Clients using the key “{self.object.name}” ({self.object.prefix}…) will be refused "
            "from now on. To let them in again, issue a new key."
        )

    def form_valid(self, form) -> HttpResponse:
        Open311Key.objects.filter(pk=self.object.pk).update(is_active=False)
        messages.success(self.request, f"Key “{self.object.name}” revoked: it no longer works.")
        return redirect(self.get_success_url())


def _revoke_url(key: Open311Key) -> str:
    return reverse(f"{KEYS_NAMESPACE}:revoke", args=[key.pk])


class Open311KeyIndexView(IndexView):
    def get_list_more_buttons(self, instance: Open311Key) -> list:
        buttons = super().get_list_more_buttons(instance)
        if instance.is_active and self.permission_policy.user_has_permission(
            self.request.user, "change"
        ):
            buttons.append(
                ListingMenuItem("Revoke", url=_revoke_url(instance), icon_name="lock", priority=25)
            )
        return buttons


class Open311KeyEditView(EditView):
    @cached_property
    def header_more_buttons(self) -> list:
        buttons = super().header_more_buttons
        if self.object.is_active:
            buttons.append(
                Button("Revoke", url=_revoke_url(self.object), icon_name="lock", priority=15)
            )
        return buttons


class Open311KeyViewSet(ModelViewSet):
    model = Open311Key
    icon = "key"
    menu_label = "Open311 API keys"
    index_view_class = Open311KeyIndexView
    add_view_class = Open311KeyCreateView
    edit_view_class = Open311KeyEditView
    list_display = [
        "name",
        "prefix",
        "is_active",
        "requests_per_minute",
        "last_used_at",
        "created_at",
    ]
    list_filter = ["is_active"]
    search_fields = ["name"]
    ordering = ["name"]

    def get_form_class(self, for_update: bool = False) -> type[forms.ModelForm]:
        return Open311KeyEditForm if for_update else Open311KeyCreateForm

    @property
    def revoke_view(self):
        return self.construct_view(Open311KeyRevokeView, **self.get_delete_view_kwargs())

    def get_urlpatterns(self) -> list[URLPattern]:
        return [
            *super().get_urlpatterns(),
            path("revoke/<str:pk>/", self.revoke_view, name="revoke"),
        ]


class CatalogueViewSetGroup(ViewSetGroup):
    menu_label = "311 catalogue"
    menu_icon = "list-ul"
    menu_order = 245
    items = (
        ServiceTypeViewSet("engagement_service_types", url_prefix="service-types"),
        HolidayViewSet("engagement_holidays", url_prefix="holidays"),
        Open311KeyViewSet(KEYS_NAMESPACE, url_prefix="open311-keys"),
    )


@hooks.register("register_admin_viewset")
def register_case_desk() -> ViewSetGroup:
    return CaseDeskViewSetGroup()


@hooks.register("register_admin_viewset")
def register_catalogue() -> ViewSetGroup:
    return CatalogueViewSetGroup()


@hooks.register("construct_homepage_panels")
def add_case_desk_panel(request: HttpRequest, panels: list) -> None:
    if admin_views.can_use_desk(request):
        panels.append(admin_views.DeskPanel())
