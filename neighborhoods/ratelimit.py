"""Cache-backed rate limits (shared between processes when the cache is Redis)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.core.cache import cache


@dataclass(eq=False)
class RateLimited(Exception):
    """Raised when an action is over its limit; ``retry_after`` is in seconds.

    Not frozen: Python sets ``__traceback__`` on exceptions as they pass through context
    managers, which a frozen dataclass refuses.
    """

    action: str
    retry_after: int

    def __str__(self) -> str:
        minutes, seconds = divmod(self.retry_after, 60)
        wait = f"{minutes} min {seconds} s" if minutes else f"{seconds} s"
        return f"Too many attempts. Try again in {wait}."


def check_rate(action: str, key: str, *, limit: int, period: int) -> None:
    """Count one attempt of ``action`` by ``key`` in a fixed window; raise :class:`RateLimited`."""
    window = int(time.time()) // period
    cache_key = f"engagement:rl:{action}:{key}:{window}"
    cache.add(cache_key, 0, timeout=period + 1)
    try:
        count = cache.incr(cache_key)
    except ValueError:  # evicted between add and incr
        cache.set(cache_key, 1, timeout=period + 1)
        count = 1
    if count > limit:
        retry_after = period - int(time.time()) % period
        raise RateLimited(action=action, retry_after=max(retry_after, 1))


def client_ip(request) -> str:
    return request.META.get("REMOTE_ADDR", "") or "unknown"
