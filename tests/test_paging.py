"""Feeds count only near the page asked for, and say "or more" past that."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from neighborhoods.models import Neighborhood
from neighborhoods.paging import windowed_page
from tests.factories import NeighborhoodFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def rows():
    NeighborhoodFactory.create_batch(30)
    return Neighborhood.objects.order_by("pk")


def test_a_short_list_is_counted_exactly(rows):
    page = windowed_page(rows, 10, "2", ahead=3)
    assert page.paginator.count == 30 and page.paginator.num_pages == 3
    assert not page.paginator.more and page.number == 2


def test_a_long_list_is_counted_only_a_few_pages_ahead(rows):
    page = windowed_page(rows, 5, "1", ahead=2)
    assert page.paginator.count == 15 and page.paginator.num_pages == 3
    assert page.paginator.more and page.has_next()
    deeper = windowed_page(rows, 5, "4", ahead=2)
    assert deeper.number == 4 and [n.pk for n in deeper.object_list] == [n.pk for n in rows[15:20]]
    assert deeper.paginator.num_pages == 6 and not deeper.paginator.more


def test_the_count_reads_a_bounded_subquery(rows):
    with CaptureQueriesContext(connection) as queries:
        list(windowed_page(rows, 5, "1", ahead=2).object_list)
    count_sql = queries.captured_queries[0]["sql"].upper()
    assert "COUNT" in count_sql and "LIMIT 16" in count_sql


@pytest.mark.parametrize("asked", ["0", "-3", "x", None, "999"])
def test_odd_page_numbers_land_on_a_real_page(rows, asked):
    page = windowed_page(rows, 10, asked, ahead=2)
    assert page.number in (1, 3)
