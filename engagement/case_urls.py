"""Public pages of 311 cases; included by ``engagement.urls``."""

from django.urls import path, re_path

from . import exports, views

app_name = "engagement"
# Tracking numbers only, so other paths under cases/ stay free (exports, new pages).
TRACKING = r"\d{2}-\d{4,12}"

urlpatterns = [
    path("cases/", views.case_list, name="cases"),
    path("cases/mine/", views.my_requests, name="mine"),
    path("cases/new/", views.report, name="report"),
    path("cases/new/phone/", views.report_phone, name="report-phone"),
    path("cases/new/on-behalf/", views.report_on_behalf, name="report-on-behalf"),
    path("cases/escalate/<int:thread_id>/", views.escalate, name="escalate"),
    re_path(rf"^cases/(?P<tracking_number>{TRACKING})/$", views.case_detail, name="case"),
    re_path(
        rf"^cases/(?P<tracking_number>{TRACKING})/(?P<action>[a-z-]+)/$",
        views.case_action,
        name="case-action",
    ),
    path("cases/export.csv", exports.cases_csv, name="cases-csv"),
    path("cases/export.geojson", exports.cases_geojson, name="cases-geojson"),
]
