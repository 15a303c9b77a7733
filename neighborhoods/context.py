"""What every page about one neighborhood shows: the visitor's standing there and who serves it.

Shared by the neighborhood page and the editors' ``NeighborhoodPage`` so both say the same thing.
"""

from __future__ import annotations

from .models import Neighborhood
from .permissions import can, membership_of, residency_level


def neighborhood_context(user, neighborhood: Neighborhood) -> dict:
    return {
        "neighborhood": neighborhood,
        "organizations": neighborhood.organizations.order_by("-verified", "name"),
        "membership": membership_of(user, neighborhood),
        "level": residency_level(user, neighborhood),
        "can_join": can(user, "join_neighborhood", neighborhood),
        "can_verify": can(user, "verify_resident", neighborhood),
        "can_issue_codes": can(user, "issue_residency_code", neighborhood),
    }
