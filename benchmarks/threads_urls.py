"""URLs for ``benchmarks/threads.py``: the site's own, plus the bare baseline view."""

from __future__ import annotations

from django.http import HttpResponse
from django.template import engines
from django.urls import include, path

from neighborhoods.models import Neighborhood

ROWS: list[dict] = []
_compiled = []


def bare(request) -> HttpResponse:
    """The page of rows from a prepared list: no data access beyond what base.html needs."""
    from benchmarks.threads import BARE_TEMPLATE

    if not _compiled:
        _compiled.append(engines["django"].from_string(BARE_TEMPLATE))
    template = _compiled[0]
    neighborhood = Neighborhood(name="Old City", slug="old-city")
    return HttpResponse(template.render({"rows": ROWS, "neighborhood": neighborhood}, request))


urlpatterns = [
    path("bench/bare/", bare),
    path("", include("demo.urls")),
]
