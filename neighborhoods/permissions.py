"""Who may do what. Services call these before changing anything; views call them to show controls.

Each rule is a named predicate in :data:`RULES`; :func:`can` is the one entry point, so a role
matrix test can go through every rule for every role.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from allauth.account.models import EmailAddress
from django.core.exceptions import PermissionDenied

from .models import (
    CityStaff,
    Membership,
    Neighborhood,
    Organization,
    OrganizationMembership,
    VerificationLevel,
)


def is_authenticated(user) -> bool:
    return bool(user and user.is_authenticated and user.is_active)


def has_verified_email(user) -> bool:
    if not is_authenticated(user):
        return False
    cached = getattr(user, "_engagement_email_verified", None)
    if cached is None:
        cached = EmailAddress.objects.filter(user=user, verified=True).exists()
        user._engagement_email_verified = cached
    return cached


def staff_record(user) -> CityStaff | None:
    if not is_authenticated(user):
        return None
    try:
        return user.city_staff
    except CityStaff.DoesNotExist:
        return None


def is_city_staff(user) -> bool:
    return staff_record(user) is not None or bool(is_authenticated(user) and user.is_superuser)


def is_supervisor(user) -> bool:
    record = staff_record(user)
    return bool(record and record.is_supervisor) or bool(
        is_authenticated(user) and user.is_superuser
    )


def membership_of(user, neighborhood: Neighborhood) -> Membership | None:
    if not is_authenticated(user):
        return None
    return Membership.objects.filter(user=user, neighborhood=neighborhood).first()


def neighborhood_role(user, neighborhood: Neighborhood) -> str | None:
    membership = membership_of(user, neighborhood)
    return membership.role if membership else None


def residency_level(user, neighborhood: Neighborhood) -> VerificationLevel:
    """How far ``user`` has proved residency in ``neighborhood``; the one gate for later features."""
    if not is_authenticated(user):
        return VerificationLevel.ANONYMOUS
    if not has_verified_email(user):
        return VerificationLevel.REGISTERED
    membership = membership_of(user, neighborhood)
    if membership and membership.is_verified:
        return VerificationLevel.VERIFIED
    profile = getattr(user, "engagement_profile", None)
    if profile is not None and profile.home_neighborhood_id == neighborhood.pk:
        return VerificationLevel.HOME_CLAIMED
    return VerificationLevel.EMAIL_VERIFIED


def require_level(user, neighborhood: Neighborhood, level: int) -> None:
    """Raise ``PermissionDenied`` with what is missing unless ``user`` has reached ``level``."""
    current = residency_level(user, neighborhood)
    if current < level:
        needed = VerificationLevel(level).label.lower()
        raise PermissionDenied(
            f"This needs the level “{needed}” in {neighborhood.name}; "
            f"you are at “{current.label.lower()}”."
        )


def org_role(user, organization: Organization) -> str | None:
    if not is_authenticated(user):
        return None
    row = (
        OrganizationMembership.objects.filter(user=user, organization=organization)
        .values_list("role", flat=True)
        .first()
    )
    return row


def _join_neighborhood(user, neighborhood: Neighborhood) -> bool:
    return has_verified_email(user)


def _verify_resident(user, neighborhood: Neighborhood) -> bool:
    return is_city_staff(user) or neighborhood_role(user, neighborhood) == Membership.Role.ORGANIZER


def _moderate(user, neighborhood: Neighborhood) -> bool:
    return is_city_staff(user) or neighborhood_role(user, neighborhood) in (
        Membership.Role.ORGANIZER,
        Membership.Role.MODERATOR,
    )


def _participate(user, neighborhood: Neighborhood) -> bool:
    return (
        membership_of(user, neighborhood) is not None
        and residency_level(user, neighborhood) >= neighborhood.required_level
    )


def _manage_organization(user, organization: Organization) -> bool:
    return is_city_staff(user) or org_role(user, organization) == OrganizationMembership.Role.ADMIN


def _create_organization(user, _obj: Any = None) -> bool:
    return has_verified_email(user)


def _request_to_join_organization(user, organization: Organization) -> bool:
    return has_verified_email(user) and org_role(user, organization) is None


def _staff_only(user, _obj: Any = None) -> bool:
    return is_city_staff(user)


def _edit_pages(user, _obj: Any = None) -> bool:
    return bool(is_authenticated(user) and user.has_perm("wagtailadmin.access_admin"))


RULES: dict[str, Callable[[Any, Any], bool]] = {
    "join_neighborhood": _join_neighborhood,
    "participate": _participate,
    "verify_resident": _verify_resident,
    "moderate": _moderate,
    "issue_residency_code": _staff_only,
    "assign_neighborhood_role": _staff_only,
    "create_organization": _create_organization,
    "request_to_join_organization": _request_to_join_organization,
    "manage_organization": _manage_organization,
    "verify_organization": _staff_only,
    "post_official_notice": _staff_only,
    "edit_pages": _edit_pages,
}


def can(user, action: str, obj: Any = None) -> bool:
    """Whether ``user`` may perform ``action`` (a key of :data:`RULES`) on ``obj``."""
    return RULES[action](user, obj)


def ensure(user, action: str, obj: Any = None, message: str | None = None) -> None:
    """Raise ``PermissionDenied`` unless ``can(user, action, obj)``."""
    if not can(user, action, obj):
        raise PermissionDenied(message or "You are not allowed to do this.")
