from django.urls import path

from . import api

urlpatterns = [
    path("auth/token/", api.TokenView.as_view(), name="api-token"),
    path("me/", api.MeView.as_view(), name="api-me"),
    path("neighborhoods/", api.NeighborhoodListView.as_view(), name="api-neighborhoods"),
    path("neighborhoods/locate/", api.LocateView.as_view(), name="api-locate"),
    path(
        "neighborhoods/<slug:slug>/", api.NeighborhoodDetailView.as_view(), name="api-neighborhood"
    ),
    path(
        "neighborhoods/<slug:slug>/membership/",
        api.MembershipView.as_view(),
        name="api-membership",
    ),
    path("organizations/", api.OrganizationListView.as_view(), name="api-organizations"),
]
