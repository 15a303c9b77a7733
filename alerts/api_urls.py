"""``/api/v1/alerts/`` and ``/api/v1/notifications/``; included by ``engagement.urls``."""

from django.urls import path

from . import api

urlpatterns = [
    path("alerts/", api.AlertListView.as_view(), name="api-alerts"),
    path("alerts/categories/", api.CategoryListView.as_view(), name="api-alert-categories"),
    path("alerts/<int:pk>/", api.AlertDetailView.as_view(), name="api-alert"),
    path("alerts/<int:pk>/confirm/", api.AlertConfirmView.as_view(), name="api-alert-confirm"),
    path("alerts/<int:pk>/gone/", api.AlertGoneView.as_view(), name="api-alert-gone"),
    path("alerts/<int:pk>/retract/", api.AlertRetractView.as_view(), name="api-alert-retract"),
    path("alerts/<int:pk>/verify/", api.AlertVerifyView.as_view(), name="api-alert-verify"),
    path("alerts/<int:pk>/resolve/", api.AlertResolveView.as_view(), name="api-alert-resolve"),
    path("alerts/<int:pk>/dismiss/", api.AlertDismissView.as_view(), name="api-alert-dismiss"),
    path("notifications/", api.NotificationListView.as_view(), name="api-notifications"),
    path(
        "notifications/read/",
        api.NotificationReadView.as_view(),
        name="api-notifications-read",
    ),
]
