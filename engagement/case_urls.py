"""Public pages of 311 cases; included by ``engagement.urls``."""

from django.urls import path

from . import views

app_name = "engagement"

urlpatterns = [
    path("cases/", views.case_list, name="cases"),
    path("cases/mine/", views.my_requests, name="mine"),
    path("cases/new/", views.report, name="report"),
    path("cases/<str:tracking_number>/", views.case_detail, name="case"),
]
