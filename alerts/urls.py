"""Pages of the alerts app: feeds, the alert page, posting, the inbox."""

from django.urls import include, path

from . import views

app_name = "alerts"

urlpatterns = [
    path("alerts/", views.city_feed, name="city"),
    path("alerts/mine/", views.my_feed, name="mine"),
    path("alerts/new/", views.report_new, name="report"),
    path("alerts/new/official/", views.official_new, name="official"),
    path("alerts/<int:pk>/", views.alert_detail, name="detail"),
    path("alerts/<int:pk>/edit/", views.alert_edit, name="edit"),
    path("alerts/<int:pk>/<str:action>/", views.alert_action, name="action"),
    path("neighborhoods/<slug:slug>/alerts/", views.neighborhood_feed, name="neighborhood"),
    path("", include("alerts.feed_urls")),
    path("", include("alerts.notification_urls")),
]
