"""The home-location picker with the keyboard alone, and joining and leaving a neighborhood with
JavaScript switched off."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from neighborhoods.locate import locate
from neighborhoods.models import Membership
from tests.factories import PASSWORD, VerifiedUserFactory

from .test_newcomer_journey import MAP_NAME, wait_for_picker

pytestmark = pytest.mark.browser

MAX_TABS = 60


def sign_in(page, user) -> None:
    """Sign in through allauth's form; works with or without JavaScript."""
    page.goto("/accounts/login/")
    page.locator("input[name=login]").fill(user.email)
    page.locator("input[name=password]").fill(PASSWORD)
    with page.expect_navigation():
        page.locator("input[name=password]").press("Enter")
    expect(page.get_by_role("link", name="My profile")).to_be_visible()


DESCRIBE_FOCUS = """() => {
    const el = document.activeElement;
    if (!el || el === document.body) return "body";
    const cls = typeof el.className === "string" ? el.className : el.getAttribute("class") || "";
    const name = el.getAttribute("aria-label") || (el.textContent || "").trim().slice(0, 30);
    return el.tagName.toLowerCase() + (cls ? "." + cls.split(/\\s+/)[0] : "") + (name ? ` "${name}"` : "");
}"""


def tab_to(page, locator, limit: int = MAX_TABS) -> int:
    """Press Tab until ``locator`` has the focus; the number of presses it took."""
    visited: list[str] = []
    for presses in range(1, limit + 1):
        page.keyboard.press("Tab")
        if locator.evaluate("element => element === document.activeElement"):
            return presses
        visited.append(page.evaluate(DESCRIBE_FOCUS))
    counts: dict[str, int] = {}
    for stop in visited:
        counts[stop] = counts.get(stop, 0) + 1
    summary = ", ".join(f"{n} x {stop}" if n > 1 else stop for stop, n in counts.items())
    pytest.fail(f"{limit} presses of Tab did not reach {locator}; the focus went to: {summary}")


def test_home_location_with_the_keyboard_only(new_page, philadelphia):
    user = VerifiedUserFactory()
    page = new_page()
    sign_in(page, user)
    page.goto("/profile/home/")
    wait_for_picker(page)

    # Tab to the map: it takes the focus and shows it.
    map_box = page.get_by_role("application", name=MAP_NAME)
    tab_to(page, map_box)
    assert map_box.evaluate("element => element.matches(':focus-visible')")
    assert map_box.evaluate("element => getComputedStyle(element).outlineStyle") != "none"
    assert map_box.get_attribute("aria-describedby") == "picker-help"

    # Zoom in with the keyboard, then Enter places the marker at the centre.
    zoom = page.evaluate("() => window.__testMaps.home_map.getZoom()")
    page.keyboard.press("+")
    page.wait_for_function(f"() => window.__testMaps.home_map.getZoom() > {zoom}")
    page.keyboard.press("Enter")
    expect(page.locator("#home_map .leaflet-marker-icon")).to_have_count(1)
    expect(page.locator("#picker-status")).to_contain_text("Marker placed")
    centre = page.evaluate(
        "() => { const c = window.__testMaps.home_map.getCenter(); return [c.lat, c.lng]; }"
    )
    lat = float(page.get_by_label("Latitude").input_value())
    lon = float(page.get_by_label("Longitude").input_value())
    assert abs(lat - centre[0]) < 1e-6 and abs(lon - centre[1]) < 1e-6, (lat, lon, centre)
    # The map keeps the focus, so a second Enter would move the marker, not submit the form.
    assert map_box.evaluate("element => element === document.activeElement")

    # On to the save button and submit, still by keyboard.
    # Past the map's own controls to the form; the outlines drawn for orientation are not stops.
    tab_to(page, page.get_by_role("button", name="Save home location"), limit=15)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    found = locate(lat, lon)
    assert found is not None, f"the centre of the city ({lat}, {lon}) is in no neighborhood"
    offered = page.get_by_role("region", name=f"Your home is in {found.name}")
    expect(offered).to_be_visible()

    join = offered.get_by_role("button", name=f"Join {found.name}")
    tab_to(page, join)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    expect(page.get_by_text(f"You joined {found.name}.")).to_be_visible()
    assert Membership.objects.filter(user=user, neighborhood=found).exists()


def test_join_and_leave_without_javascript(new_page, philadelphia):
    user = VerifiedUserFactory()
    old_city = philadelphia["Old City"]
    page = new_page(java_script_enabled=False)
    sign_in(page, user)

    page.goto(old_city.get_absolute_url())
    expect(page.get_by_role("heading", name="Old City", level=1)).to_be_visible()
    # (No check of the <noscript> text: Chromium's "JavaScript disabled" emulation still
    # parses <noscript> as if scripting were on.)

    membership = page.get_by_role("region", name="Your membership")
    with page.expect_navigation():
        membership.get_by_role("button", name="Join Old City").click()
    expect(page).to_have_url(re.compile(re.escape(old_city.get_absolute_url()) + "$"))
    expect(page.get_by_text("You joined Old City.")).to_be_visible()
    expect(membership.get_by_text("Not verified yet")).to_be_visible()
    assert Membership.objects.filter(user=user, neighborhood=old_city).exists()

    with page.expect_navigation():
        membership.get_by_role("button", name="Leave Old City").click()
    expect(page.get_by_text("You left Old City.")).to_be_visible()
    expect(membership.get_by_role("button", name="Join Old City")).to_be_visible()
    assert not Membership.objects.filter(user=user, neighborhood=old_city).exists()
