"""``/api/v1/threads/``; included by ``engagement.urls``."""

urlpatterns: list = []
