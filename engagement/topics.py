"""The live topic ``case:<tracking number>``: status changes and public notes of one case."""

from __future__ import annotations

from alerts.live import TopicError, register_topic

from .services import find_case


def authorize_case(user, key: str) -> None:
    if find_case(key) is None:
        raise TopicError("not_found", f"No case “{key}”.")


def register() -> None:
    register_topic("case", authorize_case)
