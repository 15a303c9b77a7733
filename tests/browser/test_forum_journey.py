"""A neighborhood discussion in real browsers: a resident opens a thread with a photo and a pin in
Old City; a neighbour, on the neighborhood's discussion page in another browser, sees it appear
live and supports it, and the author's open page shows the support without reloading; a reply is
flagged and a moderator hides it, and the author's open page shows the placeholder live."""

from __future__ import annotations

import io
import mimetypes
import re
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import expect

from forums import services
from forums.models import Reply, Thread
from neighborhoods.models import Membership
from tests.browser.conftest import PageErrors, in_test_thread, signed_in_context
from tests.factories import CityStaffFactory, forum_category, forum_member, inside
from tests.factories import thread as thread_factory

pytestmark = pytest.mark.browser

TITLE = "Streetlight out at 2nd and Arch"
LIVE_TIMEOUT_MS = 3_000


def jpeg_bytes() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (240, 200, 40)).save(out, "JPEG")
    return out.getvalue()


def serve_media(context, media_root: Path) -> None:
    """Uploaded photos straight from the media folder (the site leaves media to the web server)."""

    def fulfil(route) -> None:
        name = route.request.url.split("/media/", 1)[1].split("?", 1)[0]
        path = (media_root / name).resolve()
        if media_root.resolve() not in path.parents or not path.is_file():
            route.fulfill(status=404, body="")
            return
        kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        route.fulfill(status=200, body=path.read_bytes(), content_type=kind)

    context.route("**/media/**", fulfil)


def open_page(context, errors: PageErrors, url: str):
    page = context.new_page()
    errors.watch(page)
    page.goto(url)
    page.wait_for_selector("body[data-live-state='open']")
    page.evaluate("window.__notReloaded = true")
    return page


def click_on_map(page, map_id: str, lat: float, lon: float) -> None:
    page.wait_for_function(f"() => Boolean(window.__testMaps && window.__testMaps.{map_id})")
    point = page.evaluate(
        """([mapId, lat, lon]) => {
            const map = window.__testMaps[mapId];
            map.getContainer().scrollIntoView({block: "center"});
            map.setView([lat, lon], 16, {animate: false});
            const p = map.latLngToContainerPoint([lat, lon]);
            const box = map.getContainer().getBoundingClientRect();
            return {x: box.left + p.x, y: box.top + p.y};
        }""",
        [map_id, lat, lon],
    )
    page.mouse.click(point["x"], point["y"])


def post_reply(context, errors: PageErrors, thread, text: str):
    """Reply to ``thread`` through its page in ``context``; return the page."""
    page = context.new_page()
    errors.watch(page)
    page.goto(thread.get_absolute_url())
    page.get_by_label("Your reply").fill(text)
    page.get_by_role("button", name="Post reply").click()
    page.wait_for_url(re.compile(r".*#reply-\d+$"))
    return page


def test_a_new_thread_its_support_and_a_hidden_reply_reach_open_pages_live(
    browser, asgi_server, philadelphia, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path / "media"
    forum_category("streets")
    old_city = philadelphia["Old City"]
    author = forum_member(old_city)
    neighbour = forum_member(old_city)
    moderator = forum_member(old_city, role=Membership.Role.MODERATOR)
    pin_lat, pin_lon = inside(old_city)
    feed_url = f"/neighborhoods/{old_city.slug}/discussions/"

    contexts = {}
    for name, user in (("author", author), ("neighbour", neighbour), ("moderator", moderator)):
        contexts[name] = signed_in_context(browser, asgi_server, user)
        serve_media(contexts[name], settings.MEDIA_ROOT)
    errors = PageErrors()
    try:
        # The neighbour watches the neighborhood's discussions.
        feed = open_page(contexts["neighbour"], errors, feed_url)
        expect(feed.get_by_role("heading", name="Discussions in Old City")).to_be_visible()

        # The author opens a thread with a photo and a pin placed on the map.
        compose = contexts["author"].new_page()
        errors.watch(compose)
        compose.goto(f"{feed_url}new/")
        compose.get_by_label("Title").fill(TITLE)
        compose.get_by_label("Body").fill("Dark since **Monday**; cars cannot see people crossing.")
        compose.get_by_label("Category").select_option(label="Streets and sidewalks")
        compose.get_by_label("Tags").fill("lighting, safety")
        click_on_map(compose, "pin_map", pin_lat, pin_lon)
        expect(compose.locator("#pin-status")).to_contain_text("Marker placed")
        assert float(compose.get_by_label("Latitude").input_value()) == pytest.approx(
            pin_lat, abs=1e-4
        )
        compose.get_by_label("Photos").set_input_files(
            {"name": "corner.jpg", "mimeType": "image/jpeg", "buffer": jpeg_bytes()}
        )
        compose.get_by_role("button", name="Post discussion").click()
        compose.wait_for_url(re.compile(r".*/discussions/\d+/$"))
        thread = Thread.objects.get(title=TITLE)
        assert thread.lat == pytest.approx(pin_lat, abs=1e-4)
        expect(compose.locator(".thread-photos img")).to_have_count(1)
        compose.wait_for_function(
            "() => document.querySelector('.thread-photos img').naturalWidth > 0"
        )
        expect(compose.locator("#thread_map .leaflet-marker-icon")).to_have_count(1)
        compose.wait_for_selector("body[data-live-state='open']")
        compose.evaluate("window.__notReloaded = true")

        # It appears on the neighbour's open page, without a reload.
        row = feed.locator("[data-thread-feed] [data-thread-id]").filter(has_text=TITLE)
        expect(row).to_be_visible(timeout=LIVE_TIMEOUT_MS)
        expect(feed.locator("#live-announcer")).to_contain_text(f"New discussion: {TITLE}")
        assert feed.evaluate("window.__notReloaded === true"), "the feed was reloaded"

        # The neighbour supports it; the author's open page counts it, without a reload.
        row.get_by_role("button", name=re.compile("^Support")).click()
        expect(
            feed.locator(f"#thread-{thread.pk} button.vote[aria-pressed='true']")
        ).to_be_visible()
        expect(row.locator("[data-thread-votes]")).to_have_text("1")
        assert feed.evaluate("window.__notReloaded === true"), "supporting reloaded the feed"
        expect(compose.locator("[data-thread-votes]")).to_have_text("1", timeout=LIVE_TIMEOUT_MS)
        assert compose.evaluate("window.__notReloaded === true"), "the thread page was reloaded"

        # The neighbour replies; it appears on the author's page as it is posted.
        discussion = contexts["neighbour"].new_page()
        errors.watch(discussion)
        discussion.goto(thread.get_absolute_url())
        discussion.get_by_label("Your reply").fill("Buy my miracle bulbs at example.org!!!")
        discussion.get_by_role("button", name="Post reply").click()
        discussion.wait_for_url(re.compile(r".*#reply-\d+$"))
        reply = Reply.objects.get(thread=thread)
        shown = compose.locator(f"#reply-{reply.pk}")
        expect(shown).to_contain_text("Buy my miracle bulbs", timeout=LIVE_TIMEOUT_MS)
        assert compose.evaluate("window.__notReloaded === true")

        # The author's own reply, posted from another page, arrives without a Flag button.
        # (Every write goes through the server: SQLite's shared in-memory test database locks
        # a table that the test thread would write while the server reads it.)
        elsewhere = post_reply(contexts["author"], errors, thread, "Thanks, I told the city too.")
        own = Reply.objects.get(thread=thread, author=author)
        mine = compose.locator(f"#reply-{own.pk}")
        expect(mine).to_contain_text("I told the city too", timeout=LIVE_TIMEOUT_MS)
        expect(mine.locator("summary", has_text="Flag")).to_have_count(0)
        elsewhere.close()
        expect(shown.locator("summary", has_text="Flag")).to_have_count(1)

        # An official reply arrives; the thread's author may mark it as the answer at once.
        staff = CityStaffFactory(department__name="Streets Department").user
        contexts["staff"] = signed_in_context(browser, asgi_server, staff)
        serve_media(contexts["staff"], settings.MEDIA_ROOT)
        post_reply(contexts["staff"], errors, thread, "A crew fixes it Tuesday.")
        official = Reply.objects.get(thread=thread, author=staff)
        answer = compose.locator(f"#reply-{official.pk}")
        expect(answer).to_contain_text("Streets Department", timeout=LIVE_TIMEOUT_MS)
        answer.get_by_role("button", name="Mark as the answer").click()
        expect(compose.locator(".messages")).to_contain_text("answer")
        thread.refresh_from_db()
        assert thread.answer_id == official.pk
        compose.wait_for_selector("body[data-live-state='open']")
        compose.evaluate("window.__notReloaded = true")

        # The author flags it (the form reloads the page, which then listens again).
        shown.locator("summary", has_text="Flag").click()
        shown.get_by_label("Why should moderators look at this reply?").select_option(
            label="Spam or advertising"
        )
        shown.get_by_role("button", name="Send flag").click()
        expect(compose.locator(".messages")).to_contain_text("moderators will review it")
        compose.wait_for_selector("body[data-live-state='open']")
        compose.evaluate("window.__notReloaded = true")

        # A moderator sees the flagged reply and hides it.
        review = open_page(contexts["moderator"], errors, thread.get_absolute_url())
        flagged = review.locator(f"#reply-{reply.pk}")
        expect(flagged).to_contain_text("Flagged 1 time")
        flagged.locator("summary", has_text="Moderate").click()
        flagged.get_by_label("Action").select_option(value="hide")
        flagged.get_by_label(re.compile("^Reason")).fill("Advertising")
        flagged.get_by_role("button", name="Apply").click()
        expect(review.locator(".messages")).to_contain_text("Done: hide")

        # The author's open page shows the placeholder, without a reload.
        expect(compose.locator(f"#reply-{reply.pk} .placeholder")).to_have_text(
            "This reply is hidden pending review by a moderator.", timeout=LIVE_TIMEOUT_MS
        )
        expect(compose.locator(f"#reply-{reply.pk}")).not_to_contain_text("miracle bulbs")
        expect(compose.locator("#live-announcer")).to_contain_text("hidden")
        assert compose.evaluate("window.__notReloaded === true")

        # Merged into an older thread: the open page says where it went; the feed drops it.
        feed.wait_for_selector("body[data-live-state='open']")
        original = in_test_thread(
            thread_factory, old_city, author=neighbour, title="Dark corners along Arch St"
        )
        in_test_thread(
            services.merge_threads, thread, original, actor=moderator, reason="Same streetlight"
        )
        notice = compose.locator("[data-thread-notice]")
        expect(notice).to_contain_text("merged into another one", timeout=LIVE_TIMEOUT_MS)
        expect(notice.get_by_role("link")).to_have_attribute("href", original.get_absolute_url())
        expect(feed.locator(f"#thread-{thread.pk}")).to_have_count(0, timeout=LIVE_TIMEOUT_MS)
        expect(feed.locator("[data-thread-feed]")).to_contain_text("Dark corners along Arch St")
    finally:
        for context in contexts.values():
            context.close()
    errors.check()
