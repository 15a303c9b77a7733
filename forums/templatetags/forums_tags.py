"""Template tags of the discussion pages: ``{% load forums_tags %}``."""

from __future__ import annotations

from django import template

from ..services import author_name as _author_name

register = template.Library()


@register.filter
def author_name(user) -> str:
    """The name a member shows to neighbours (never their account details)."""
    return _author_name(user)


@register.filter
def sentence(text) -> str:
    """The text with a full stop at the end, unless it ends in punctuation already."""
    text = str(text or "").strip()
    return text if not text or text[-1] in ".!?…" else f"{text}."


@register.filter
def distance(metres) -> str:
    """``240 m`` or ``1.3 km``."""
    if metres is None:
        return ""
    metres = float(metres)
    return f"{metres / 1000:.1f} km" if metres >= 1000 else f"{round(metres)} m"
