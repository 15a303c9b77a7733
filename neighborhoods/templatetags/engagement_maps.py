"""Maps on django-leaflet's bundled Leaflet, with the plugin's tile setting and attribution."""

from django import template
from leaflet.templatetags import leaflet_tags

from neighborhoods.conf import app_settings

register = template.Library()


def _tiles() -> list:
    url = app_settings.MAP_TILE_URL
    if not url:
        return []
    return [("Map", url, {"attribution": app_settings.MAP_TILE_ATTRIBUTION})]


@register.inclusion_tag("leaflet/_leaflet_map.html")
def engagement_map(name: str, callback: str) -> dict:
    """A map container named ``name``; ``callback(map, options)`` draws on it."""
    return leaflet_tags.leaflet_map(
        name, callback=callback, settings_overrides={"TILES": _tiles(), "RESET_VIEW": False}
    )


@register.simple_tag
def boundary_attribution() -> str:
    return app_settings.BOUNDARY_ATTRIBUTION
