"""Who may follow which live topic. Registered when the app is ready; forums and cases add theirs."""

from __future__ import annotations

from neighborhoods.models import Neighborhood
from neighborhoods.permissions import is_authenticated

from .live import TopicError, register_topic
from .models import Alert
from .services import visible_to


def authorize_user(user, key: str) -> None:
    if not is_authenticated(user):
        raise TopicError("auth_required", "Sign in (or send an auth message) to follow “user”.")


def authorize_neighborhood(user, key: str) -> None:
    if not Neighborhood.objects.filter(slug=key).exists():
        raise TopicError("not_found", f"No neighborhood “{key}”.")


def authorize_alert(user, key: str) -> None:
    is_id = key.isdigit() and len(key) <= 18  # a bigint; longer keys name no alert
    alert = Alert.objects.filter(pk=int(key)).first() if is_id else None
    if alert is None or not visible_to(user, alert):
        raise TopicError("not_found", f"No alert “{key}”.")


def register() -> None:
    register_topic("user", authorize_user, needs_key=False)
    register_topic("neighborhood", authorize_neighborhood)
    register_topic("alert", authorize_alert)
