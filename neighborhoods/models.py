"""Places and people: neighborhoods, memberships and roles, city staff, organizations."""

from __future__ import annotations

import hashlib
import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify

from .geometry import bbox_of


class VerificationLevel(models.IntegerChoices):
    """How far a person has proved that they live in a neighborhood (graduated, per neighborhood)."""

    ANONYMOUS = 0, "Not signed in"
    REGISTERED = 1, "Account, e-mail not verified"
    EMAIL_VERIFIED = 2, "E-mail verified"
    HOME_CLAIMED = 3, "Home location claimed"
    VERIFIED = 4, "Verified resident"


def unique_slug(model: type[models.Model], name: str, *, exclude_pk: int | None = None) -> str:
    """A slug made from the name (``Old City`` → ``old-city``), suffixed when already taken."""
    base = slugify(name)[:70] or "item"
    candidate, n = base, 2
    taken = model._default_manager.filter(slug=candidate)
    while taken.exclude(pk=exclude_pk).exists():
        candidate = f"{base}-{n}"
        n += 1
        taken = model._default_manager.filter(slug=candidate)
    return candidate


class Neighborhood(models.Model):
    name = models.CharField(max_length=120, unique=True)
    slug = models.SlugField(max_length=80, unique=True)
    description = models.TextField(blank=True)
    boundary = models.JSONField(help_text="GeoJSON Polygon or MultiPolygon, longitude/latitude.")
    # The boundary's bounding box, for pre-filtering point lookups in SQL.
    min_lon = models.FloatField(editable=False)
    min_lat = models.FloatField(editable=False)
    max_lon = models.FloatField(editable=False)
    max_lat = models.FloatField(editable=False)
    required_level = models.PositiveSmallIntegerField(
        choices=VerificationLevel.choices,
        default=VerificationLevel.HOME_CLAIMED,
        help_text="Level a member needs to post, reply and vote here.",
    )
    source_properties = models.JSONField(default=dict, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        indexes = [models.Index(fields=["min_lon", "max_lon", "min_lat", "max_lat"])]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs) -> None:
        if not self.slug:
            self.slug = unique_slug(Neighborhood, self.name, exclude_pk=self.pk)
        super().save(*args, **kwargs)

    def get_absolute_url(self) -> str:
        return reverse("neighborhoods:detail", args=[self.slug])

    def set_boundary(self, area: dict) -> None:
        """Set the (already validated) boundary and its bounding box together."""
        box = bbox_of(area)
        self.boundary = area
        self.min_lon, self.min_lat, self.max_lon, self.max_lat = (
            box.min_lon,
            box.min_lat,
            box.max_lon,
            box.max_lat,
        )


class Department(models.Model):
    """A city department; its staff post official notices and work cases."""

    name = models.CharField(max_length=120, unique=True)
    slug = models.SlugField(max_length=80, unique=True)
    description = models.TextField(blank=True)
    email = models.EmailField(blank=True)
    phone = models.CharField(max_length=40, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class CityStaff(models.Model):
    """A person who works for the city, in one department."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="city_staff"
    )
    department = models.ForeignKey(Department, on_delete=models.PROTECT, related_name="staff")
    title = models.CharField(max_length=120, blank=True)
    is_supervisor = models.BooleanField(
        default=False, help_text="Supervisors see the work of every department."
    )

    class Meta:
        verbose_name = "city staff member"
        verbose_name_plural = "city staff"

    def __str__(self) -> str:
        return f"{self.user} ({self.department})"

    def save(self, *args, **kwargs) -> None:
        super().save(*args, **kwargs)
        give_staff_a_public_name(self)


def give_staff_a_public_name(staff: CityStaff) -> None:
    """City staff speak for the city: with no display name of their own they appear under their
    full name (or as their department's staff), never as an anonymous "Neighbor 12"."""
    profile, _ = Profile.objects.get_or_create(user=staff.user)
    if profile.display_name:
        return
    name = staff.user.get_full_name().strip() or f"{staff.department.name} staff"
    profile.display_name = name[:60]
    profile.save(update_fields=["display_name"])


class Profile(models.Model):
    """What a person tells the platform about themselves. The home location is never public."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="engagement_profile"
    )
    display_name = models.CharField(max_length=60, blank=True)
    home_lat = models.FloatField(null=True, blank=True)
    home_lon = models.FloatField(null=True, blank=True)
    home_neighborhood = models.ForeignKey(
        Neighborhood, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    home_set_at = models.DateTimeField(null=True, blank=True)
    notification_preferences = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return self.public_name

    @property
    def public_name(self) -> str:
        return self.display_name or f"Neighbor {self.user_id}"

    @property
    def has_home(self) -> bool:
        return self.home_lat is not None and self.home_lon is not None


class Membership(models.Model):
    class Role(models.TextChoices):
        MEMBER = "member", "Member"
        MODERATOR = "moderator", "Moderator"
        ORGANIZER = "organizer", "Organizer"

    class Method(models.TextChoices):
        ORGANIZER = "organizer", "Verified by an organizer"
        STAFF = "staff", "Verified by city staff"
        CODE = "code", "Verified with a mailed code"

    neighborhood = models.ForeignKey(
        Neighborhood, on_delete=models.CASCADE, related_name="memberships"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="neighborhood_memberships"
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    joined_at = models.DateTimeField(default=timezone.now)
    verified_at = models.DateTimeField(null=True, blank=True)
    verified_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    verification_method = models.CharField(max_length=16, choices=Method.choices, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["neighborhood", "user"], name="one_membership_per_person"
            )
        ]
        indexes = [models.Index(fields=["user", "neighborhood"])]

    def __str__(self) -> str:
        return f"{self.user} in {self.neighborhood} ({self.role})"

    @property
    def is_verified(self) -> bool:
        return self.verified_at is not None


class ResidencyCode(models.Model):
    """A one-time code that staff issue (mailed to the home, postcard-style); only its hash is kept."""

    neighborhood = models.ForeignKey(Neighborhood, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="residency_codes"
    )
    code_hash = models.CharField(max_length=64, unique=True)
    issued_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Residency code for {self.user} in {self.neighborhood}"

    @staticmethod
    def hash(code: str) -> str:
        normalized = "".join(ch for ch in code.upper() if ch.isalnum())
        return hashlib.sha256(normalized.encode()).hexdigest()


class Organization(models.Model):
    name = models.CharField(max_length=160, unique=True)
    slug = models.SlugField(max_length=80, unique=True)
    description = models.TextField(blank=True)
    website = models.URLField(blank=True)
    verified = models.BooleanField(default=False, help_text="Set by city staff.")
    verified_at = models.DateTimeField(null=True, blank=True)
    neighborhoods = models.ManyToManyField(
        Neighborhood, related_name="organizations", blank=True, help_text="Neighborhoods served."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs) -> None:
        if not self.slug:
            self.slug = unique_slug(Organization, self.name, exclude_pk=self.pk)
        super().save(*args, **kwargs)

    def get_absolute_url(self) -> str:
        return reverse("neighborhoods:organization", args=[self.slug])


class OrganizationMembership(models.Model):
    class Role(models.TextChoices):
        MEMBER = "member", "Member"
        ADMIN = "admin", "Admin"

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="memberships"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="organization_memberships"
    )
    role = models.CharField(max_length=8, choices=Role.choices, default=Role.MEMBER)
    is_liaison = models.BooleanField(
        default=False, help_text="Designated by city staff to file requests for offline neighbours."
    )
    joined_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "user"], name="one_organization_membership_per_person"
            )
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.organization} ({self.role})"


class OrganizationJoinRequest(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        APPROVED = "approved", "Approved"
        DECLINED = "declined", "Declined"

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="join_requests"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="organization_requests"
    )
    message = models.TextField(blank=True, max_length=1000)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(auto_now_add=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "user"],
                condition=Q(status="pending"),
                name="one_pending_request_per_person",
            )
        ]

    def __str__(self) -> str:
        return f"{self.user} asks to join {self.organization} ({self.status})"


class ApiToken(models.Model):
    """An API token; the secret is shown once and only its hash is stored."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="engagement_api_tokens"
    )
    name = models.CharField(max_length=80, blank=True)
    prefix = models.CharField(max_length=8)
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.user})"

    @staticmethod
    def hash(key: str) -> str:
        return hashlib.sha256(key.encode()).hexdigest()


class HeldUpload(models.Model):
    """A file chosen on a form that came back with an error, kept so the person need not choose it
    again (:mod:`neighborhoods.uploads`). Private to its owner; gone once used or after a day."""

    key = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    field = models.CharField(max_length=60)
    name = models.CharField(max_length=255)
    content_type = models.CharField(max_length=100, blank=True)
    size = models.PositiveIntegerField()
    data = models.BinaryField()
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    def __str__(self) -> str:
        return f"{self.name} held for {self.owner_id}"
