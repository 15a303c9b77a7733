"""The live topic ``thread:<id>``: new replies, votes and changes of one thread."""

from __future__ import annotations

from alerts.live import TopicError, register_topic

from .models import Thread
from .services import can_read_thread


def authorize_thread(user, key: str) -> None:
    is_id = key.isdigit() and len(key) <= 18
    thread = (
        Thread.objects.select_related("neighborhood").filter(pk=int(key)).first() if is_id else None
    )
    if thread is None or not can_read_thread(user, thread):
        raise TopicError("not_found", f"No thread “{key}”.")


def register() -> None:
    register_topic("thread", authorize_thread)
