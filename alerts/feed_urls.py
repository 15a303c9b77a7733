"""Feeds for other systems: Atom, GeoJSON and CAP 1.2 (see docs/feeds.md)."""

from django.urls import path

from . import feeds

urlpatterns = [
    path("alerts/feed.atom", feeds.city_atom, name="feed-atom"),
    path("alerts/active.geojson", feeds.active_geojson, name="feed-geojson"),
    path("alerts/cap.atom", feeds.cap_index, name="cap-index"),
    path("alerts/<int:pk>/cap.xml", feeds.cap_alert, name="cap"),
    path(
        "neighborhoods/<slug:slug>/alerts/feed.atom",
        feeds.neighborhood_atom,
        name="neighborhood-feed-atom",
    ),
]
