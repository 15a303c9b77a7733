"""``/api/v1/service-types/``, ``/api/v1/cases/`` and ``/api/v1/threads/<id>/escalate/``; included
by ``engagement.urls``."""

from django.urls import path

from . import api

CASE = "cases/<str:tracking_number>/"

urlpatterns = [
    path("service-types/", api.ServiceTypeListView.as_view(), name="api-service-types"),
    path("service-types/<str:code>/", api.ServiceTypeDetailView.as_view(), name="api-service-type"),
    path("cases/", api.CaseListView.as_view(), name="api-cases"),
    path("cases/nearby/", api.NearbyCasesView.as_view(), name="api-cases-nearby"),
    path(CASE, api.CaseDetailView.as_view(), name="api-case"),
    path(f"{CASE}support/", api.SupportView.as_view(), name="api-case-support"),
    path(f"{CASE}survey/", api.SurveyView.as_view(), name="api-case-survey"),
    path(f"{CASE}reopen/", api.ReopenView.as_view(), name="api-case-reopen"),
    path(f"{CASE}status/", api.StatusView.as_view(), name="api-case-status"),
    path(f"{CASE}notes/", api.NoteView.as_view(), name="api-case-notes"),
    path(f"{CASE}assign/", api.AssignView.as_view(), name="api-case-assign"),
    path("threads/<int:pk>/escalate/", api.EscalateView.as_view(), name="api-thread-escalate"),
]
