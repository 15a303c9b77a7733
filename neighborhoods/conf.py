"""The plugin's settings: one ``ENGAGEMENT`` dict in the host's settings, defaults in code.

Each app declares its defaults with an :class:`AppSettings` instance; values are read lazily on
every access, so ``override_settings(ENGAGEMENT={...})`` works in tests.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings


class AppSettings:
    """Read-only view of ``settings.ENGAGEMENT`` with the given defaults."""

    def __init__(self, defaults: dict[str, Any]) -> None:
        self._defaults = defaults

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name not in self._defaults:
            raise AttributeError(f"Unknown ENGAGEMENT setting: {name}")
        return getattr(settings, "ENGAGEMENT", {}).get(name, self._defaults[name])

    def defaults(self) -> dict[str, Any]:
        return dict(self._defaults)


app_settings = AppSettings(
    {
        # Map background tiles; empty means no tiles (no outside requests).
        "MAP_TILE_URL": "",
        "MAP_TILE_ATTRIBUTION": "",
        # Shown on every map that draws the neighborhood boundaries.
        "BOUNDARY_ATTRIBUTION": "Neighborhood boundaries © Abaca Labs, CC BY 4.0",
        # Days a staff-issued residency code stays valid, and wrong guesses allowed per hour.
        "RESIDENCY_CODE_DAYS": 30,
        "RESIDENCY_CODE_ATTEMPTS_PER_HOUR": 5,
        # API tokens issued per user by POST /api/v1/auth/token/ and failed attempts per minute.
        "API_TOKENS_PER_USER": 10,
        "API_LOGIN_ATTEMPTS_PER_MINUTE": 10,
        # Organization join requests per user per day.
        "JOIN_REQUESTS_PER_DAY": 20,
        # Page size of neighborhood and organization lists.
        "PAGE_SIZE": 50,
        # Files kept from a form that came back with an error: for how long, how many per person
        # at most (the oldest go first) and the largest one kept.
        "HELD_UPLOAD_HOURS": 24,
        "HELD_UPLOADS_PER_PERSON": 12,
        "HELD_UPLOAD_MAX_BYTES": 10 * 1024 * 1024,
    }
)
