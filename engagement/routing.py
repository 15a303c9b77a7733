"""The plugin's WebSocket routes, for the host's ASGI application (see README, "Install")."""

from alerts.routing import websocket_urlpatterns as alerts_patterns

websocket_urlpatterns = [*alerts_patterns]
