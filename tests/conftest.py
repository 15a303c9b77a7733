"""Shared fixtures: the real Philadelphia boundaries, API clients, a clean cache per test."""

from __future__ import annotations

import copy
import json
import types
import uuid
from pathlib import Path

import pytest
from django.db import transaction
from rest_framework.test import APIClient

from neighborhoods import ratelimit
from neighborhoods.geometry import prepared_geometries
from neighborhoods.importer import import_neighborhoods
from neighborhoods.models import Neighborhood

PHILLY_FILE = (
    Path(__file__).resolve().parent.parent
    / "neighborhoods"
    / "data"
    / "philadelphia-neighborhoods.geojson"
)
PHILLY_NAME_PROPERTY = "LISTNAME"
PHILLY_COUNT = 159


@pytest.fixture(autouse=True)
def _isolated_caches(settings):
    """Each test gets its own cache key prefix and an empty prepared-geometry cache.

    Rate-limit counters live in the cache; a fresh prefix isolates them without flushing a
    shared Redis (CI runs the suite against one) and still exercises the configured backend.
    """
    caches = copy.deepcopy(settings.CACHES)
    caches["default"]["KEY_PREFIX"] = f"test-{uuid.uuid4().hex}"
    settings.CACHES = caches
    prepared_geometries.clear()
    yield
    prepared_geometries.clear()


@pytest.fixture
def media_root(settings, tmp_path):
    """Uploads go to a directory of the test's own."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def frozen_rate_window(monkeypatch):
    """Pin the rate limiter's clock so a test never straddles two fixed windows."""
    monkeypatch.setattr(ratelimit, "time", types.SimpleNamespace(time=lambda: 1_800_000_030.0))


@pytest.fixture(scope="session")
def philly_features() -> dict:
    """The real FeatureCollection, read from disk once per session (callers get a deep copy)."""
    return json.loads(PHILLY_FILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def philly_rows(django_db_setup, django_db_blocker, philly_features) -> list[dict]:
    """The rows the importer writes for the real file: imported once per session, rolled back."""
    with django_db_blocker.unblock(), transaction.atomic():
        import_neighborhoods(copy.deepcopy(philly_features), name_property=PHILLY_NAME_PROPERTY)
        rows = list(
            Neighborhood.objects.order_by("pk").values(
                "name",
                "slug",
                "description",
                "boundary",
                "min_lon",
                "min_lat",
                "max_lon",
                "max_lat",
                "required_level",
                "source_properties",
            )
        )
        transaction.set_rollback(True)
    assert len(rows) == PHILLY_COUNT
    return rows


@pytest.fixture
def philly(db, philly_rows) -> dict[str, Neighborhood]:
    """The 159 real neighborhoods, by name, in this test's transaction only.

    The importer runs once per session; each test that asks for the data gets the same rows
    inserted in the same (file) order, so ids keep the importer's order and nothing leaks into
    tests that do not ask for it.
    """
    Neighborhood.objects.bulk_create(Neighborhood(**row) for row in philly_rows)
    return {n.name: n for n in Neighborhood.objects.order_by("pk")}


@pytest.fixture
def api() -> APIClient:
    """An anonymous API client."""
    return APIClient()


@pytest.fixture
def api_as():
    """``api_as(user)``: a client signed in with a session, as a browser would be."""

    def make(user) -> APIClient:
        client = APIClient()
        client.force_login(user)
        return client

    return make


@pytest.fixture
def token_client():
    """``token_client(user, scheme="Token")``: a client that sends a freshly issued API token."""
    from neighborhoods.services import issue_api_token

    def make(user, scheme: str = "Token") -> APIClient:
        _, key = issue_api_token(user=user)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"{scheme} {key}")
        return client

    return make
