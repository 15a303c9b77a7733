"""Small template helpers for the site's layout."""

from django import template
from django.conf import settings

register = template.Library()


@register.simple_tag
def site_name() -> str:
    """The site's name: Wagtail's ``WAGTAIL_SITE_NAME`` setting."""
    return getattr(settings, "WAGTAIL_SITE_NAME", "") or "Neighborhoods"
