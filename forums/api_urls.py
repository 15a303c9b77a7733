"""``/api/v1/threads/``, ``/api/v1/replies/`` and ``/api/v1/forum-categories/``; included by
``engagement.urls``."""

from django.urls import path

from . import api

urlpatterns = [
    path("threads/", api.ThreadListView.as_view(), name="api-threads"),
    path("threads/similar/", api.SimilarThreadsView.as_view(), name="api-threads-similar"),
    path("threads/<int:pk>/", api.ThreadDetailView.as_view(), name="api-thread"),
    path("threads/<int:pk>/replies/", api.ReplyListView.as_view(), name="api-thread-replies"),
    path("threads/<int:pk>/vote/", api.ThreadVoteView.as_view(), name="api-thread-vote"),
    path("threads/<int:pk>/flag/", api.ThreadFlagView.as_view(), name="api-thread-flag"),
    path("threads/<int:pk>/appeal/", api.ThreadAppealView.as_view(), name="api-thread-appeal"),
    path("threads/<int:pk>/follow/", api.FollowView.as_view(), name="api-thread-follow"),
    path("threads/<int:pk>/answer/", api.AnswerView.as_view(), name="api-thread-answer"),
    path(
        "threads/<int:pk>/photo-location/",
        api.PhotoLocationView.as_view(),
        name="api-thread-photo-location",
    ),
    path("replies/<int:pk>/", api.ReplyDetailView.as_view(), name="api-reply"),
    path("replies/<int:pk>/vote/", api.ReplyVoteView.as_view(), name="api-reply-vote"),
    path("replies/<int:pk>/flag/", api.ReplyFlagView.as_view(), name="api-reply-flag"),
    path("replies/<int:pk>/appeal/", api.ReplyAppealView.as_view(), name="api-reply-appeal"),
    path("forum-categories/", api.CategoryListView.as_view(), name="api-forum-categories"),
]
