"""A discussion becomes a 311 request, in real browsers: a resident of Old City escalates a thread
(choosing the type, answering its questions), staff acknowledge it in the case desk and the
resident's open thread page and request page show the new status without a reload; staff close
it, and the resident answers the survey on the request's page. And a resident about to report a
problem is shown the same problem already reported nearby, and says "me too" instead."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from engagement.models import Case, SurveyResponse
from engagement.services import file_case
from tests.browser.conftest import PageErrors, signed_in_context
from tests.browser.test_forum_journey import click_on_map
from tests.factories import (
    POTHOLE_QUESTIONS,
    CityStaffFactory,
    forum_member,
    inside,
    service_type,
    thread,
)

pytestmark = pytest.mark.browser

LIVE_TIMEOUT_MS = 3_000


def open_live(context, errors: PageErrors, url: str):
    page = context.new_page()
    errors.watch(page)
    page.goto(url)
    page.wait_for_selector("body[data-live-state='open']")
    page.evaluate("window.__notReloaded = true")
    return page


def desk_status(desk, *, status: str, note: str, resolution: str = "") -> None:
    form = desk.locator("form", has=desk.get_by_role("button", name="Change status"))
    form.get_by_label("New status").select_option(label=status)
    form.get_by_label("Note").fill(note)
    if resolution:
        form.get_by_label("Resolution (when closing)").select_option(label=resolution)
    form.get_by_role("button", name="Change status").click()


def test_a_thread_escalated_to_311_is_worked_live_and_rated(browser, asgi_server, philadelphia):
    old_city = philadelphia["Old City"]
    pothole = service_type(
        "pothole",
        name="Pothole",
        group="Streets",
        forum_tags="potholes",
        questions=POTHOLE_QUESTIONS,
    )
    service_type(
        "streetlight",
        name="Streetlight out",
        group="Streets",
        department=pothole.department,
        forum_tags="lighting",
        questions=[{"code": "pole", "prompt": "Pole number", "datatype": "string"}],
    )
    resident = forum_member(old_city)
    lat, lon = inside(old_city)
    discussion = thread(
        old_city,
        author=resident,
        title="Crater on Race Street",
        body="Two cyclists fell this week.",
        tags="potholes",
        lat=lat,
        lon=lon,
    )
    staff = CityStaffFactory(
        department=pothole.department, user__permissions=["wagtailadmin.access_admin"]
    ).user

    resident_context = signed_in_context(browser, asgi_server, resident)
    staff_context = signed_in_context(browser, asgi_server, staff)
    errors = PageErrors()
    try:
        # The resident escalates the thread from its page.
        page = resident_context.new_page()
        errors.watch(page)
        page.goto(discussion.get_absolute_url())
        page.get_by_role("link", name="Escalate to 311").click()
        page.wait_for_url(re.compile(r".*/cases/escalate/\d+/$"))  # loaded, scripts ready
        expect(page.get_by_role("heading", name="Send this discussion to 311")).to_be_visible()
        kind = page.get_by_label("What is the problem?")
        expect(kind).to_have_value("pothole")
        expect(page.get_by_label("Describe the problem")).to_have_value(
            re.compile("Crater on Race Street")
        )
        # Another type shows its own questions, without leaving the page; then back.
        kind.select_option(label="Streetlight out")
        expect(page.get_by_label("Pole number")).to_be_visible()
        expect(page.get_by_text("How big is it?")).to_have_count(0)
        kind.select_option(label="Pothole")
        page.get_by_label("Larger than a plate").check()
        page.get_by_label("Bike lane").check()
        page.get_by_role("button", name="Send to 311").click()
        page.wait_for_url(re.compile(r".*/cases/\d{2}-\d+/$"))
        case = Case.objects.get(thread=discussion)
        assert case.answers == {"size": "large", "lanes": ["bike"]}
        expect(page.locator(".messages")).to_contain_text(case.tracking_number)
        expect(page.locator("[data-case-labels]")).to_contain_text("Open")

        # The resident keeps the thread page and the request's page open.
        thread_page = open_live(resident_context, errors, discussion.get_absolute_url())
        panel = thread_page.locator("[data-case-panel]")
        expect(panel).to_contain_text(case.tracking_number)
        expect(panel.locator("[data-case-status]")).to_have_text("Open")
        case_page = open_live(resident_context, errors, case.get_absolute_url())
        tracker = open_live(resident_context, errors, "/cases/")
        row = tracker.locator(f'.case-row[data-tracking-number="{case.tracking_number}"]')
        expect(row.locator("[data-case-status]")).to_have_text("Open")

        # Staff acknowledge it in the case desk.
        desk = staff_context.new_page()
        errors.watch(desk)
        desk.goto(f"/admin/case-desk/case/{case.tracking_number}/")
        desk_status(desk, status="Acknowledged", note="A crew is booked for Tuesday.")
        expect(desk.locator("body")).to_contain_text("Acknowledged")

        # Both open pages show it, without a reload.
        expect(panel.locator("[data-case-status]")).to_have_text(
            "Acknowledged", timeout=LIVE_TIMEOUT_MS
        )
        expect(panel.locator("[data-case-timeline]")).to_contain_text(
            "A crew is booked for Tuesday."
        )
        expect(thread_page.locator("#live-announcer")).to_contain_text("is now acknowledged")
        assert thread_page.evaluate("window.__notReloaded === true"), "the thread page reloaded"
        expect(case_page.locator("[data-case-status]")).to_have_text(
            "Acknowledged", timeout=LIVE_TIMEOUT_MS
        )
        expect(case_page.locator("[data-case-timeline]")).to_contain_text("booked for Tuesday")
        assert case_page.evaluate("window.__notReloaded === true"), "the case page reloaded"
        expect(row.locator("[data-case-status]")).to_have_text(
            "Acknowledged", timeout=LIVE_TIMEOUT_MS
        )
        expect(row).to_have_class(re.compile("status-acknowledged"))
        assert tracker.evaluate("window.__notReloaded === true"), "the tracker reloaded"

        # A request filed elsewhere (through the API) is counted on the open tracker.
        token = next(c["value"] for c in resident_context.cookies() if c["name"] == "csrftoken")
        filed = resident_context.request.post(
            "/api/v1/cases/",
            data={
                "service_type": "pothole",
                "lat": lat,
                "lon": lon,
                "description": "Another one, further down Race Street.",
                "answers": {"size": "small"},
            },
            headers={"X-CSRFToken": token, "Referer": tracker.url},
        )
        assert filed.status == 201, filed.text()
        expect(tracker.locator("[data-tracker-notice]")).to_contain_text(
            "A new request was filed", timeout=LIVE_TIMEOUT_MS
        )
        tracker.close()

        # Staff close it as fixed; the thread page shows that too.
        desk_status(desk, status="Closed", note="Filled and rolled.", resolution="Fixed")
        expect(panel.locator("[data-case-status]")).to_have_text("Closed", timeout=LIVE_TIMEOUT_MS)
        expect(panel.locator("[data-case-labels]")).to_contain_text("Fixed")
        assert thread_page.evaluate("window.__notReloaded === true")

        # The resident answers the survey on the request's page, once.
        notice = case_page.locator("[data-case-notice]")
        expect(notice).to_contain_text("is now closed: fixed", timeout=LIVE_TIMEOUT_MS)
        notice.get_by_role("link", name="Reload the page").click()
        survey = case_page.locator("#survey")
        survey.get_by_role("group", name="Was the problem fixed?").get_by_label("Yes").check()
        survey.get_by_label("4", exact=True).check()
        survey.get_by_label("Anything else? (optional)").fill("Quick work, thank you.")
        survey.get_by_role("button", name="Send my answer").click()
        expect(case_page.locator("#survey")).to_contain_text("Thank you for answering")
        answer = SurveyResponse.objects.get(case=case, user=resident)
        assert (answer.fixed, answer.satisfaction) == (True, 4)
    finally:
        resident_context.close()
        staff_context.close()
    errors.check()


def test_a_resident_about_to_report_is_shown_the_same_problem_nearby_and_says_me_too(
    browser, asgi_server, philadelphia
):
    old_city = philadelphia["Old City"]
    pothole = service_type("pothole", name="Pothole", group="Streets", questions=POTHOLE_QUESTIONS)
    lat, lon = inside(old_city)
    existing = file_case(
        service_type=pothole,
        reporter=forum_member(old_city),
        lat=lat,
        lon=lon,
        description="Deep pothole by the school.",
        answers={"size": "large"},
    ).case
    resident = forum_member(old_city)
    context = signed_in_context(browser, asgi_server, resident)
    errors = PageErrors()
    try:
        page = context.new_page()
        errors.watch(page)
        page.goto("/cases/new/")
        page.get_by_role("group", name="Streets").get_by_label("Pothole").check()
        page.get_by_role("button", name="Continue").click()
        expect(page.get_by_text("How big is it? (required)")).to_be_visible()
        expect(page.locator("[data-nearby-list] li")).to_have_count(0)

        click_on_map(page, "pin_map", lat, lon)
        expect(page.locator("input[name=lat]")).to_have_value(re.compile(r"^39\.\d+"))
        nearby = page.locator("[data-nearby-list] li")
        expect(nearby).to_have_count(1)
        expect(nearby).to_contain_text(existing.tracking_number)
        expect(page.locator("[data-nearby-status]")).to_contain_text(
            "1 open request of this type nearby"
        )
        nearby.get_by_role("button", name=re.compile("^Me too")).click()
        page.wait_for_url(f"**{existing.get_absolute_url()}")
        expect(page.locator(".messages")).to_contain_text("your “me too” counts")
        expect(page.locator("[data-case-supporters]")).to_have_text("2")
        assert Case.objects.count() == 1
    finally:
        context.close()
    errors.check()
