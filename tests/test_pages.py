"""Server-rendered pages: they render for every visitor and their query counts do not grow."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from tests.factories import (
    MembershipFactory,
    NeighborhoodFactory,
    OrganizationFactory,
    OrganizationMembershipFactory,
    VerifiedUserFactory,
)

pytestmark = pytest.mark.django_db


def grow(neighborhood, *, members: int, organizations: int) -> None:
    for _ in range(members):
        MembershipFactory(neighborhood=neighborhood)
    for _ in range(organizations):
        organization = OrganizationFactory(neighborhoods=[neighborhood])
        OrganizationMembershipFactory(organization=organization)


def queries_for(client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, url
    return len(captured)


@pytest.fixture
def signed_in():
    """A second browser, signed in; ``client`` stays anonymous."""
    browser = Client()
    browser.force_login(VerifiedUserFactory())
    return browser


@pytest.mark.parametrize("who", ["anonymous", "signed_in"])
def test_neighborhood_list_query_count_does_not_grow_with_neighborhoods(client, signed_in, who):
    visitor = client if who == "anonymous" else signed_in
    first = NeighborhoodFactory()
    grow(first, members=1, organizations=0)
    small = queries_for(visitor, "/neighborhoods/")
    for _ in range(30):
        grow(NeighborhoodFactory(), members=3, organizations=1)
    assert queries_for(visitor, "/neighborhoods/") == small
    assert queries_for(visitor, "/neighborhoods/?q=Neighborhood") == small


@pytest.mark.parametrize("who", ["anonymous", "signed_in"])
def test_neighborhood_page_query_count_does_not_grow_with_members_or_organizations(
    client, signed_in, who
):
    visitor = client if who == "anonymous" else signed_in
    neighborhood = NeighborhoodFactory()
    grow(neighborhood, members=1, organizations=1)
    url = neighborhood.get_absolute_url()
    small = queries_for(visitor, url)
    grow(neighborhood, members=25, organizations=10)
    assert queries_for(visitor, url) == small


def test_neighborhood_page_shows_members_organizations_and_join_form(client, signed_in):
    neighborhood = NeighborhoodFactory(name="Old City")
    grow(neighborhood, members=2, organizations=1)
    response = signed_in.get("/neighborhoods/old-city/")
    body = response.content.decode()
    assert "Old City" in body
    assert 'action="/neighborhoods/old-city/join/"' in body
    assert "Civic Association" in body
    anonymous = client.get("/neighborhoods/old-city/")
    assert response.status_code == anonymous.status_code == 200


def test_organization_list_query_count_does_not_grow(client):
    neighborhood = NeighborhoodFactory()
    grow(neighborhood, members=0, organizations=2)
    small = queries_for(client, "/organizations/")
    for _ in range(20):
        grow(NeighborhoodFactory(), members=0, organizations=1)
    assert queries_for(client, "/organizations/") == small


def test_editors_neighborhood_page_shows_the_live_membership_panel(client, signed_in):
    from wagtail.models import Page, Site

    from sitecontent.models import HomePage, NeighborhoodPage

    neighborhood = NeighborhoodFactory(name="Fishtown")
    grow(neighborhood, members=1, organizations=1)
    home = Page.get_first_root_node().add_child(instance=HomePage(title="Home", slug="home-test"))
    Site.objects.update(root_page=home)
    page = home.add_child(
        instance=NeighborhoodPage(
            title="About Fishtown", slug="fishtown", neighborhood=neighborhood, intro="<p>Hi</p>"
        )
    )
    body = signed_in.get(page.url).content.decode()
    assert "About Fishtown" in body
    assert 'action="/neighborhoods/fishtown/join/"' in body
    assert "Civic Association" in body
    assert "Neighborhood boundaries ©" in body
    anonymous = client.get(page.url).content.decode()
    assert "/accounts/login/?next=" in anonymous


def test_home_page_shows_the_most_urgent_alerts_across_the_city(client):
    from wagtail.models import Page, Site

    from alerts.models import Severity
    from sitecontent.models import HomePage
    from tests.factories import official_notice

    home = Page.get_first_root_node().add_child(instance=HomePage(title="Home", slug="home-test"))
    Site.objects.update(root_page=home)
    official_notice(title="Street sweeping on Tuesday", severity=Severity.INFO)
    official_notice(title="Heat health warning", severity=Severity.WARNING)
    html = client.get(home.url).content.decode()
    assert "Happening now" in html
    assert html.index("Heat health warning") < html.index("Street sweeping on Tuesday")


@pytest.mark.django_db
def test_unknown_addresses_and_refusals_get_the_sites_own_pages(client):
    missing = client.get("/no-such-page-here/")
    assert missing.status_code == 404
    assert 'lang="en"' in missing.content.decode() and "Page not found" in missing.content.decode()
    client.force_login(VerifiedUserFactory())
    refused = client.get("/alerts/new/official/")  # official notices are for city staff
    assert refused.status_code == 403
    page = refused.content.decode()
    assert "<main" in page and "Only city staff post official notices." in page
