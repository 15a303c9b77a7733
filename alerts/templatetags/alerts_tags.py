"""Template tags of the alerts app: the live layer's page attributes and alert labels."""

from __future__ import annotations

from django import template

from ..live import latest_event_id
from ..models import Severity

register = template.Library()


@register.simple_tag(takes_context=True)
def live_cursor(context) -> int:
    """Where the page's socket resumes: the event id its view marked before reading its data
    (``alerts.live.mark_cursor``), else the newest event id now."""
    request = context.get("request")
    cursor = getattr(request, "live_cursor", None)
    return latest_event_id() if cursor is None else cursor


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
