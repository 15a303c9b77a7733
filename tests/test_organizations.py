"""Organizations: creation, join requests and their decisions, staff verification, admins."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from neighborhoods import services
from neighborhoods.models import (
    Organization,
    OrganizationJoinRequest,
    OrganizationMembership,
)
from neighborhoods.ratelimit import RateLimited
from tests.factories import (
    CityStaffFactory,
    JoinRequestFactory,
    NeighborhoodFactory,
    OrganizationFactory,
    OrganizationMembershipFactory,
    UserFactory,
    VerifiedUserFactory,
)

pytestmark = pytest.mark.django_db

Role = OrganizationMembership.Role
Status = OrganizationJoinRequest.Status


def role_of(user, organization) -> str | None:
    return (
        OrganizationMembership.objects.filter(user=user, organization=organization)
        .values_list("role", flat=True)
        .first()
    )


@pytest.fixture
def organization():
    """An organization serving one neighborhood, with one admin."""
    org = OrganizationFactory(neighborhoods=[NeighborhoodFactory()])
    org.admin = OrganizationMembershipFactory(organization=org, admin=True).user
    return org


class TestCreating:
    def test_the_creator_becomes_the_first_admin_of_an_unverified_organization(self):
        founder = VerifiedUserFactory()
        old_city = NeighborhoodFactory(name="Old City")

        org = services.create_organization(
            actor=founder,
            name="  Old City Civic Association ",
            description="Neighbors since 1973.",
            website="https://occa.example.org",
            neighborhoods=[old_city],
        )

        assert org.name == "Old City Civic Association"
        assert org.slug == "old-city-civic-association"
        assert not org.verified and org.verified_at is None
        assert list(org.neighborhoods.all()) == [old_city]
        assert role_of(founder, org) == Role.ADMIN

    def test_a_second_organization_with_a_similar_name_gets_its_own_slug(self):
        services.create_organization(actor=VerifiedUserFactory(), name="Friends of the Park")

        second = services.create_organization(
            actor=VerifiedUserFactory(), name="Friends of the Park!"
        )

        assert second.slug == "friends-of-the-park-2"

    def test_a_person_without_a_verified_email_cannot_create_one(self):
        with pytest.raises(PermissionDenied):
            services.create_organization(actor=UserFactory(), name="Shadow Group")

        assert not Organization.objects.exists()


class TestJoinRequests:
    def test_a_join_request_waits_for_a_decision(self, organization):
        person = VerifiedUserFactory()

        request = services.request_to_join_organization(
            user=person, organization=organization, message="I run the block party."
        )

        assert request.status == Status.PENDING
        assert request.message == "I run the block party."
        assert role_of(person, organization) is None

    def test_asking_twice_while_pending_keeps_one_request(self, organization):
        person = VerifiedUserFactory()

        first = services.request_to_join_organization(user=person, organization=organization)
        second = services.request_to_join_organization(user=person, organization=organization)

        assert first.pk == second.pk
        assert OrganizationJoinRequest.objects.filter(user=person).count() == 1

    def test_a_member_cannot_ask_to_join_again(self, organization):
        with pytest.raises(PermissionDenied):
            services.request_to_join_organization(
                user=organization.admin, organization=organization
            )

    def test_a_person_without_a_verified_email_cannot_ask(self, organization):
        with pytest.raises(PermissionDenied):
            services.request_to_join_organization(user=UserFactory(), organization=organization)

    def test_the_admin_approves_and_the_person_becomes_a_member(self, organization):
        request = JoinRequestFactory(organization=organization)

        services.decide_join_request(actor=organization.admin, join_request=request, approve=True)

        request.refresh_from_db()
        assert request.status == Status.APPROVED
        assert request.decided_by == organization.admin and request.decided_at is not None
        assert role_of(request.user, organization) == Role.MEMBER

    def test_the_admin_declines_and_the_person_may_ask_again(self, organization):
        request = JoinRequestFactory(organization=organization)

        services.decide_join_request(actor=organization.admin, join_request=request, approve=False)

        request.refresh_from_db()
        assert request.status == Status.DECLINED
        assert role_of(request.user, organization) is None
        again = services.request_to_join_organization(user=request.user, organization=organization)
        assert again.pk != request.pk and again.status == Status.PENDING

    def test_a_request_is_decided_only_once(self, organization):
        request = JoinRequestFactory(organization=organization)
        services.decide_join_request(actor=organization.admin, join_request=request, approve=False)

        with pytest.raises(ValidationError, match="already been decided"):
            services.decide_join_request(
                actor=organization.admin, join_request=request, approve=True
            )
        assert role_of(request.user, organization) is None

    @pytest.mark.parametrize(
        "who",
        ["plain member", "admin of another organization", "the person asking", "a stranger"],
    )
    def test_only_an_admin_or_city_staff_can_decide(self, organization, who):
        request = JoinRequestFactory(organization=organization)
        actor = {
            "plain member": lambda: OrganizationMembershipFactory(organization=organization).user,
            "admin of another organization": lambda: OrganizationMembershipFactory(admin=True).user,
            "the person asking": lambda: request.user,
            "a stranger": VerifiedUserFactory,
        }[who]()

        with pytest.raises(PermissionDenied):
            services.decide_join_request(actor=actor, join_request=request, approve=True)

        request.refresh_from_db()
        assert request.status == Status.PENDING
        assert role_of(request.user, organization) is None

    def test_city_staff_can_decide(self, organization):
        request = JoinRequestFactory(organization=organization)

        services.decide_join_request(
            actor=CityStaffFactory().user, join_request=request, approve=True
        )

        assert role_of(request.user, organization) == Role.MEMBER

    def test_join_requests_are_rate_limited_per_day(self, frozen_rate_window, settings):
        settings.ENGAGEMENT = {"JOIN_REQUESTS_PER_DAY": 2}
        person = VerifiedUserFactory()
        for org in OrganizationFactory.create_batch(2):
            services.request_to_join_organization(user=person, organization=org)

        with pytest.raises(RateLimited):
            services.request_to_join_organization(user=person, organization=OrganizationFactory())


class TestVerification:
    def test_city_staff_verify_and_unverify_an_organization(self, organization):
        staff = CityStaffFactory().user

        services.set_organization_verified(actor=staff, organization=organization, verified=True)
        organization.refresh_from_db()
        assert organization.verified and organization.verified_at is not None

        services.set_organization_verified(actor=staff, organization=organization, verified=False)
        organization.refresh_from_db()
        assert not organization.verified and organization.verified_at is None

    def test_an_organization_cannot_verify_itself(self, organization):
        with pytest.raises(PermissionDenied):
            services.set_organization_verified(
                actor=organization.admin, organization=organization, verified=True
            )

        organization.refresh_from_db()
        assert not organization.verified


class TestAdmins:
    def test_the_last_admin_cannot_leave(self, organization):
        with pytest.raises(ValidationError, match="at least one admin"):
            services.leave_organization(user=organization.admin, organization=organization)

        assert role_of(organization.admin, organization) == Role.ADMIN

    def test_an_admin_can_leave_once_there_is_another_admin(self, organization):
        second = OrganizationMembershipFactory(organization=organization, admin=True).user

        assert services.leave_organization(user=organization.admin, organization=organization)

        assert role_of(organization.admin, organization) is None
        assert role_of(second, organization) == Role.ADMIN

    def test_a_member_can_leave(self, organization):
        member = OrganizationMembershipFactory(organization=organization).user

        assert services.leave_organization(user=member, organization=organization)
        assert not services.leave_organization(user=member, organization=organization)

    def test_the_last_admin_cannot_step_down_to_member(self, organization):
        membership = OrganizationMembership.objects.get(user=organization.admin)

        with pytest.raises(ValidationError, match="at least one admin"):
            services.set_organization_role(
                actor=organization.admin, membership=membership, role=Role.MEMBER
            )

        assert role_of(organization.admin, organization) == Role.ADMIN

    def test_the_last_admin_cannot_be_removed(self, organization):
        membership = OrganizationMembership.objects.get(user=organization.admin)

        with pytest.raises(ValidationError):
            services.remove_organization_member(
                actor=CityStaffFactory().user, membership=membership
            )

        assert role_of(organization.admin, organization) == Role.ADMIN

    def test_an_admin_promotes_a_member_who_may_then_decide(self, organization):
        member = OrganizationMembershipFactory(organization=organization)
        request = JoinRequestFactory(organization=organization)

        services.set_organization_role(actor=organization.admin, membership=member, role=Role.ADMIN)
        services.decide_join_request(actor=member.user, join_request=request, approve=True)

        assert role_of(request.user, organization) == Role.MEMBER

    def test_a_plain_member_cannot_change_roles_or_remove_people(self, organization):
        member = OrganizationMembershipFactory(organization=organization)
        admin_membership = OrganizationMembership.objects.get(user=organization.admin)

        with pytest.raises(PermissionDenied):
            services.set_organization_role(actor=member.user, membership=member, role=Role.ADMIN)
        with pytest.raises(PermissionDenied):
            services.remove_organization_member(actor=member.user, membership=admin_membership)

    def test_an_unknown_role_is_refused(self, organization):
        member = OrganizationMembershipFactory(organization=organization)

        with pytest.raises(ValidationError, match="Unknown role"):
            services.set_organization_role(
                actor=organization.admin, membership=member, role="owner"
            )


class TestListing:
    def test_a_neighborhood_lists_the_organizations_serving_it(self, api):
        old_city = NeighborhoodFactory(name="Old City")
        society_hill = NeighborhoodFactory(name="Society Hill")
        occa = OrganizationFactory(name="Old City Civic Association", neighborhoods=[old_city])
        both = OrganizationFactory(
            name="Delaware Riverfront", neighborhoods=[old_city, society_hill]
        )
        OrganizationFactory(name="Society Hill Civic", neighborhoods=[society_hill])
        services.set_organization_verified(
            actor=CityStaffFactory().user, organization=occa, verified=True
        )

        detail = api.get(f"/api/v1/neighborhoods/{old_city.slug}/").json()
        listing = api.get("/api/v1/organizations/", {"neighborhood": old_city.slug}).json()

        assert sorted(o["slug"] for o in detail["organizations"]) == sorted([occa.slug, both.slug])
        assert [o["name"] for o in listing] == ["Delaware Riverfront", "Old City Civic Association"]
        assert [o["verified"] for o in listing] == [False, True]
        assert old_city in both.neighborhoods.all() and society_hill in both.neighborhoods.all()

    def test_all_organizations_are_listed_by_name(self, api):
        OrganizationFactory(name="Zeta Block Club")
        OrganizationFactory(name="Alpha Town Watch")

        listing = api.get("/api/v1/organizations/").json()

        assert [o["name"] for o in listing] == ["Alpha Town Watch", "Zeta Block Club"]
