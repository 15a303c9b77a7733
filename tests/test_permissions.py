"""Who may do what: the role matrix over every rule, and the graduated residency levels."""

from __future__ import annotations

from datetime import timedelta

import pytest
from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from neighborhoods import services
from neighborhoods.models import (
    Membership,
    OrganizationJoinRequest,
    ResidencyCode,
    VerificationLevel,
)
from neighborhoods.permissions import RULES, can, require_level, residency_level
from neighborhoods.ratelimit import RateLimited
from tests.factories import (
    CityStaffFactory,
    JoinRequestFactory,
    MembershipFactory,
    NeighborhoodFactory,
    OrganizationFactory,
    OrganizationMembershipFactory,
    UserFactory,
    VerifiedUserFactory,
    inside,
)

pytestmark = pytest.mark.django_db

# Each column is a rule of neighborhoods.permissions.RULES; "Y" allowed, "." refused.
# The neighborhood needs the default level (home claimed) to participate; "elsewhere" actors hold
# their role in another neighborhood or organization.
MATRIX = """
actor                  join  part  veri  mode  code  role  corg  rqjo  morg  vorg  noti  edit
anonymous              .     .     .     .     .     .     .     .     .     .     .     .
deactivated            .     .     .     .     .     .     .     .     .     .     .     .
registered             .     .     .     .     .     .     .     .     .     .     .     .
email_verified         Y     .     .     .     .     .     Y     Y     .     .     .     .
member_email_only      Y     .     .     .     .     .     Y     Y     .     .     .     .
home_claimed           Y     Y     .     .     .     .     Y     Y     .     .     .     .
verified_resident      Y     Y     .     .     .     .     Y     Y     .     .     .     .
organizer              Y     Y     Y     Y     .     .     Y     Y     .     .     .     .
organizer_elsewhere    Y     .     .     .     .     .     Y     Y     .     .     .     .
moderator              Y     Y     .     Y     .     .     Y     Y     .     .     .     .
org_admin              Y     .     .     .     .     .     Y     .     Y     .     .     .
org_admin_elsewhere    Y     .     .     .     .     .     Y     Y     .     .     .     .
org_member             Y     .     .     .     .     .     Y     .     .     .     .     .
city_staff             Y     .     Y     Y     Y     Y     Y     Y     Y     Y     Y     .
supervisor             Y     .     Y     Y     Y     Y     Y     Y     Y     Y     Y     .
editor                 Y     .     .     .     .     .     Y     Y     .     .     .     Y
superuser              Y     .     Y     Y     Y     Y     Y     Y     Y     Y     Y     Y
"""

COLUMNS = {
    "join": "join_neighborhood",
    "part": "participate",
    "veri": "verify_resident",
    "mode": "moderate",
    "code": "issue_residency_code",
    "role": "assign_neighborhood_role",
    "corg": "create_organization",
    "rqjo": "request_to_join_organization",
    "morg": "manage_organization",
    "vorg": "verify_organization",
    "noti": "post_official_notice",
    "edit": "edit_pages",
}


def _parse(table: str) -> dict[str, dict[str, bool]]:
    header, *rows = [line.split() for line in table.strip().splitlines()]
    actions = [COLUMNS[column] for column in header[1:]]
    return {
        actor: dict(zip(actions, (c == "Y" for c in cells), strict=True)) for actor, *cells in rows
    }


EXPECTED = _parse(MATRIX)
ACTORS = list(EXPECTED)

NEIGHBORHOOD_RULES = {
    "join_neighborhood",
    "participate",
    "verify_resident",
    "moderate",
    "issue_residency_code",
    "assign_neighborhood_role",
}
ORGANIZATION_RULES = {"request_to_join_organization", "manage_organization", "verify_organization"}


class World:
    """A neighborhood and an organization, plus another of each for the "elsewhere" roles."""

    def __init__(self) -> None:
        self.neighborhood = NeighborhoodFactory()
        self.other_neighborhood = NeighborhoodFactory()
        self.organization = OrganizationFactory(neighborhoods=[self.neighborhood])
        self.other_organization = OrganizationFactory()

    def target(self, action: str):
        if action in NEIGHBORHOOD_RULES:
            return self.neighborhood
        if action in ORGANIZATION_RULES:
            return self.organization
        return None

    def actor(self, name: str):
        here, org = self.neighborhood, self.organization
        member = Membership.Role
        builders = {
            "anonymous": lambda: AnonymousUser(),
            "deactivated": lambda: (
                MembershipFactory(
                    neighborhood=here, role=member.ORGANIZER, verified=True, user__is_active=False
                ).user
            ),
            "registered": lambda: UserFactory(),
            "email_verified": lambda: VerifiedUserFactory(),
            "member_email_only": lambda: MembershipFactory(neighborhood=here).user,
            "home_claimed": lambda: MembershipFactory(neighborhood=here, home_claimed=True).user,
            "verified_resident": lambda: MembershipFactory(neighborhood=here, verified=True).user,
            "organizer": lambda: (
                MembershipFactory(neighborhood=here, role=member.ORGANIZER, verified=True).user
            ),
            "organizer_elsewhere": lambda: (
                MembershipFactory(
                    neighborhood=self.other_neighborhood, role=member.ORGANIZER, verified=True
                ).user
            ),
            "moderator": lambda: (
                MembershipFactory(neighborhood=here, role=member.MODERATOR, verified=True).user
            ),
            "org_admin": lambda: OrganizationMembershipFactory(organization=org, admin=True).user,
            "org_admin_elsewhere": lambda: (
                OrganizationMembershipFactory(organization=self.other_organization, admin=True).user
            ),
            "org_member": lambda: OrganizationMembershipFactory(organization=org).user,
            "city_staff": lambda: CityStaffFactory().user,
            "supervisor": lambda: CityStaffFactory(is_supervisor=True).user,
            "editor": lambda: VerifiedUserFactory(permissions=["wagtailadmin.access_admin"]),
            "superuser": lambda: VerifiedUserFactory(is_superuser=True, is_staff=True),
        }
        return builders[name]()


@pytest.fixture
def world() -> World:
    return World()


def test_the_matrix_covers_every_rule():
    assert set(COLUMNS.values()) == set(RULES)


@pytest.mark.parametrize("action", sorted(RULES))
@pytest.mark.parametrize("actor_name", ACTORS)
def test_role_matrix(world, actor_name, action):
    actor = world.actor(actor_name)

    assert can(actor, action, world.target(action)) is EXPECTED[actor_name][action]


def _join(world, actor):
    membership = services.join_neighborhood(user=actor, neighborhood=world.neighborhood)
    assert membership.neighborhood == world.neighborhood


def _verify_resident(world, actor):
    applicant = MembershipFactory(neighborhood=world.neighborhood, home_claimed=True)
    services.verify_resident(actor=actor, membership=applicant)
    applicant.refresh_from_db()
    assert applicant.is_verified and applicant.verified_by == actor


def _issue_code(world, actor):
    applicant = MembershipFactory(neighborhood=world.neighborhood, home_claimed=True)
    code = services.issue_residency_code(
        actor=actor, user=applicant.user, neighborhood=world.neighborhood
    )
    assert ResidencyCode.objects.filter(code_hash=ResidencyCode.hash(code)).exists()


def _verify_organization(world, actor):
    services.set_organization_verified(actor=actor, organization=world.organization, verified=True)
    world.organization.refresh_from_db()
    assert world.organization.verified


def _decide_join_request(world, actor):
    join_request = JoinRequestFactory(organization=world.organization)
    services.decide_join_request(actor=actor, join_request=join_request, approve=True)
    join_request.refresh_from_db()
    assert join_request.status == OrganizationJoinRequest.Status.APPROVED


SERVICES = {
    "join": ("join_neighborhood", _join),
    "verify_resident": ("verify_resident", _verify_resident),
    "issue_residency_code": ("issue_residency_code", _issue_code),
    "set_organization_verified": ("verify_organization", _verify_organization),
    "decide_join_request": ("manage_organization", _decide_join_request),
}


@pytest.mark.parametrize("service", list(SERVICES))
@pytest.mark.parametrize("actor_name", ACTORS)
def test_services_enforce_the_matrix(world, actor_name, service):
    rule, call = SERVICES[service]
    actor = world.actor(actor_name)

    if EXPECTED[actor_name][rule]:
        call(world, actor)
    else:
        with pytest.raises(PermissionDenied):
            call(world, actor)


def test_the_neighborhoods_required_level_decides_who_participates(world):
    email_only = MembershipFactory(neighborhood=world.neighborhood).user
    home_claimed = MembershipFactory(neighborhood=world.neighborhood, home_claimed=True).user
    verified = MembershipFactory(neighborhood=world.neighborhood, verified=True).user

    def participants():
        return [
            can(u, "participate", world.neighborhood) for u in (email_only, home_claimed, verified)
        ]

    world.neighborhood.required_level = VerificationLevel.EMAIL_VERIFIED
    assert participants() == [True, True, True]
    world.neighborhood.required_level = VerificationLevel.HOME_CLAIMED
    assert participants() == [False, True, True]
    world.neighborhood.required_level = VerificationLevel.VERIFIED
    assert participants() == [False, False, True]


def test_a_person_cannot_verify_themselves(world):
    organizer = MembershipFactory(
        neighborhood=world.neighborhood, role=Membership.Role.ORGANIZER, home_claimed=True
    )

    with pytest.raises(PermissionDenied):
        services.verify_resident(actor=organizer.user, membership=organizer)


def test_assigning_neighborhood_roles_is_for_city_staff(world):
    membership = MembershipFactory(neighborhood=world.neighborhood)
    organizer = MembershipFactory(neighborhood=world.neighborhood, role=Membership.Role.ORGANIZER)

    with pytest.raises(PermissionDenied):
        services.set_neighborhood_role(
            actor=organizer.user, membership=membership, role=Membership.Role.MODERATOR
        )
    services.set_neighborhood_role(
        actor=CityStaffFactory().user, membership=membership, role=Membership.Role.MODERATOR
    )

    membership.refresh_from_db()
    assert membership.role == Membership.Role.MODERATOR
    assert can(membership.user, "moderate", world.neighborhood)


def fresh(user):
    """The person as the next request sees them (per-request caches dropped)."""
    return get_user_model().objects.get(pk=user.pk)


class TestGraduatedResidency:
    def climb_to_home_claimed(self, neighborhood):
        person = UserFactory()
        assert residency_level(AnonymousUser(), neighborhood) == VerificationLevel.ANONYMOUS
        assert residency_level(person, neighborhood) == VerificationLevel.REGISTERED

        EmailAddress.objects.filter(user=person).update(verified=True)
        person = fresh(person)
        assert residency_level(person, neighborhood) == VerificationLevel.EMAIL_VERIFIED

        found = services.set_home_location(
            user=person, lat=inside(neighborhood)[0], lon=inside(neighborhood)[1]
        )
        assert found == neighborhood
        person = fresh(person)
        assert residency_level(person, neighborhood) == VerificationLevel.HOME_CLAIMED
        return person

    def test_verified_by_an_organizer(self):
        neighborhood = NeighborhoodFactory()
        organizer = MembershipFactory(neighborhood=neighborhood, role=Membership.Role.ORGANIZER)
        person = self.climb_to_home_claimed(neighborhood)
        membership = services.join_neighborhood(user=person, neighborhood=neighborhood)
        assert residency_level(fresh(person), neighborhood) == VerificationLevel.HOME_CLAIMED

        services.verify_resident(actor=organizer.user, membership=membership)

        assert residency_level(fresh(person), neighborhood) == VerificationLevel.VERIFIED
        membership.refresh_from_db()
        assert membership.verification_method == Membership.Method.ORGANIZER
        assert membership.verified_by == organizer.user

    def test_verified_by_city_staff(self):
        neighborhood = NeighborhoodFactory()
        staff = CityStaffFactory().user
        person = self.climb_to_home_claimed(neighborhood)
        membership = services.join_neighborhood(user=person, neighborhood=neighborhood)

        services.verify_resident(actor=staff, membership=membership)

        assert residency_level(fresh(person), neighborhood) == VerificationLevel.VERIFIED
        membership.refresh_from_db()
        assert membership.verification_method == Membership.Method.STAFF

    def test_verified_by_redeeming_a_mailed_code(self):
        neighborhood = NeighborhoodFactory()
        staff = CityStaffFactory().user
        person = self.climb_to_home_claimed(neighborhood)
        code = services.issue_residency_code(actor=staff, user=person, neighborhood=neighborhood)

        membership = services.redeem_residency_code(user=person, code=code)

        assert membership.neighborhood == neighborhood, "redeeming joins the neighborhood"
        assert membership.verification_method == Membership.Method.CODE
        assert membership.verified_by == staff
        assert residency_level(fresh(person), neighborhood) == VerificationLevel.VERIFIED

    def test_verification_in_one_neighborhood_does_not_count_in_another(self):
        verified = MembershipFactory(verified=True)
        elsewhere = NeighborhoodFactory()

        assert residency_level(verified.user, verified.neighborhood) == VerificationLevel.VERIFIED
        assert residency_level(verified.user, elsewhere) == VerificationLevel.EMAIL_VERIFIED

    def test_a_home_outside_the_neighborhood_is_not_a_claim_on_it(self):
        here, there = NeighborhoodFactory(), NeighborhoodFactory()
        person = VerifiedUserFactory()

        services.set_home_location(user=person, lat=inside(there)[0], lon=inside(there)[1])

        assert residency_level(fresh(person), here) == VerificationLevel.EMAIL_VERIFIED
        assert residency_level(fresh(person), there) == VerificationLevel.HOME_CLAIMED

    def test_revoking_a_verification_goes_back_to_home_claimed(self):
        membership = MembershipFactory(verified=True)
        staff = CityStaffFactory().user

        services.revoke_verification(actor=staff, membership=membership)

        assert residency_level(fresh(membership.user), membership.neighborhood) == (
            VerificationLevel.HOME_CLAIMED
        )

    def test_require_level_says_what_is_missing(self):
        membership = MembershipFactory(home_claimed=True)

        require_level(membership.user, membership.neighborhood, VerificationLevel.HOME_CLAIMED)
        with pytest.raises(PermissionDenied, match="verified resident"):
            require_level(membership.user, membership.neighborhood, VerificationLevel.VERIFIED)

    def test_an_organizer_cannot_verify_a_member_without_a_home_claim_there(self):
        neighborhood = NeighborhoodFactory()
        organizer = MembershipFactory(neighborhood=neighborhood, role=Membership.Role.ORGANIZER)
        member = MembershipFactory(neighborhood=neighborhood)

        with pytest.raises(ValidationError):
            services.verify_resident(actor=organizer.user, membership=member)
        member.refresh_from_db()
        assert not member.is_verified


class TestResidencyCodes:
    @pytest.fixture
    def claim(self):
        """A person with a verified e-mail who has claimed a home; staff issue them a code."""
        membership = MembershipFactory(home_claimed=True)
        staff = CityStaffFactory().user
        code = services.issue_residency_code(
            actor=staff, user=membership.user, neighborhood=membership.neighborhood
        )
        return membership.user, membership.neighborhood, code

    def test_only_the_hash_of_a_code_is_stored(self, claim):
        person, _, code = claim

        stored = ResidencyCode.objects.get(user=person)

        assert stored.code_hash == ResidencyCode.hash(code)
        assert code not in stored.code_hash

    def test_a_code_is_accepted_however_it_is_typed(self, claim):
        person, neighborhood, code = claim

        membership = services.redeem_residency_code(user=person, code=f" {code.lower()} ")

        assert membership.neighborhood == neighborhood and membership.is_verified

    def test_a_code_works_only_once(self, claim):
        person, _, code = claim
        services.redeem_residency_code(user=person, code=code)

        with pytest.raises(ValidationError, match="not valid"):
            services.redeem_residency_code(user=person, code=code)

    def test_an_expired_code_is_rejected(self, claim):
        person, neighborhood, code = claim
        ResidencyCode.objects.filter(user=person).update(
            expires_at=timezone.now() - timedelta(seconds=1)
        )

        with pytest.raises(ValidationError, match="not valid"):
            services.redeem_residency_code(user=person, code=code)
        assert residency_level(fresh(person), neighborhood) == VerificationLevel.HOME_CLAIMED

    def test_a_code_issued_to_someone_else_is_rejected(self, claim):
        _, neighborhood, code = claim
        neighbor = MembershipFactory(neighborhood=neighborhood, home_claimed=True).user

        with pytest.raises(ValidationError):
            services.redeem_residency_code(user=neighbor, code=code)

    def test_a_code_is_rejected_after_the_home_moved_elsewhere(self, claim):
        person, neighborhood, code = claim
        elsewhere = NeighborhoodFactory()
        services.set_home_location(user=person, lat=inside(elsewhere)[0], lon=inside(elsewhere)[1])

        with pytest.raises(ValidationError, match="home location has changed"):
            services.redeem_residency_code(user=fresh(person), code=code)

    def test_staff_cannot_issue_a_code_for_a_home_not_claimed_there(self):
        person = VerifiedUserFactory()

        with pytest.raises(ValidationError):
            services.issue_residency_code(
                actor=CityStaffFactory().user, user=person, neighborhood=NeighborhoodFactory()
            )

    def test_wrong_guesses_are_rate_limited(self, claim, frozen_rate_window, settings):
        settings.ENGAGEMENT = {"RESIDENCY_CODE_ATTEMPTS_PER_HOUR": 3}
        person, neighborhood, code = claim
        for _ in range(3):
            with pytest.raises(ValidationError):
                services.redeem_residency_code(user=person, code="AAAA-AAAA")

        with pytest.raises(RateLimited) as limited:
            services.redeem_residency_code(user=person, code=code)

        assert limited.value.retry_after > 0
        assert not ResidencyCode.objects.get(user=person).used_at, "the code was not spent"
        assert residency_level(fresh(person), neighborhood) == VerificationLevel.HOME_CLAIMED

    def test_the_rate_limit_is_per_person(self, claim, frozen_rate_window, settings):
        settings.ENGAGEMENT = {"RESIDENCY_CODE_ATTEMPTS_PER_HOUR": 2}
        person, _, _ = claim
        other = MembershipFactory(home_claimed=True).user
        for _ in range(2):
            with pytest.raises(ValidationError):
                services.redeem_residency_code(user=other, code="AAAA-AAAA")
        with pytest.raises(RateLimited):
            services.redeem_residency_code(user=other, code="AAAA-AAAA")

        with pytest.raises(ValidationError):
            services.redeem_residency_code(user=person, code="AAAA-AAAA")

    def test_the_default_limit_is_five_attempts_an_hour(self, claim, frozen_rate_window):
        person, _, code = claim
        for _ in range(5):
            with pytest.raises(ValidationError):
                services.redeem_residency_code(user=person, code="WRONG-ONE")

        with pytest.raises(RateLimited):
            services.redeem_residency_code(user=person, code=code)
