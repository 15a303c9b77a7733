"""Template tags of the alerts app: the live layer's page attributes and alert labels."""

from __future__ import annotations

from django import template

from ..live import latest_event_id
from ..models import Severity

register = template.Library()


@register.simple_tag
def live_cursor() -> int:
    """The newest event id when the page was rendered: the page's socket resumes from it."""
    return latest_event_id()


@register.filter
def severity_name(value: int) -> str:
    try:
        return Severity(int(value)).slug
    except (TypeError, ValueError):
        return ""


@register.filter
def severity_label(value: int) -> str:
    try:
        return Severity(int(value)).label
    except (TypeError, ValueError):
        return ""
