"""WebSocket routes of the live layer."""

websocket_urlpatterns: list = []
