"""Template tags of the 311 pages: ``{% load cases_tags %}``."""

from __future__ import annotations

from django import template

from forums.templatetags.forums_tags import distance
from neighborhoods.permissions import is_city_staff

from ..models import Case

register = template.Library()
register.filter("distance", distance)

STATUS_LABELS = dict(Case.Status.choices)
CHANNEL_PHRASES = {
    Case.Channel.WEB: "reported on the web",
    Case.Channel.API: "reported in an app",
    Case.Channel.PHONE: "taken by phone",
    Case.Channel.LIAISON: "filed by a neighborhood liaison",
    Case.Channel.OPEN311: "reported through an Open311 app",
}


@register.filter
def status_label(value: str) -> str:
    """``in_progress`` → ``In progress``."""
    return STATUS_LABELS.get(value, value)


@register.filter
def by_staff(note) -> bool:
    """Whether a timeline entry was written by city staff (shown as "City", never by name)."""
    return bool(note.author_id and is_city_staff(note.author))


@register.simple_tag
def status_labels() -> dict[str, str]:
    """The labels of every status, for scripts that update a page live."""
    return STATUS_LABELS


@register.filter
def channel_phrase(channel: str) -> str:
    """How the request reached the city, in words (never who filed it)."""
    return CHANNEL_PHRASES.get(channel, channel)
