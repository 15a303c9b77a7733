"""The admin lists alerts and what was sent; categories are edited there; alerts are not."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from alerts.models import AlertCategory
from tests.factories import NeighborhoodFactory, official_notice

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    admin = get_user_model().objects.create_superuser("root", "root@example.org", "pw")
    client.force_login(admin)
    return client


def test_admin_lists_and_inspects_alerts(admin_client):
    notice = official_notice(NeighborhoodFactory(), title="Boil water notice")
    assert "Boil water notice" in admin_client.get("/admin/alerts/").content.decode()
    inspect = admin_client.get(f"/admin/alerts/inspect/{notice.pk}/")
    assert inspect.status_code == 200 and "Boil water notice" in inspect.content.decode()


def test_admin_cannot_add_or_edit_alerts_around_the_rules(admin_client):
    notice = official_notice(NeighborhoodFactory())
    assert admin_client.get("/admin/alerts/new/").status_code in (302, 403, 404)
    assert admin_client.get(f"/admin/alerts/edit/{notice.pk}/").status_code in (302, 403)
    assert admin_client.post(f"/admin/alerts/delete/{notice.pk}/").status_code in (302, 403)
    notice.refresh_from_db()


def test_editors_manage_alert_categories(admin_client):
    response = admin_client.post(
        "/admin/alert-categories/new/",
        {
            "name": "Film shoots",
            "slug": "film",
            "description": "Parking restrictions for filming",
            "default_lifetime_hours": 12,
            "default_radius_m": 200,
            "residents_may_report": "on",
            "sort_order": 200,
        },
    )
    assert response.status_code == 302
    assert AlertCategory.objects.get(slug="film").default_lifetime_hours == 12


@pytest.mark.parametrize("url", ["/admin/deliveries/", "/admin/recorded-messages/"])
def test_admin_shows_what_was_sent(admin_client, url):
    assert admin_client.get(url).status_code == 200


@pytest.mark.parametrize(
    "url", ["/admin/alerts/", "/admin/deliveries/", "/admin/recorded-messages/"]
)
def test_admin_access_alone_does_not_show_who_was_sent_what(client, url):
    """A volunteer moderator let into the admin for the queue sees no recipients; staff do."""
    from tests.factories import CityStaffFactory, MembershipFactory, UserFactory

    moderator = UserFactory(permissions=["wagtailadmin.access_admin"])
    MembershipFactory(user=moderator, role="moderator")
    client.force_login(moderator)
    assert client.get(url).status_code in (302, 403)
    staff = CityStaffFactory(user=UserFactory(permissions=["wagtailadmin.access_admin"])).user
    client.force_login(staff)
    assert client.get(url).status_code == 200
