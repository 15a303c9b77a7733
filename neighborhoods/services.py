"""Business rules for places and people. Views, API views and admin views call these."""

from __future__ import annotations

import secrets
from datetime import timedelta

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from .conf import app_settings
from .locate import locate
from .models import (
    ApiToken,
    Membership,
    Neighborhood,
    Organization,
    OrganizationJoinRequest,
    OrganizationMembership,
    Profile,
    ResidencyCode,
    unique_slug,
)
from .permissions import ensure, has_verified_email, is_city_staff
from .ratelimit import check_rate

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O or 1/I: read off a postcard


def get_profile(user) -> Profile:
    profile, _ = Profile.objects.get_or_create(user=user)
    return profile


def update_profile(
    *, user, display_name: str, notification_preferences: dict | None = None
) -> Profile:
    profile = get_profile(user)
    profile.display_name = display_name.strip()
    if notification_preferences is not None:
        profile.notification_preferences = notification_preferences
    profile.save(update_fields=["display_name", "notification_preferences"])
    return profile


def set_home_location(*, user, lat: float, lon: float) -> Neighborhood | None:
    """Store the (private) home location; return the neighborhood it falls in, if any."""
    neighborhood = locate(lat, lon)
    profile = get_profile(user)
    profile.home_lat, profile.home_lon = lat, lon
    profile.home_neighborhood = neighborhood
    profile.home_set_at = timezone.now()
    profile.save(update_fields=["home_lat", "home_lon", "home_neighborhood", "home_set_at"])
    return neighborhood


def clear_home_location(*, user) -> None:
    Profile.objects.filter(user=user).update(
        home_lat=None, home_lon=None, home_neighborhood=None, home_set_at=None
    )


def join_neighborhood(*, user, neighborhood: Neighborhood) -> Membership:
    """Join (idempotent): a second join returns the existing membership."""
    ensure(user, "join_neighborhood", neighborhood, "Verify your e-mail address to join.")
    membership, _ = Membership.objects.get_or_create(user=user, neighborhood=neighborhood)
    return membership


def leave_neighborhood(*, user, neighborhood: Neighborhood) -> bool:
    """Leave (idempotent); returns whether a membership was removed."""
    deleted, _ = Membership.objects.filter(user=user, neighborhood=neighborhood).delete()
    return bool(deleted)


def _mark_verified(membership: Membership, *, by, method: str) -> Membership:
    membership.verified_at = timezone.now()
    membership.verified_by = by
    membership.verification_method = method
    membership.save(update_fields=["verified_at", "verified_by", "verification_method"])
    return membership


def verify_resident(*, actor, membership: Membership) -> Membership:
    """An organizer of the neighborhood, or city staff, confirms a member's claimed home."""
    neighborhood = membership.neighborhood
    ensure(
        actor, "verify_resident", neighborhood, "Only organizers and city staff verify residents."
    )
    if actor.pk == membership.user_id and not is_city_staff(actor):
        raise PermissionDenied("You cannot verify yourself.")
    profile = get_profile(membership.user)
    if profile.home_neighborhood_id != neighborhood.pk:
        raise ValidationError(f"This member has not claimed a home in {neighborhood.name}.")
    method = Membership.Method.STAFF if is_city_staff(actor) else Membership.Method.ORGANIZER
    return _mark_verified(membership, by=actor, method=method)


def revoke_verification(*, actor, membership: Membership) -> Membership:
    ensure(actor, "verify_resident", membership.neighborhood)
    membership.verified_at = None
    membership.verified_by = None
    membership.verification_method = ""
    membership.save(update_fields=["verified_at", "verified_by", "verification_method"])
    return membership


def set_neighborhood_role(*, actor, membership: Membership, role: str) -> Membership:
    ensure(actor, "assign_neighborhood_role", membership.neighborhood)
    if role not in Membership.Role.values:
        raise ValidationError(f"Unknown role {role!r}.")
    membership.role = role
    membership.save(update_fields=["role"])
    return membership


def issue_residency_code(*, actor, user, neighborhood: Neighborhood | None = None) -> str:
    """Staff issue a one-time code to be mailed to the person's claimed home; returns the code."""
    ensure(actor, "issue_residency_code", neighborhood, "Only city staff issue residency codes.")
    profile = get_profile(user)
    neighborhood = neighborhood or profile.home_neighborhood
    if neighborhood is None or profile.home_neighborhood_id != neighborhood.pk:
        raise ValidationError("The person has not claimed a home in this neighborhood.")
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(8))
    code = f"{raw[:4]}-{raw[4:]}"
    ResidencyCode.objects.create(
        neighborhood=neighborhood,
        user=user,
        code_hash=ResidencyCode.hash(code),
        issued_by=actor,
        expires_at=timezone.now() + timedelta(days=app_settings.RESIDENCY_CODE_DAYS),
    )
    return code


@transaction.atomic
def redeem_residency_code(*, user, code: str) -> Membership:
    """The person enters the mailed code: they join the neighborhood as a verified resident."""
    check_rate(
        "residency-code",
        str(user.pk),
        limit=app_settings.RESIDENCY_CODE_ATTEMPTS_PER_HOUR,
        period=3600,
    )
    now = timezone.now()
    entry = (
        ResidencyCode.objects.select_for_update()
        .select_related("neighborhood")
        .filter(user=user, code_hash=ResidencyCode.hash(code), used_at__isnull=True)
        .first()
    )
    if entry is None or entry.expires_at < now:
        raise ValidationError("This code is not valid. Check it, or ask for a new one.")
    profile = get_profile(user)
    if profile.home_neighborhood_id != entry.neighborhood_id:
        raise ValidationError(
            f"The code is for a home in {entry.neighborhood.name}; your home location has changed."
        )
    entry.used_at = now
    entry.save(update_fields=["used_at"])
    membership = join_neighborhood(user=user, neighborhood=entry.neighborhood)
    return _mark_verified(membership, by=entry.issued_by, method=Membership.Method.CODE)


def create_organization(
    *,
    actor,
    name: str,
    description: str = "",
    website: str = "",
    neighborhoods: list[Neighborhood] | tuple = (),
) -> Organization:
    """Anyone with a verified e-mail may start an organization (unverified until staff verify it)."""
    ensure(actor, "create_organization", None, "Verify your e-mail address first.")
    with transaction.atomic():
        organization = Organization.objects.create(
            name=name.strip(),
            slug=unique_slug(Organization, name),
            description=description,
            website=website,
        )
        organization.neighborhoods.set(neighborhoods)
        OrganizationMembership.objects.create(
            organization=organization, user=actor, role=OrganizationMembership.Role.ADMIN
        )
    return organization


def set_organization_verified(*, actor, organization: Organization, verified: bool) -> None:
    ensure(actor, "verify_organization", organization, "Only city staff verify organizations.")
    organization.verified = verified
    organization.verified_at = timezone.now() if verified else None
    organization.save(update_fields=["verified", "verified_at"])


def request_to_join_organization(
    *, user, organization: Organization, message: str = ""
) -> OrganizationJoinRequest:
    """Ask to join (idempotent while a request is pending)."""
    ensure(
        user,
        "request_to_join_organization",
        organization,
        "You are already a member, or your e-mail address is not verified.",
    )
    check_rate("org-join", str(user.pk), limit=app_settings.JOIN_REQUESTS_PER_DAY, period=86400)
    pending = OrganizationJoinRequest.Status.PENDING
    try:
        with transaction.atomic():
            request, _ = OrganizationJoinRequest.objects.get_or_create(
                organization=organization, user=user, status=pending, defaults={"message": message}
            )
    except IntegrityError:
        request = OrganizationJoinRequest.objects.get(
            organization=organization, user=user, status=pending
        )
    return request


@transaction.atomic
def decide_join_request(*, actor, join_request: OrganizationJoinRequest, approve: bool) -> None:
    organization = join_request.organization
    ensure(actor, "manage_organization", organization, "Only the organization's admins decide.")
    join_request = OrganizationJoinRequest.objects.select_for_update().get(pk=join_request.pk)
    if join_request.status != OrganizationJoinRequest.Status.PENDING:
        raise ValidationError("This request has already been decided.")
    join_request.status = (
        OrganizationJoinRequest.Status.APPROVED
        if approve
        else OrganizationJoinRequest.Status.DECLINED
    )
    join_request.decided_by = actor
    join_request.decided_at = timezone.now()
    join_request.save(update_fields=["status", "decided_by", "decided_at"])
    if approve:
        OrganizationMembership.objects.get_or_create(
            organization=organization, user=join_request.user
        )


def set_organization_role(*, actor, membership: OrganizationMembership, role: str) -> None:
    organization = membership.organization
    ensure(actor, "manage_organization", organization)
    if role not in OrganizationMembership.Role.values:
        raise ValidationError(f"Unknown role {role!r}.")
    if role != OrganizationMembership.Role.ADMIN:
        _keep_one_admin(organization, leaving=membership)
    membership.role = role
    membership.save(update_fields=["role"])


def leave_organization(*, user, organization: Organization) -> bool:
    membership = OrganizationMembership.objects.filter(organization=organization, user=user).first()
    if membership is None:
        return False
    _keep_one_admin(organization, leaving=membership)
    membership.delete()
    return True


def remove_organization_member(*, actor, membership: OrganizationMembership) -> None:
    ensure(actor, "manage_organization", membership.organization)
    _keep_one_admin(membership.organization, leaving=membership)
    membership.delete()


def _keep_one_admin(organization: Organization, *, leaving: OrganizationMembership) -> None:
    if leaving.role != OrganizationMembership.Role.ADMIN:
        return
    others = organization.memberships.filter(role=OrganizationMembership.Role.ADMIN).exclude(
        pk=leaving.pk
    )
    if not others.exists():
        raise ValidationError("An organization needs at least one admin; appoint another first.")


def issue_api_token(*, user, name: str = "") -> tuple[ApiToken, str]:
    """Create a token; the key is returned once and only its hash is stored."""
    if not has_verified_email(user):
        raise PermissionDenied("Verify your e-mail address before using the API.")
    key = secrets.token_urlsafe(32)
    with transaction.atomic():
        token = ApiToken.objects.create(
            user=user, name=name[:80], prefix=key[:8], key_hash=ApiToken.hash(key)
        )
        stale = ApiToken.objects.filter(user=user).order_by("-created_at")[
            app_settings.API_TOKENS_PER_USER :
        ]
        ApiToken.objects.filter(pk__in=list(stale.values_list("pk", flat=True))).delete()
    return token, key


def user_for_token(key: str):
    """The active user a token belongs to, or ``None``; records when it was last used."""
    if not key or len(key) > 200:
        return None
    token = ApiToken.objects.select_related("user").filter(key_hash=ApiToken.hash(key)).first()
    if token is None or not token.user.is_active:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=5):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token.user
