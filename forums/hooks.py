"""Extension points for apps above the forums (311 cases), which the forums must not import.

- :func:`on_support_changed`: called (inside the transaction) whenever a thread's supporters
  change: a vote, a withdrawal, a merge.
- :func:`register_thread_panel`: HTML shown on a thread page below the thread (a case badge and
  timeline, an escalation button).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.utils.safestring import SafeString

SupportListener = Callable[[object], None]
PanelRenderer = Callable[[object, object], SafeString | str]

_support_listeners: list[SupportListener] = []


@dataclass(frozen=True)
class ThreadPanel:
    name: str
    render: PanelRenderer
    order: int


_panels: dict[str, ThreadPanel] = {}


def on_support_changed(listener: SupportListener) -> SupportListener:
    """Register ``listener(thread)``; registering the same function twice has no effect."""
    if listener not in _support_listeners:
        _support_listeners.append(listener)
    return listener


def support_changed(thread) -> None:
    for listener in list(_support_listeners):
        listener(thread)


def register_thread_panel(name: str, render: PanelRenderer, *, order: int = 100) -> None:
    """``render(request, thread)`` returns HTML (or ``""``) for the thread page."""
    _panels[name] = ThreadPanel(name, render, order)


def render_thread_panels(request, thread) -> list[SafeString]:
    out = []
    for panel in sorted(_panels.values(), key=lambda p: (p.order, p.name)):
        html = panel.render(request, thread)
        if html:
            out.append(SafeString(html))
    return out
