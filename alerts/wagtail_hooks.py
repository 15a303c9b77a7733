"""Wagtail admin: alert categories (edited here), alerts, deliveries and recorded messages (read here).

Alerts are posted, corrected and retracted on the public pages and the API, where the rules live
(provenance, notifications, live events); the admin lists them, links to them and shows what
was sent to whom.
"""

from __future__ import annotations

from django.db.models import Q
from wagtail import hooks
from wagtail.admin.viewsets.base import ViewSetGroup
from wagtail.admin.viewsets.model import ModelViewSet
from wagtail.permission_policies.base import ModelPermissionPolicy
from wagtail.permissions import register_permission_policy

from neighborhoods.permissions import is_city_staff

from .models import Alert, AlertCategory, Delivery, RecordedMessage


class ReadOnlyPolicy(ModelPermissionPolicy):
    """City staff (and people given the model's view permission) may look; nobody adds, edits
    or deletes here. Deliveries name their recipients, so admin access alone is not enough:
    volunteer moderators get into the admin for the moderation queue only."""

    def user_has_permission(self, user, action: str) -> bool:
        if action in ("add", "change", "delete", "lock", "unlock", "publish"):
            return False
        if not (user.is_active and user.has_perm("wagtailadmin.access_admin")):
            return bool(user.is_active and user.is_superuser)
        codename = f"{self.model._meta.app_label}.view_{self.model._meta.model_name}"
        return is_city_staff(user) or user.has_perm(codename)

    def user_has_any_permission(self, user, actions) -> bool:
        return any(self.user_has_permission(user, action) for action in actions)

    def users_with_any_permission(self, actions):
        from django.contrib.auth import get_user_model

        if not set(actions) - {"add", "change", "delete", "lock", "unlock", "publish"}:
            return get_user_model().objects.none()
        return get_user_model().objects.filter(
            Q(is_superuser=True) | Q(city_staff__isnull=False), is_active=True
        )

    def user_has_permission_for_instance(self, user, action: str, instance) -> bool:
        return self.user_has_permission(user, action)


for _model in (Alert, Delivery, RecordedMessage):
    register_permission_policy(_model, ReadOnlyPolicy(_model))


class AlertCategoryViewSet(ModelViewSet):
    model = AlertCategory
    icon = "tag"
    form_fields = [
        "name",
        "slug",
        "description",
        "default_lifetime_hours",
        "default_radius_m",
        "residents_may_report",
        "sort_order",
    ]
    list_display = ["name", "slug", "default_lifetime_hours", "residents_may_report"]
    ordering = ["sort_order", "name"]


class AlertViewSet(ModelViewSet):
    model = Alert
    icon = "warning"
    list_display = ["title", "kind", "severity", "status", "provenance", "starts_at"]
    list_filter = ["kind", "status", "severity", "category", "source"]
    search_fields = ["title", "body"]
    ordering = ["-starts_at"]
    inspect_view_enabled = True
    inspect_view_fields = [
        "title",
        "kind",
        "category",
        "severity",
        "status",
        "status_note",
        "body",
        "department",
        "source",
        "source_name",
        "source_url",
        "external_id",
        "confirmations",
        "gone_reports",
        "starts_at",
        "expires_at",
        "version",
    ]
    form_fields = ["title"]


class DeliveryViewSet(ModelViewSet):
    model = Delivery
    icon = "mail"
    list_display = ["notification", "channel", "status", "attempts", "last_error", "sent_at"]
    list_filter = ["channel", "status"]
    ordering = ["-created_at"]
    form_fields = ["status"]


class RecordedMessageViewSet(ModelViewSet):
    model = RecordedMessage
    icon = "mobile-alt"
    menu_label = "Recorded SMS and push"
    list_display = ["channel", "recipient", "subject", "created_at"]
    list_filter = ["channel"]
    ordering = ["-created_at"]
    inspect_view_enabled = True
    form_fields = ["subject"]


class AlertsViewSetGroup(ViewSetGroup):
    menu_label = "Alerts"
    menu_icon = "warning"
    menu_order = 260
    items = (
        AlertViewSet("engagement_alerts", url_prefix="alerts"),
        AlertCategoryViewSet("engagement_alert_categories", url_prefix="alert-categories"),
        DeliveryViewSet("engagement_deliveries", url_prefix="deliveries"),
        RecordedMessageViewSet("engagement_recorded_messages", url_prefix="recorded-messages"),
    )


@hooks.register("register_admin_viewset")
def register_alert_viewsets() -> ViewSetGroup:
    return AlertsViewSetGroup()
