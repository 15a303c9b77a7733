"""URLs for ``benchmarks/open311.py``: the site's own, plus the bare baseline view."""

from __future__ import annotations

import json

from django.http import HttpResponse
from django.urls import include, path

ROWS: list[dict] = []


def bare(request) -> HttpResponse:
    """The same page of records, dumped as JSON from a prepared list: no data access at all."""
    body = json.dumps(ROWS, ensure_ascii=False, separators=(",", ":")).encode()
    return HttpResponse(body, content_type="application/json; charset=utf-8")


urlpatterns = [
    path("bench/bare.json", bare),
    path("", include("demo.urls")),
]
