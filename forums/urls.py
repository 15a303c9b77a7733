from django.urls import path

from . import feeds, views

app_name = "forums"

urlpatterns = [
    path("discussions/", views.my_feed, name="mine"),
    path("discussions/search/", views.search, name="search"),
    path("neighborhoods/<slug:slug>/discussions/", views.neighborhood_feed, name="neighborhood"),
    path("neighborhoods/<slug:slug>/discussions/new/", views.thread_new, name="new"),
    path(
        "neighborhoods/<slug:slug>/discussions/feed.atom",
        feeds.NeighborhoodThreadsFeed(),
        name="feed-atom",
    ),
    path("neighborhoods/<slug:slug>/discussions/<int:pk>/", views.thread_detail, name="thread"),
    path("neighborhoods/<slug:slug>/discussions/<int:pk>/edit/", views.thread_edit, name="edit"),
    path(
        "neighborhoods/<slug:slug>/discussions/<int:pk>/<str:action>/",
        views.thread_action,
        name="thread-action",
    ),
    path(
        "neighborhoods/<slug:slug>/discussions/<int:pk>/replies/<int:reply_pk>/<str:action>/",
        views.reply_action,
        name="reply-action",
    ),
]
