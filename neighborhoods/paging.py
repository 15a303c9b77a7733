"""Pagination that never counts every row: deep feeds stay as fast as their first page."""

from __future__ import annotations

from django.core.paginator import Page, Paginator
from django.utils.functional import cached_property


class WindowedPaginator(Paginator):
    """Counts rows only up to ``ahead`` pages past the page asked for.

    ``count`` is exact when the list ends within that window; otherwise ``more`` is true and
    ``num_pages`` is the last page counted (templates say "of N or more").
    """

    def __init__(self, object_list, per_page: int, *, page: int = 1, ahead: int = 10, **kwargs):
        super().__init__(object_list, per_page, **kwargs)
        self.limit = (max(1, page) + ahead) * int(per_page)
        self.more = False

    @cached_property
    def count(self) -> int:
        counted = self.object_list[: self.limit + 1].count()
        self.more = counted > self.limit
        return min(counted, self.limit)


def page_number(value) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return 1
    return number if number > 0 else 1


def windowed_page(object_list, per_page: int, page, *, ahead: int = 10) -> Page:
    """The page asked for (the last one when it is past the end), counting only near it."""
    number = page_number(page)
    paginator = WindowedPaginator(object_list, per_page, page=number, ahead=ahead)
    return paginator.get_page(number)
