"""Factories for people, places and organizations.

Neighborhoods are squares (``half`` degrees either side of a centre) unless a boundary is given;
by default each one gets its own spot near (1, 1), far from Philadelphia and from the others, so
tests that do not care where a neighborhood is never see overlaps.
"""

from __future__ import annotations

import itertools

import factory
from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.utils import timezone
from factory.django import DjangoModelFactory
from shapely.geometry import shape

from neighborhoods.models import (
    CityStaff,
    Department,
    Membership,
    Neighborhood,
    Organization,
    OrganizationJoinRequest,
    OrganizationMembership,
    Profile,
    VerificationLevel,
)

PASSWORD = "correct horse battery staple"


def square(lat: float, lon: float, half: float = 0.01) -> list[list[list[float]]]:
    """Polygon coordinates of a square centred on (lat, lon), counter-clockwise, lon/lat order."""
    ring = [
        [lon - half, lat - half],
        [lon + half, lat - half],
        [lon + half, lat + half],
        [lon - half, lat + half],
        [lon - half, lat - half],
    ]
    return [ring]


def square_polygon(lat: float, lon: float, half: float = 0.01) -> dict:
    return {"type": "Polygon", "coordinates": square(lat, lon, half)}


def multipolygon(*centres: tuple[float, float], half: float = 0.01) -> dict:
    """A MultiPolygon of one square per ``(lat, lon)`` centre."""
    return {"type": "MultiPolygon", "coordinates": [square(lat, lon, half) for lat, lon in centres]}


def inside(neighborhood: Neighborhood) -> tuple[float, float]:
    """A (lat, lon) point that lies inside the neighborhood's boundary."""
    point = shape(neighborhood.boundary).representative_point()
    return point.y, point.x


class UserFactory(DjangoModelFactory):
    """A registered person whose allauth address is unverified (``email_verified=True``)."""

    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"person{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.org")
    password = factory.django.Password(PASSWORD)

    email_verified = factory.PostGeneration(
        lambda user, create, extracted, **kwargs: _add_email(user, create, extracted, False)
    )

    @factory.post_generation
    def permissions(user, create, extracted, **kwargs):
        """``permissions=["wagtailadmin.access_admin"]`` grants model permissions by codename."""
        if create and extracted:
            for dotted in extracted:
                app_label, codename = dotted.split(".")
                user.user_permissions.add(
                    Permission.objects.get(content_type__app_label=app_label, codename=codename)
                )


class VerifiedUserFactory(UserFactory):
    """A person whose e-mail address is verified (pass ``email_verified=False`` to undo)."""

    email_verified = factory.PostGeneration(
        lambda user, create, extracted, **kwargs: _add_email(user, create, extracted, True)
    )


def _add_email(user, create: bool, extracted: bool | None, default: bool) -> None:
    """Give the person their allauth address, as sign-up does; verified or not."""
    if create:
        verified = default if extracted is None else bool(extracted)
        EmailAddress.objects.create(user=user, email=user.email, primary=True, verified=verified)


class NeighborhoodFactory(DjangoModelFactory):
    """A square neighborhood around ``lat``/``lon`` (or with an explicit ``boundary``)."""

    class Meta:
        model = Neighborhood

    class Params:
        lat = factory.Sequence(lambda n: 1.0 + (n % 50) * 0.05)
        lon = factory.Sequence(lambda n: 1.0 + (n // 50) * 0.05)
        half = 0.01

    name = factory.Sequence(lambda n: f"Neighborhood {n}")
    boundary = factory.LazyAttribute(lambda o: square_polygon(o.lat, o.lon, o.half))
    required_level = VerificationLevel.HOME_CLAIMED

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        boundary = kwargs.pop("boundary")
        neighborhood = model_class(*args, **kwargs)
        neighborhood.set_boundary(boundary)
        neighborhood.save()
        return neighborhood


class ProfileFactory(DjangoModelFactory):
    """A profile whose private home lies inside ``home_neighborhood`` (when one is given)."""

    class Meta:
        model = Profile
        django_get_or_create = ("user",)

    user = factory.SubFactory(VerifiedUserFactory)
    home_neighborhood = None
    home_lat = factory.LazyAttribute(
        lambda o: inside(o.home_neighborhood)[0] if o.home_neighborhood else None
    )
    home_lon = factory.LazyAttribute(
        lambda o: inside(o.home_neighborhood)[1] if o.home_neighborhood else None
    )
    home_set_at = factory.LazyAttribute(lambda o: timezone.now() if o.home_neighborhood else None)


class MembershipFactory(DjangoModelFactory):
    """A member (e-mail verified). ``home_claimed=True`` claims a home inside the neighborhood;
    the ``verified`` trait makes a verified resident (which implies a claimed home)."""

    class Meta:
        model = Membership
        skip_postgeneration_save = True

    class Params:
        verified = factory.Trait(
            verified_at=factory.LazyFunction(timezone.now),
            verification_method=Membership.Method.STAFF,
        )

    neighborhood = factory.SubFactory(NeighborhoodFactory)
    user = factory.SubFactory(VerifiedUserFactory)
    role = Membership.Role.MEMBER

    @factory.post_generation
    def home_claimed(membership, create, extracted, **kwargs):
        if create and (extracted or membership.verified_at):
            ProfileFactory(user=membership.user, home_neighborhood=membership.neighborhood)


class DepartmentFactory(DjangoModelFactory):
    class Meta:
        model = Department
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"Department {n}")
    slug = factory.LazyAttribute(lambda o: o.name.lower().replace(" ", "-"))


class CityStaffFactory(DjangoModelFactory):
    class Meta:
        model = CityStaff

    user = factory.SubFactory(VerifiedUserFactory)
    department = factory.SubFactory(DepartmentFactory)
    title = "Community liaison"
    is_supervisor = False


class OrganizationFactory(DjangoModelFactory):
    class Meta:
        model = Organization
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"Civic Association {n}")
    website = "https://civic.example.org"

    @factory.post_generation
    def neighborhoods(organization, create, extracted, **kwargs):
        if create and extracted:
            organization.neighborhoods.set(extracted)


class OrganizationMembershipFactory(DjangoModelFactory):
    class Meta:
        model = OrganizationMembership

    class Params:
        admin = factory.Trait(role=OrganizationMembership.Role.ADMIN)

    organization = factory.SubFactory(OrganizationFactory)
    user = factory.SubFactory(VerifiedUserFactory)
    role = OrganizationMembership.Role.MEMBER


class JoinRequestFactory(DjangoModelFactory):
    class Meta:
        model = OrganizationJoinRequest

    organization = factory.SubFactory(OrganizationFactory)
    user = factory.SubFactory(VerifiedUserFactory)
    message = "I live on this block."


def category(slug: str = "traffic"):
    """One of the default alert categories (reinstalled if a transactional test flushed them)."""
    from alerts.defaults import ensure_default_categories
    from alerts.models import AlertCategory

    ensure_default_categories()
    return AlertCategory.objects.get(slug=slug)


def official_notice(neighborhood: Neighborhood | None = None, *, staff=None, **kwargs):
    """An official notice posted through the service (so events and notifications happen)."""
    from alerts.models import Severity
    from alerts.services import create_official_notice

    staff = staff or CityStaffFactory().user
    neighborhood = neighborhood or NeighborhoodFactory()
    kwargs.setdefault("category", category("utilities"))
    kwargs.setdefault("severity", Severity.WARNING)
    kwargs.setdefault("title", "Water main break")
    kwargs.setdefault("body", "Crews are on site. Expect **low pressure**.")
    if "area" not in kwargs and "lat" not in kwargs:
        kwargs.setdefault("neighborhoods", [neighborhood])
    return create_official_notice(author=staff, **kwargs)


def resident_report(neighborhood: Neighborhood | None = None, *, author=None, **kwargs):
    """A resident report pinned inside the neighborhood by a verified member."""
    from alerts.services import create_resident_report

    neighborhood = neighborhood or NeighborhoodFactory()
    if author is None:
        author = MembershipFactory(neighborhood=neighborhood, verified=True).user
    lat, lon = inside(neighborhood)
    kwargs.setdefault("category", category("street-conditions"))
    kwargs.setdefault("title", "Flooded underpass")
    kwargs.setdefault("lat", lat)
    kwargs.setdefault("lon", lon)
    return create_resident_report(author=author, **kwargs)


def forum_member(
    neighborhood: Neighborhood | None = None,
    *,
    role: str = Membership.Role.MEMBER,
    new: bool = False,
    **kwargs,
):
    """A verified resident who may post in the neighborhood; ``new=True`` for a day-old account
    (no links or photos yet), otherwise the account is a month old."""
    from datetime import timedelta

    neighborhood = neighborhood or NeighborhoodFactory()
    membership = MembershipFactory(neighborhood=neighborhood, verified=True, role=role, **kwargs)
    user = membership.user
    if not new:
        user.date_joined = timezone.now() - timedelta(days=30)
        user.save(update_fields=["date_joined"])
    return user


def forum_category(slug: str = "streets"):
    """One of the default forum categories (reinstalled if a transactional test flushed them)."""
    from forums.defaults import ensure_default_categories
    from forums.models import ForumCategory

    ensure_default_categories()
    return ForumCategory.objects.get(slug=slug)


def thread(neighborhood: Neighborhood | None = None, *, author=None, **kwargs):
    """A thread opened through the service (so follows, events and notifications happen)."""
    from forums.services import create_thread

    if neighborhood is None:
        neighborhood = author.neighborhood_memberships.first().neighborhood if author else None
    neighborhood = neighborhood or NeighborhoodFactory()
    author = author or forum_member(neighborhood)
    kwargs.setdefault("category", forum_category(kwargs.pop("category_slug", "streets")))
    kwargs.setdefault("title", "Broken streetlight on the corner")
    kwargs.setdefault("body", "It has been dark for a **week**.")
    return create_thread(author=author, neighborhood=neighborhood, **kwargs)


def reply(thread, *, author=None, **kwargs):
    """A reply posted through the service."""
    from forums.services import create_reply

    author = author or forum_member(thread.neighborhood)
    kwargs.setdefault("body", "Same here, it is dangerous at night.")
    return create_reply(thread, author=author, **kwargs)


_type_codes = itertools.count(1)

# The questions of a pothole report, as the tests' service types ask them.
SIZE_QUESTION = {
    "code": "size",
    "prompt": "How big is it?",
    "datatype": "singlevaluelist",
    "required": True,
    "values": "small|Smaller than a plate\nlarge|Larger than a plate",
}
LANES_QUESTION = {
    "code": "lanes",
    "prompt": "Which lanes?",
    "datatype": "multivaluelist",
    "values": "bike|Bike lane\ncar|Car lane",
}
POTHOLE_QUESTIONS = [SIZE_QUESTION, LANES_QUESTION]
LANES_WITH_PARKING = {
    **LANES_QUESTION,
    "values": LANES_QUESTION["values"] + "\nparking|Parking lane",
}


def service_type(code: str = "pothole", *, department=None, questions=(), **kwargs):
    """An active service type; ``questions`` are dicts of ServiceQuestion fields."""
    from engagement.models import ServiceQuestion, ServiceType

    department = department or DepartmentFactory(name="Streets Department")
    kwargs.setdefault("name", code.replace("-", " ").capitalize())
    kwargs.setdefault("sla_working_days", 3)
    kind = ServiceType.objects.create(code=code, department=department, **kwargs)
    for order, question in enumerate(questions):
        ServiceQuestion.objects.create(service_type=kind, sort_order=order, **question)
    return kind


def case(neighborhood: Neighborhood | None = None, *, kind=None, reporter=None, **kwargs):
    """A case filed on the web by a verified member, pinned inside the neighborhood."""
    from engagement.services import file_case

    neighborhood = neighborhood or NeighborhoodFactory()
    reporter = reporter or forum_member(neighborhood)
    kind = kind or service_type(f"type-{next(_type_codes)}")
    lat, lon = inside(neighborhood)
    kwargs.setdefault("lat", lat)
    kwargs.setdefault("lon", lon)
    kwargs.setdefault("description", "A deep pothole in the bike lane.")
    return file_case(service_type=kind, reporter=reporter, **kwargs).case


def signed_in(user):
    """A test client signed in as ``user``."""
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client
