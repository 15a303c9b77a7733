"""Form widgets: a GeoJSON boundary textarea with a live map preview (no GDAL needed)."""

from __future__ import annotations

from django import forms

from .conf import app_settings


class BoundaryWidget(forms.Textarea):
    """The boundary as editable GeoJSON text, drawn on a Leaflet map as it is typed or pasted."""

    template_name = "neighborhoods/widgets/boundary.html"

    def __init__(self, attrs: dict | None = None) -> None:
        super().__init__(attrs={"rows": 6, "spellcheck": "false", **(attrs or {})})

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        context["widget"]["attribution"] = app_settings.BOUNDARY_ATTRIBUTION
        context["widget"]["tile_url"] = app_settings.MAP_TILE_URL
        context["widget"]["tile_attribution"] = app_settings.MAP_TILE_ATTRIBUTION
        return context

    class Media:
        css = {"all": ["leaflet/leaflet.css", "neighborhoods/admin-boundary.css"]}
        js = ["leaflet/leaflet.js", "neighborhoods/admin-boundary.js"]
