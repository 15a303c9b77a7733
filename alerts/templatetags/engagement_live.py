"""Template tags of the live layer: ``{% load engagement_live %}``."""

from __future__ import annotations

from django import template

from ..notify import unread_count

register = template.Library()


@register.inclusion_tag("alerts/notifications/badge.html", takes_context=True)
def unread_badge(context) -> dict:
    """A link to the inbox with the unread count (one query; nothing for anonymous visitors).

    The count element carries ``data-unread-badge`` so the live script can update it; it is
    hidden when there is nothing unread.
    """
    request = context.get("request")
    user = getattr(request, "user", None) or context.get("user")
    if user is None or not getattr(user, "is_authenticated", False):
        return {"show": False}
    return {"show": True, "count": unread_count(user)}
