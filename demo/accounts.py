"""The demo's log-ins, one per role, shared by ``seed_demo`` and ``serve_demo``."""

from __future__ import annotations

import os

DEFAULT_PASSWORD = "neighbors-demo-2026"

# (e-mail, what the account can show)
ACCOUNTS: list[tuple[str, str]] = [
    ("resident@demo.example", "verified resident of Old City"),
    ("organizer@demo.example", "organizer of Old City, admin of the Old City civic association"),
    ("moderator@demo.example", "moderator of Old City (moderation queue: /admin/moderation/)"),
    (
        "orgmember@demo.example",
        "member and neighborhood liaison of the Old City civic association",
    ),
    ("staff@demo.example", "city staff, Streets Department"),
    ("supervisor@demo.example", "311 supervisor: every department's cases and metrics"),
    ("editor@demo.example", "editor in the Wagtail admin (/admin/)"),
]


def demo_password() -> str:
    return os.environ.get("DEMO_PASSWORD") or DEFAULT_PASSWORD


def login_lines() -> list[str]:
    password = demo_password()
    shown = password if os.environ.get("DEMO_PASSWORD") is None else "(from DEMO_PASSWORD)"
    width = max(len(email) for email, _ in ACCOUNTS)
    lines = [f"Demo log-ins (password: {shown}):"]
    lines += [f"  {email:<{width}}  {role}" for email, role in ACCOUNTS]
    return lines
