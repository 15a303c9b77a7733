"""Live alerts in real browsers: a staff member posts an emergency notice in one window and a
resident's open neighborhood page shows it within two seconds, without a reload."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import expect

from alerts.defaults import ensure_default_categories
from tests.browser.conftest import PageErrors, signed_in_context
from tests.factories import CityStaffFactory, MembershipFactory

pytestmark = pytest.mark.browser


def test_emergency_notice_reaches_an_open_neighborhood_page_within_two_seconds(
    browser, asgi_server, philadelphia
):
    ensure_default_categories()
    old_city = philadelphia["Old City"]
    resident = MembershipFactory(neighborhood=old_city, verified=True).user
    staff = CityStaffFactory(department__name="Office of Emergency Management").user

    resident_context = signed_in_context(browser, asgi_server, resident)
    staff_context = signed_in_context(browser, asgi_server, staff)
    errors = PageErrors()
    try:
        neighbour = resident_context.new_page()
        errors.watch(neighbour)
        neighbour.goto(f"/neighborhoods/{old_city.slug}/")
        expect(neighbour.get_by_role("heading", name="Alerts in Old City")).to_be_visible()
        neighbour.wait_for_selector("body[data-live-state='open']")
        neighbour.evaluate("window.__notReloaded = true")

        desk = staff_context.new_page()
        errors.watch(desk)
        desk.goto("/alerts/new/official/")
        desk.get_by_label("Category").select_option(label="Public safety")
        desk.get_by_label("Severity").select_option(label="Emergency: act now")
        desk.get_by_label("Title").fill("Gas leak at 2nd and Market: leave the area")
        desk.get_by_label("Body").fill("PGW crews are on site. **Do not** use lighters.")
        desk.get_by_label("Neighborhoods").select_option(label="Old City")
        desk.get_by_role("button", name="Publish notice").click()
        desk.wait_for_url("**/alerts/*/")
        published = time.monotonic()

        card = neighbour.locator(".alert-list [data-alert-id]").filter(
            has_text="Gas leak at 2nd and Market"
        )
        expect(card).to_be_visible(timeout=2_000)
        arrived = time.monotonic() - published
        assert arrived < 2.0
        expect(card.locator(".badge.severity")).to_have_text("Emergency")
        expect(card.locator(".provenance")).to_have_text(
            "Official · Office of Emergency Management"
        )
        # Most severe first: the emergency heads the list.
        first = neighbour.locator(".alert-list [data-alert-id]").first
        expect(first).to_contain_text("Gas leak at 2nd and Market")
        assert neighbour.evaluate("window.__notReloaded === true"), "the page was reloaded"
        expect(neighbour.locator("#live-announcer")).to_contain_text("New emergency alert")
        # The map layer shows it too.
        neighbour.wait_for_function(
            "() => document.querySelectorAll('#neighborhood_alerts_map path.leaflet-interactive')"
            ".length >= 1"
        )
        # The staff member retracts it; the resident's page marks it retracted, still no reload.
        desk.get_by_label("Reason for the retraction").fill("Leak was a false alarm")
        desk.get_by_role("button", name="Retract notice").click()
        expect(card.locator(".alert-status.retracted")).to_contain_text(
            "Leak was a false alarm", timeout=2_000
        )
        assert neighbour.evaluate("window.__notReloaded === true")
    finally:
        resident_context.close()
        staff_context.close()
    errors.check()


def test_a_page_that_lost_its_socket_gets_what_it_missed_when_it_reconnects(
    browser, asgi_server, philadelphia
):
    from tests.factories import official_notice

    ensure_default_categories()
    old_city = philadelphia["Old City"]
    resident = MembershipFactory(neighborhood=old_city, verified=True).user
    context = signed_in_context(browser, asgi_server, resident)
    errors = PageErrors()
    try:
        page = context.new_page()
        errors.watch(page)
        page.goto(f"/neighborhoods/{old_city.slug}/")
        page.wait_for_selector("body[data-live-state='open']")
        page.evaluate("window.__notReloaded = true")
        # The socket drops; while it is away, two notices are published.
        page.evaluate("window.engagementLive.stop()")
        page.wait_for_selector("body[data-live-state='offline']")
        official_notice(old_city, title="Missed while offline: first")
        official_notice(old_city, title="Missed while offline: second")
        cards = page.locator(".alert-list [data-alert-id]")
        expect(cards.filter(has_text="Missed while offline")).to_have_count(0)
        page.evaluate("window.engagementLive.start()")
        page.wait_for_selector("body[data-live-state='open']", timeout=5_000)
        cards = page.locator(".alert-list [data-alert-id]")
        expect(cards.filter(has_text="Missed while offline: first")).to_have_count(1)
        expect(cards.filter(has_text="Missed while offline: second")).to_have_count(1)
        assert page.evaluate("window.__notReloaded === true")
    finally:
        context.close()
    errors.check()
