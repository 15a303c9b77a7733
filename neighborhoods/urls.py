from django.urls import path

from . import views

app_name = "neighborhoods"

urlpatterns = [
    path("neighborhoods/", views.neighborhood_list, name="list"),
    path("neighborhoods/map/", views.city_map, name="map"),
    path("neighborhoods/boundaries.geojson", views.boundaries_geojson, name="boundaries"),
    path("neighborhoods/<slug:slug>/", views.neighborhood_detail, name="detail"),
    path("neighborhoods/<slug:slug>/join/", views.join, name="join"),
    path("neighborhoods/<slug:slug>/leave/", views.leave, name="leave"),
    path(
        "neighborhoods/<slug:slug>/members/<int:membership_id>/verify/",
        views.verify_member,
        name="verify_member",
    ),
    path(
        "neighborhoods/<slug:slug>/members/<int:membership_id>/code/",
        views.issue_code,
        name="issue_code",
    ),
    path("profile/", views.profile, name="profile"),
    path("profile/home/", views.home_location, name="home_location"),
    path("profile/code/", views.redeem_code, name="redeem_code"),
    path("organizations/", views.organization_list, name="organizations"),
    path("organizations/new/", views.organization_create, name="organization_create"),
    path("organizations/<slug:slug>/", views.organization_detail, name="organization"),
    path(
        "organizations/<slug:slug>/request/",
        views.organization_request,
        name="organization_request",
    ),
    path(
        "organizations/<slug:slug>/requests/<int:request_id>/",
        views.organization_decide,
        name="organization_decide",
    ),
    path("organizations/<slug:slug>/leave/", views.organization_leave, name="organization_leave"),
    path(
        "organizations/<slug:slug>/verify/", views.organization_verify, name="organization_verify"
    ),
]
