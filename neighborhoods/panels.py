"""Panels that apps above this one add to every page about a neighborhood.

The neighborhood page (and the editors' ``NeighborhoodPage``) cannot import the apps built on top
of this one; instead those apps register a panel in their ``AppConfig.ready``::

    register_panel("alerts", render_alerts_panel, order=10)

``render(request, neighborhood)`` returns HTML (already escaped/safe) or ``""``. Each panel must
run a fixed number of queries, whatever the amount of data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.utils.safestring import SafeString, mark_safe

from .models import Neighborhood

Renderer = Callable[[object, Neighborhood], str]


@dataclass(frozen=True)
class Panel:
    name: str
    render: Renderer
    order: int


_panels: dict[str, Panel] = {}


def register_panel(name: str, render: Renderer, *, order: int = 100) -> None:
    """Add (or replace) the panel ``name``; lower ``order`` comes first."""
    _panels[name] = Panel(name, render, order)


def render_panels(request, neighborhood: Neighborhood) -> list[SafeString]:
    """Every registered panel's HTML for this neighborhood, in order, skipping empty ones."""
    html = []
    for panel in sorted(_panels.values(), key=lambda p: (p.order, p.name)):
        rendered = panel.render(request, neighborhood)
        if rendered:
            html.append(mark_safe(rendered))  # noqa: S308 - panels render through templates
    return html
