"""Live topics of 311 requests: ``case:<tracking number>``, the status changes and public notes of
one case; ``cases``, the same events of every case in the city (what the public tracker shows)."""

from __future__ import annotations

from alerts.live import TopicError, register_topic

from .services import find_case


def authorize_case(user, key: str) -> None:
    if find_case(key) is None:
        raise TopicError("not_found", f"No case “{key}”.")


def authorize_cases(user, key: str) -> None:
    """Anyone may follow every case: the events carry public data only."""


def register() -> None:
    register_topic("case", authorize_case)
    register_topic("cases", authorize_cases, needs_key=False)
