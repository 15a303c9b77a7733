"""The alert categories a new site starts with (installed by a data migration)."""

from __future__ import annotations

from importlib import import_module

CATEGORIES = import_module("alerts.migrations.0002_default_categories").CATEGORIES


def ensure_default_categories() -> int:
    """Create any default category that is missing (the migration's list); return how many."""
    from .models import AlertCategory

    created = 0
    for order, (slug, name, description, hours, radius, residents) in enumerate(CATEGORIES):
        _, made = AlertCategory.objects.get_or_create(
            slug=slug,
            defaults={
                "name": name,
                "description": description,
                "default_lifetime_hours": hours,
                "default_radius_m": radius,
                "residents_may_report": residents,
                "sort_order": (order + 1) * 10,
            },
        )
        created += made
    return created
