"""Build the host's ASGI application: Django for HTTP, the plugin's live layer for WebSockets."""

from __future__ import annotations

import gc

from channels.auth import AuthMiddlewareStack
from channels.routing import ProtocolTypeRouter, URLRouter
from channels.security.websocket import OriginValidator
from django.conf import settings


class BrowserOriginValidator(OriginValidator):
    """Refuse sockets opened by pages of other sites; allow clients that send no ``Origin``.

    Browsers always send ``Origin`` on a WebSocket handshake, so a cross-site page cannot ride
    on a resident's session cookie. Programs (third-party clients using an API token) send none.
    """

    def valid_origin(self, parsed_origin) -> bool:
        if parsed_origin is None:
            return True
        return self.validate_origin(parsed_origin)


def allowed_origins() -> list[str]:
    """``ALLOWED_HOSTS`` (with Django's ``DEBUG`` localhost default) and ``CSRF_TRUSTED_ORIGINS``."""
    hosts = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not hosts:
        hosts = [".localhost", "127.0.0.1", "[::1]"]
    return hosts + list(getattr(settings, "CSRF_TRUSTED_ORIGINS", []))


def build_application(
    http_application,
    *,
    extra_websocket_urlpatterns: list | None = None,
    tune_gc: bool = True,
) -> ProtocolTypeRouter:
    """``ProtocolTypeRouter`` with origin-checked, session-authenticated WebSocket routes.

    Call it at the end of the host's ``asgi.py``, after ``django.setup()`` has run (that is, after
    ``get_asgi_application()``). ``tune_gc=False`` leaves the garbage collector alone (for tests
    and other processes that build the application but are not servers).
    """
    from .routing import websocket_urlpatterns

    routes = [*websocket_urlpatterns, *(extra_websocket_urlpatterns or [])]
    application = ProtocolTypeRouter(
        {
            "http": http_application,
            "websocket": BrowserOriginValidator(
                AuthMiddlewareStack(URLRouter(routes)), allowed_origins()
            ),
        }
    )
    if tune_gc:
        # Long-lived objects created at start-up are never collected; raising the thresholds
        # keeps the collector out of broadcast fan-out (measured: halves the time to the last
        # client).
        gc.collect()
        gc.freeze()
        gc.set_threshold(50_000, 20, 20)
    return application
