"""A newcomer's first visit, in a real browser: sign up, confirm the e-mail address, place the
home on the map, join the neighborhood the home lies in, and find it on the profile."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect
from shapely.geometry import shape

pytestmark = pytest.mark.browser

EMAIL = "newcomer@example.org"
PASSWORD = "a-long-Passphrase-2718"
CONFIRM_LINK = re.compile(r"https?://\S+/accounts/confirm-email/\S+")
MAP_NAME = "Map for choosing your home location"


def wait_for_mail(outbox, timeout: float = 5.0):
    """The last message in the locmem outbox (shared with the live server's thread)."""
    deadline = time.monotonic() + timeout
    while not outbox:
        if time.monotonic() > deadline:
            pytest.fail("no e-mail was sent")
        time.sleep(0.05)
    return outbox[-1]


def wait_for_picker(page) -> None:
    """The picker's map exists and has drawn the outline of every neighborhood."""
    expect(page.get_by_role("application", name=MAP_NAME)).to_be_visible()
    page.wait_for_function("() => Boolean(window.__testMaps && window.__testMaps.home_map)")
    page.wait_for_function(
        "() => document.querySelectorAll('#home_map path.leaflet-interactive').length >= 159"
    )


def point_on_map(page, map_id: str, lat: float, lon: float) -> dict:
    """Where (in page pixels) Leaflet draws a latitude and longitude on the map ``map_id``,
    and whether a click there reaches the map (not a control or something on top of it)."""
    return page.evaluate(
        """([mapId, lat, lon]) => {
            const map = window.__testMaps[mapId];
            const container = map.getContainer();
            const point = map.latLngToContainerPoint([lat, lon]);
            const box = container.getBoundingClientRect();
            const x = box.left + point.x, y = box.top + point.y;
            const hit = document.elementFromPoint(x, y);
            return {x, y, reachesMap: Boolean(hit && container.contains(hit)
                                             && !hit.closest('.leaflet-control'))};
        }""",
        [map_id, lat, lon],
    )


def test_newcomer_signs_up_sets_home_on_the_map_and_joins_old_city(
    page, asgi_server, philadelphia, mailoutbox
):
    old_city = philadelphia["Old City"]
    inside = shape(old_city.boundary).representative_point()
    lat, lon = inside.y, inside.x

    # Sign up.
    page.goto("/accounts/signup/")
    page.locator("input[name=email]").fill(EMAIL)
    page.locator("input[name=password1]").fill(PASSWORD)
    page.locator("input[name=password2]").fill(PASSWORD)
    with page.expect_navigation():
        page.get_by_role("button", name="Sign Up").click()
    expect(page).to_have_url(re.compile(r"/accounts/confirm-email/$"))

    # Read the e-mail and follow its link; confirming takes a POST (CONFIRM_EMAIL_ON_GET is off).
    message = wait_for_mail(mailoutbox)
    assert message.to == [EMAIL]
    link = CONFIRM_LINK.search(message.body)
    assert link, message.body
    assert link.group(0).startswith(asgi_server)
    page.goto(link.group(0))
    with page.expect_navigation():
        page.get_by_role("button", name="Confirm").click()

    # Signed in, and sent on to set a home location (neighborhoods.adapters).
    expect(page).to_have_url(re.compile(r"/profile/home/$"))
    expect(page.get_by_role("heading", name="Your home location", level=1)).to_be_visible()
    wait_for_picker(page)

    # Zoom in on the point, as a person would, and click where the map draws it.
    page.get_by_role("application", name=MAP_NAME).scroll_into_view_if_needed()
    page.evaluate(
        "([lat, lon]) => { window.__testMaps.home_map.setView([lat, lon], 16, {animate: false}); }",
        [lat, lon],
    )
    target = point_on_map(page, "home_map", lat, lon)
    assert target["reachesMap"], target
    page.mouse.click(target["x"], target["y"])

    expect(page.locator("#home_map .leaflet-marker-icon")).to_have_count(1)
    expect(page.locator("#picker-status")).to_contain_text("Marker placed")
    placed_lat = float(page.get_by_label("Latitude").input_value())
    placed_lon = float(page.get_by_label("Longitude").input_value())
    # A pixel at zoom 16 is about 2 m: the click landed on the point.
    assert abs(placed_lat - lat) < 1e-4, (placed_lat, lat)
    assert abs(placed_lon - lon) < 1e-4, (placed_lon, lon)

    with page.expect_navigation():
        page.get_by_role("button", name="Save home location").click()

    # Old City is offered; join it.
    expect(page).to_have_url(re.compile(r"/profile/home/$"))
    expect(page.get_by_role("status").filter(has_text="Your home is in Old City.")).to_be_visible()
    offered = page.get_by_role("region", name="Your home is in Old City")
    expect(offered).to_be_visible()
    with page.expect_navigation():
        offered.get_by_role("button", name="Join Old City").click()
    expect(page.get_by_text("You joined Old City.")).to_be_visible()
    expect(offered).to_contain_text("You are a member of Old City")

    # The profile lists the membership.
    with page.expect_navigation():
        page.get_by_role("link", name="My profile").click()
    expect(page).to_have_url(re.compile(r"/profile/$"))
    memberships = page.get_by_role("region", name="Your neighborhoods")
    expect(memberships.get_by_role("link", name="Old City")).to_be_visible()
    expect(memberships.get_by_role("button", name="Leave Old City")).to_be_visible()
    expect(memberships.get_by_text("Not verified")).to_be_visible()
    home = page.get_by_role("region", name="Home location")
    expect(home.get_by_role("link", name="Old City")).to_be_visible()
