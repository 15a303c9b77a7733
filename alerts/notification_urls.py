"""The inbox and e-mail unsubscribe links (included at the site root by ``alerts.urls``)."""

from django.urls import path

from . import notification_views as views

urlpatterns = [
    path("notifications/", views.inbox, name="inbox"),
    path("notifications/read/", views.mark_all_read, name="read_all"),
    path("notifications/<int:pk>/read/", views.mark_read, name="read"),
    path("notifications/unsubscribe/<str:token>/", views.unsubscribe, name="unsubscribe"),
    path(
        "notifications/unsubscribe/<str:token>/resubscribe/",
        views.resubscribe,
        name="resubscribe",
    ),
]
