"""Wagtail admin: the "Moderation" menu (queue, log, suspensions) and forum categories.

The menu appears to city staff and to organizers and moderators of at least one neighborhood;
each screen shows only the neighborhoods the person moderates (see :mod:`forums.admin_views`).
Forum categories are edited by city staff (and by anyone granted the model's permissions).
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.urls import URLPattern, path
from wagtail import hooks
from wagtail.admin.menu import MenuItem
from wagtail.admin.viewsets.base import ViewSet, ViewSetGroup
from wagtail.admin.viewsets.model import ModelViewSet
from wagtail.permission_policies.base import ModelPermissionPolicy
from wagtail.permissions import register_permission_policy

from neighborhoods.permissions import is_city_staff

from . import admin_views
from .admin_forms import QUEUE_NAMESPACE
from .models import ForumCategory

STAFF_CATEGORY_ACTIONS = {"add", "change", "delete", "view"}


class ForumCategoryPermissionPolicy(ModelPermissionPolicy):
    """City staff manage forum categories; so does anyone granted the model's permissions."""

    def user_has_permission(self, user, action: str) -> bool:
        return super().user_has_permission(user, action) or (
            action in STAFF_CATEGORY_ACTIONS and is_city_staff(user)
        )

    def user_has_any_permission(self, user, actions) -> bool:
        return any(self.user_has_permission(user, action) for action in actions)

    def users_with_any_permission(self, actions) -> QuerySet:
        users = super().users_with_any_permission(actions)
        if set(actions) & STAFF_CATEGORY_ACTIONS:
            staff = get_user_model().objects.filter(
                Q(city_staff__isnull=False) | Q(is_superuser=True), is_active=True
            )
            users = (users | staff).distinct()
        return users


register_permission_policy(ForumCategory, ForumCategoryPermissionPolicy(ForumCategory))


class ModerationMenuItem(MenuItem):
    def is_shown(self, request: HttpRequest) -> bool:
        return admin_views.can_use_moderation(request)


class ModerationScreen(ViewSet):
    """A moderation screen: shown in the menu only to those who moderate somewhere."""

    menu_item_class = ModerationMenuItem


class QueueViewSet(ModerationScreen):
    menu_label = "Queue"
    icon = "tasks"

    def get_urlpatterns(self) -> list[URLPattern]:
        return [
            path("", admin_views.QueueView.as_view(), name="queue"),
            path(
                "results/", admin_views.QueueView.as_view(results_only=True), name="queue_results"
            ),
            path("thread/<int:pk>/", admin_views.ItemView.as_view(kind="thread"), name="thread"),
            path("reply/<int:pk>/", admin_views.ItemView.as_view(kind="reply"), name="reply"),
            path(
                "thread/<int:pk>/history/",
                admin_views.HistoryView.as_view(kind="thread"),
                name="thread_history",
            ),
            path(
                "reply/<int:pk>/history/",
                admin_views.HistoryView.as_view(kind="reply"),
                name="reply_history",
            ),
        ]


class LogViewSet(ModerationScreen):
    menu_label = "Log"
    icon = "history"

    def get_urlpatterns(self) -> list[URLPattern]:
        return [
            path("", admin_views.LogView.as_view(), name="index"),
            path("results/", admin_views.LogView.as_view(results_only=True), name="results"),
        ]


class SuspensionViewSet(ModerationScreen):
    menu_label = "Suspensions"
    icon = "lock"

    def get_urlpatterns(self) -> list[URLPattern]:
        return [
            path("", admin_views.SuspensionsView.as_view(), name="index"),
            path(
                "results/",
                admin_views.SuspensionsView.as_view(results_only=True),
                name="results",
            ),
            path("<int:pk>/lift/", admin_views.LiftSuspensionView.as_view(), name="lift"),
        ]


class ForumCategoryViewSet(ModelViewSet):
    model = ForumCategory
    icon = "tag"
    delete_view_class = admin_views.ForumCategoryDeleteView
    menu_label = "Forum categories"
    form_fields = ["name", "slug", "description", "sort_order"]
    list_display = ["name", "slug", "description", "sort_order"]
    search_fields = ["name", "description"]
    ordering = ["sort_order", "name"]


class ModerationViewSetGroup(ViewSetGroup):
    menu_label = "Moderation"
    menu_icon = "comment"
    menu_order = 270
    items = (
        QueueViewSet(QUEUE_NAMESPACE, url_prefix="moderation"),
        LogViewSet(admin_views.LOG_NAMESPACE, url_prefix="moderation/log"),
        SuspensionViewSet(admin_views.SUSPENSIONS_NAMESPACE, url_prefix="moderation/suspensions"),
        ForumCategoryViewSet("engagement_forum_categories", url_prefix="forum-categories"),
    )


@hooks.register("register_admin_viewset")
def register_moderation_viewsets() -> ViewSetGroup:
    return ModerationViewSetGroup()


@hooks.register("construct_homepage_panels")
def add_moderation_panel(request: HttpRequest, panels: list) -> None:
    if admin_views.can_use_moderation(request):
        panels.append(admin_views.QueuePanel())
