"""The demo seeds once, keeps what is there on re-runs, and gives one working account per role."""

from __future__ import annotations

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import call_command
from wagtail.models import Site

from neighborhoods.models import (
    CityStaff,
    Membership,
    Neighborhood,
    Organization,
    OrganizationMembership,
    VerificationLevel,
)
from neighborhoods.permissions import can, residency_level
from sitecontent.models import HomePage, NeighborhoodPage

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


def test_seed_demo_creates_every_role_and_rerunning_keeps_the_data(monkeypatch, capsys):
    monkeypatch.setenv("DEMO_PASSWORD", "a-long-demo-pass")
    call_command("seed_demo")
    out = capsys.readouterr().out
    for email in ["resident", "organizer", "orgmember", "staff", "moderator", "editor"]:
        assert f"{email}@demo.example" in out
    assert "a-long-demo-pass" not in out, "a password chosen by the operator is not echoed"

    assert Neighborhood.objects.count() == 159
    old_city = Neighborhood.objects.get(slug="old-city")
    users = {}
    for name in ["resident", "organizer", "moderator", "orgmember", "staff", "editor"]:
        users[name] = authenticate(username=f"{name}", password="a-long-demo-pass")
        assert users[name] is not None, name
    for name, role in [
        ("resident", "member"),
        ("organizer", "organizer"),
        ("moderator", "moderator"),
    ]:
        membership = Membership.objects.get(user=users[name], neighborhood=old_city)
        assert membership.role == role and membership.is_verified
        assert residency_level(users[name], old_city) == VerificationLevel.VERIFIED
    assert CityStaff.objects.get(user=users["staff"]).department.name == "Streets Department"
    association = Organization.objects.get(slug="old-city-civic-association")
    assert association.verified and old_city in association.neighborhoods.all()
    assert (
        OrganizationMembership.objects.get(organization=association, user=users["orgmember"]).role
        == "member"
    )
    assert can(users["organizer"], "verify_resident", old_city)
    assert can(users["moderator"], "moderate", old_city)
    assert not can(users["resident"], "moderate", old_city)
    assert users["editor"].has_perm("wagtailadmin.access_admin")
    home = HomePage.objects.get()
    assert Site.objects.get(is_default_site=True).root_page_id == home.pk
    assert NeighborhoodPage.objects.filter(neighborhood=old_city, live=True).exists()

    from alerts.models import Alert

    active = Alert.objects.active().filter(neighborhoods=old_city)
    assert active.filter(kind="official", department__name="Streets Department").exists()
    assert active.filter(kind="official", severity=3).exists()
    assert active.filter(kind="community", corroborated_at__isnull=False).exists()
    assert Alert.objects.filter(status="retracted").exists()

    from forums import services as forums
    from forums.models import Reply, Thread

    threads = forums.feed(old_city, sort="hot")
    assert threads.count() >= 8
    assert threads.filter(is_pinned=True).exists()
    assert threads.filter(answer__is_official=True).exists()
    assert threads.filter(cosigned_by=association).exists()
    assert any(forums.suggests_escalation(thread) for thread in threads)
    assert Reply.objects.filter(visibility="pending").exists()  # waits in the moderation queue
    assert forums.feed(Neighborhood.objects.get(slug="fishtown-lower-kensington")).exists()

    from engagement.models import Case, ServiceType

    assert ServiceType.objects.filter(questions__isnull=False).distinct().count() == 10
    statuses = set(Case.objects.values_list("status", flat=True))
    assert statuses == {"open", "acknowledged", "in_progress", "scheduled", "closed"}
    assert {"web", "phone", "liaison", "open311"} <= set(
        Case.objects.values_list("channel", flat=True)
    )
    assert Case.objects.filter(thread__isnull=False).exists()
    assert Case.objects.values("neighborhood").distinct().count() >= 4
    assert Case.objects.filter(contested_count__gt=0).exists()
    supervisor = get_user_model().objects.get(email="supervisor@demo.example")
    assert supervisor.city_staff.is_supervisor
    assert users["staff"].has_perm("engagement.change_servicetype")

    counts = (
        Neighborhood.objects.count(),
        Membership.objects.count(),
        Organization.objects.count(),
        NeighborhoodPage.objects.count(),
        Alert.objects.count(),
        Thread.objects.count(),
        Reply.objects.count(),
        Case.objects.count(),
    )
    old_city.description = "Edited by a demo visitor."
    old_city.save()
    call_command("seed_demo")
    assert counts == (
        Neighborhood.objects.count(),
        Membership.objects.count(),
        Organization.objects.count(),
        NeighborhoodPage.objects.count(),
        Alert.objects.count(),
        Thread.objects.count(),
        Reply.objects.count(),
        Case.objects.count(),
    )
    old_city.refresh_from_db()
    assert old_city.description == "Edited by a demo visitor."
