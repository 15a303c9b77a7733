"""The forum categories a new site starts with (installed by a data migration)."""

from __future__ import annotations

from importlib import import_module

CATEGORIES = import_module("forums.migrations.0002_default_categories").CATEGORIES


def ensure_default_categories() -> int:
    """Create any default category that is missing; return how many were created."""
    from .models import ForumCategory

    created = 0
    for order, (slug, name, description) in enumerate(CATEGORIES):
        _, made = ForumCategory.objects.get_or_create(
            slug=slug,
            defaults={"name": name, "description": description, "sort_order": (order + 1) * 10},
        )
        created += made
    return created
