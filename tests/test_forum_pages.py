"""The discussion pages without JavaScript: feeds, composing, the thread page and its actions."""

from __future__ import annotations

import io
import re
from datetime import timedelta
from xml.etree import ElementTree as ET

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from forums import services
from forums.models import (
    Appeal,
    Flag,
    Follow,
    Reply,
    Revision,
    Thread,
    ThreadPhoto,
    Visibility,
    Vote,
    hot_score,
)
from neighborhoods.models import Membership
from tests import factories as f
from tests.factories import signed_in

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media_root")]

ATOM = "{http://www.w3.org/2005/Atom}"


def jpeg(gps: tuple[float, float] | None = None, name: str = "photo.jpg") -> SimpleUploadedFile:
    """A small JPEG, with an EXIF GPS position when ``gps`` is given."""
    exif = Image.Exif()
    if gps is not None:

        def dms(value: float):
            value = abs(value)
            degrees = int(value)
            minutes = int((value - degrees) * 60)
            return (degrees, minutes, round(((value - degrees) * 60 - minutes) * 60, 4))

        lat, lon = gps
        exif[0x8825] = {
            1: "N" if lat >= 0 else "S",
            2: dms(lat),
            3: "E" if lon >= 0 else "W",
            4: dms(lon),
        }
    out = io.BytesIO()
    Image.new("RGB", (48, 36), (30, 120, 200)).save(out, "JPEG", exif=exif)
    return SimpleUploadedFile(name, out.getvalue(), content_type="image/jpeg")


def feed_url(neighborhood, **query) -> str:
    url = reverse("forums:neighborhood", args=[neighborhood.slug])
    if query:
        url += "?" + "&".join(f"{k}={v}" for k, v in query.items())
    return url


def action_url(thread, action: str) -> str:
    return reverse("forums:thread-action", args=[thread.neighborhood.slug, thread.pk, action])


def reply_action_url(reply, action: str) -> str:
    thread = reply.thread
    return reverse(
        "forums:reply-action", args=[thread.neighborhood.slug, thread.pk, reply.pk, action]
    )


def new_thread_data(neighborhood, **overrides) -> dict:
    data = {
        "title": "Pothole swallowing bikes on Race Street",
        "body": "Right by the **bike lane**; two falls this week.",
        "category": f.forum_category("streets").pk,
        "tags": "potholes, bikes",
        "lat": "",
        "lon": "",
        "website": "",
    }
    data.update(overrides)
    return data


def html_of(response) -> str:
    return response.content.decode()


# The neighborhood feed ------------------------------------------------------------------------


def test_feed_rows_show_title_category_tags_author_counts_and_pinned_mark(client):
    n = f.NeighborhoodFactory()
    author = f.forum_member(n)
    author.engagement_profile.display_name = "Rosa from Elfreth's"
    author.engagement_profile.save()
    thread = f.thread(n, author=author, tags="lighting, safety", title="Dark corner at 2nd")
    f.reply(thread)
    services.vote(f.forum_member(n), thread=thread)
    pinned = f.thread(n, title="Block party on Saturday", category=f.forum_category("events"))
    moderator = f.forum_member(n, role=Membership.Role.MODERATOR)
    services.moderate(moderator, "pin", thread=pinned, reason="")

    html = html_of(client.get(feed_url(n)))
    assert "Dark corner at 2nd" in html and "Rosa from Elfreth&#x27;s" in html
    assert "#lighting" in html and "#safety" in html
    row = html[html.index(f'id="thread-{thread.pk}"') :]
    assert re.search(r"data-thread-votes>1<", row) and re.search(r"data-thread-replies>1<", row)
    # Pinned threads lead the neighborhood's feed and are marked.
    assert html.index("Block party on Saturday") < html.index("Dark corner at 2nd")
    assert '<span class="badge pinned">Pinned</span>' in html
    assert f'data-live-topic="neighborhood:{n.slug}"' in html
    assert reverse("forums:feed-atom", args=[n.slug]) in html


def test_feed_sorts_filters_and_paginates(client, settings):
    settings.ENGAGEMENT = {"FORUM_PAGE_SIZE": 2}
    n = f.NeighborhoodFactory()
    old = f.thread(n, title="Older but loved", tags="trees")
    Thread.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=3))
    for voter in [f.forum_member(n) for _ in range(3)]:
        services.vote(voter, thread=old)
    f.thread(n, title="Middle child", tags="trees")
    f.thread(n, title="Newest question", category=f.forum_category("general"))

    new = html_of(client.get(feed_url(n, sort="new")))
    assert new.index("Newest question") < new.index("Middle child")
    assert "Older but loved" not in new  # on page 2
    assert "Page 1 of 2" in new and 'aria-current="page">New<' in new
    page2 = html_of(client.get(feed_url(n, sort="new", page=2)))
    assert "Older but loved" in page2

    top = html_of(client.get(feed_url(n, sort="top", period="week")))
    assert top.index("Older but loved") < top.index("Newest question")
    assert html_of(client.get(feed_url(n, sort="top", period="day"))).count("thread-row") == 2

    tagged = html_of(client.get(feed_url(n, tag="%23Trees", sort="new")))
    assert 'aria-current="page">New<' in tagged
    assert "Older but loved" in tagged and "Middle child" in tagged
    assert "Newest question" not in tagged
    asked = html_of(client.get(feed_url(n, category="general")))
    assert "Newest question" in asked and "Middle child" not in asked


def test_feed_offers_to_start_a_discussion_or_says_why_not(client):
    n = f.NeighborhoodFactory()
    new_url = reverse("forums:new", args=[n.slug])
    assert "Sign in to take part" in html_of(client.get(feed_url(n)))
    stranger = f.VerifiedUserFactory()
    html = html_of(signed_in(stranger).get(feed_url(n)))
    assert f"Join {n.name}" in html and new_url not in html
    member = f.forum_member(n)
    assert f'href="{new_url}">Start a discussion' in html_of(signed_in(member).get(feed_url(n)))


def test_my_feed_covers_my_neighborhoods_only_and_needs_sign_in(client):
    mine, other = f.NeighborhoodFactory(), f.NeighborhoodFactory()
    member = f.forum_member(mine)
    f.thread(mine, title="In my neighborhood")
    f.thread(other, title="Somewhere else")
    html = html_of(signed_in(member).get(reverse("forums:mine")))
    assert "In my neighborhood" in html and "Somewhere else" not in html
    assert mine.name in html
    response = client.get(reverse("forums:mine"))
    assert response.status_code == 302 and "login" in response["Location"]


def test_upvote_button_toggles_and_returns_to_the_feed():
    n = f.NeighborhoodFactory()
    thread = f.thread(n)
    member = f.forum_member(n)
    client = signed_in(member)
    html = html_of(client.get(feed_url(n)))
    assert 'aria-pressed="false"' in html and action_url(thread, "vote") in html

    response = client.post(action_url(thread, "vote"), {"next": feed_url(n)})
    assert response.status_code == 302 and response["Location"] == feed_url(n)
    thread.refresh_from_db()
    assert thread.vote_count == 1
    html = html_of(client.get(feed_url(n)))
    assert 'aria-pressed="true"' in html and action_url(thread, "unvote") in html

    client.post(action_url(thread, "unvote"))
    thread.refresh_from_db()
    assert thread.vote_count == 0 and not Vote.objects.exists()


def test_next_never_leads_to_another_site():
    thread = f.thread()
    client = signed_in(f.forum_member(thread.neighborhood))
    response = client.post(action_url(thread, "vote"), {"next": "https://evil.example/"})
    assert response["Location"] == thread.get_absolute_url()


# Composing --------------------------------------------------------------------------------------


def test_member_posts_a_thread_with_photos_and_a_pin_without_javascript():
    n = f.NeighborhoodFactory()
    member = f.forum_member(n)
    lat, lon = f.inside(n)
    page = signed_in(member).get(reverse("forums:new", args=[n.slug]))
    html = html_of(page)
    assert "Markdown works" in html
    assert 'name="photos" accept="image/jpeg,image/png,image/webp" multiple' in html
    assert re.search(r'class="hp-field" aria-hidden="true">.*tabindex="-1"', html)
    assert 'autocomplete="off" id="id_website"' in html

    response = signed_in(member).post(
        reverse("forums:new", args=[n.slug]),
        new_thread_data(n, lat=lat, lon=lon, photos=[jpeg(), jpeg(name="second.jpg")]),
    )
    thread = Thread.objects.get()
    assert response.status_code == 302 and response["Location"] == thread.get_absolute_url()
    assert (thread.lat, thread.lon) == (round(lat, 6), round(lon, 6))
    assert sorted(thread.tags.names()) == ["bikes", "potholes"]
    assert ThreadPhoto.objects.filter(thread=thread).count() == 2

    page = html_of(Client().get(thread.get_absolute_url()))
    assert "<strong>bike lane</strong>" in page
    assert page.count('class="thread-photos"') == 1 and page.count("<img ") == 2
    assert 'data-pin-lat="' in page and "engagementThreadPin" in page


def test_photo_position_is_offered_to_the_author_only_and_never_set_silently():
    n = f.NeighborhoodFactory()
    author = f.forum_member(n)
    signed_in(author).post(
        reverse("forums:new", args=[n.slug]), new_thread_data(n, photos=[jpeg(gps=f.inside(n))])
    )
    thread = Thread.objects.get()
    assert thread.lat is None and thread.lon is None
    offer = "Use the location of your photo as the pin?"
    assert offer in html_of(signed_in(author).get(thread.get_absolute_url()))
    assert offer not in html_of(signed_in(f.forum_member(n)).get(thread.get_absolute_url()))
    assert offer not in html_of(Client().get(thread.get_absolute_url()))

    photo = ThreadPhoto.objects.get()
    signed_in(author).post(action_url(thread, "use-photo-location"), {"photo": photo.pk})
    thread.refresh_from_db()
    assert thread.lat == pytest.approx(f.inside(n)[0], abs=1e-4)
    assert offer not in html_of(signed_in(author).get(thread.get_absolute_url()))


def test_errors_are_shown_per_field_and_nothing_typed_is_lost():
    n = f.NeighborhoodFactory()
    member = f.forum_member(n)
    response = signed_in(member).post(
        reverse("forums:new", args=[n.slug]),
        new_thread_data(n, body="", category="", tags="not a tag!", lat="10", lon="10"),
    )
    assert response.status_code == 400
    html = html_of(response)
    assert 'value="Pothole swallowing bikes on Race Street"' in html
    assert "Write something." in html and "Choose a category." in html
    assert f"The pin must be in {n.name}" in html
    assert "is not a tag" in html and 'value="not a tag!"' in html
    assert 'aria-invalid="true"' in html
    assert not Thread.objects.exists()


def test_checking_for_similar_discussions_without_javascript_keeps_the_draft():
    n = f.NeighborhoodFactory()
    existing = f.thread(n, title="Streetlight out at 2nd and Arch")
    member = f.forum_member(n)
    response = signed_in(member).get(
        reverse("forums:new", args=[n.slug]),
        {"check": "1", "title": "Streetlight out on 2nd", "body": "My draft text"},
    )
    html = html_of(response)
    assert response.status_code == 200
    assert 'formmethod="get"' in html
    assert existing.get_absolute_url() in html and "Support this instead" in html
    assert 'value="Streetlight out on 2nd"' in html and "My draft text" in html
    assert reverse("api-threads-similar") in html  # the script asks the API as you type


def test_honeypot_refuses_the_post():
    n = f.NeighborhoodFactory()
    response = signed_in(f.forum_member(n)).post(
        reverse("forums:new", args=[n.slug]), new_thread_data(n, website="http://spam.example")
    )
    assert response.status_code == 400
    assert "could not be accepted" in html_of(response)
    assert not Thread.objects.exists()


def test_rate_limited_posting_says_when_to_try_again(settings, frozen_rate_window):
    settings.ENGAGEMENT = {"FORUM_THREAD_RATE": (1, 3600)}
    n = f.NeighborhoodFactory()
    client = signed_in(f.forum_member(n))
    url = reverse("forums:new", args=[n.slug])
    assert client.post(url, new_thread_data(n)).status_code == 302
    response = client.post(url, new_thread_data(n, title="Another pothole, same street"))
    assert response.status_code == 429
    assert re.search(r"Try again in \d+ min \d+ s", html_of(response))
    assert 'value="Another pothole, same street"' in html_of(response)


def test_composing_is_refused_with_the_reason(client):
    n = f.NeighborhoodFactory()
    url = reverse("forums:new", args=[n.slug])
    assert "login" in client.get(url)["Location"]
    response = signed_in(f.VerifiedUserFactory()).get(url)
    assert response.status_code == 403 and f"Join {n.name}" in html_of(response)


# The thread page --------------------------------------------------------------------------------


def test_reply_with_a_quote_links_to_the_quoted_reply():
    thread = f.thread()
    first = f.reply(thread, body="The lamp was fixed once in May.")
    member = f.forum_member(thread.neighborhood)
    client = signed_in(member)
    page = html_of(client.get(thread.get_absolute_url(), {"quote": first.pk}))
    assert f'name="quote" value="{first.pk}"' in page and "Quoting" in page
    response = client.post(
        action_url(thread, "reply"), {"body": "And broke again in June.", "quote": first.pk}
    )
    reply = Reply.objects.get(body="And broke again in June.")
    assert response["Location"] == f"{thread.get_absolute_url()}#reply-{reply.pk}"
    page = html_of(client.get(thread.get_absolute_url()))
    quote = page[page.index(f'id="reply-{reply.pk}"') :]
    assert f'<a href="#reply-{first.pk}">' in quote and "The lamp was fixed once in May." in quote


def test_a_reply_with_errors_keeps_its_text_and_honeypot_refuses():
    thread = f.thread()
    client = signed_in(f.forum_member(thread.neighborhood))
    response = client.post(action_url(thread, "reply"), {"body": " ", "quote": ""})
    assert response.status_code == 400 and "Write something." in html_of(response)
    response = client.post(action_url(thread, "reply"), {"body": "Hello", "website": "x"})
    assert response.status_code == 400 and "could not be accepted" in html_of(response)
    assert ">Hello</textarea>" in html_of(response).replace("\n", "")
    assert not Reply.objects.exists()


def test_thread_page_shows_official_answer_first_with_badge_and_department():
    thread = f.thread()
    f.reply(thread, body="Me too")
    staff = f.CityStaffFactory(department__name="Streets Department").user
    answer = f.reply(thread, author=staff, body="A crew fixes it on **Tuesday**.")
    client = signed_in(thread.author)
    page = html_of(client.get(thread.get_absolute_url()))
    assert "Mark as the answer" in page  # the author may choose an official reply
    client.post(reply_action_url(answer, "answer"))
    page = html_of(Client().get(thread.get_absolute_url()))
    assert page.index("Official answer") < page.index("Me too")
    assert '<span class="badge official">Official</span>' in page
    assert "Streets Department" in page
    assert page.count("A crew fixes it on <strong>Tuesday</strong>.") == 2


def test_thread_support_toggles_and_shows_the_count():
    thread = f.thread()
    client = signed_in(f.forum_member(thread.neighborhood))
    client.post(action_url(thread, "vote"))
    page = html_of(client.get(thread.get_absolute_url()))
    assert "<strong data-thread-votes>1</strong>" in page and 'aria-pressed="true"' in page
    reply = f.reply(thread)
    client.post(reply_action_url(reply, "vote"))
    reply.refresh_from_db()
    assert reply.vote_count == 1
    client.post(reply_action_url(reply, "unvote"))
    reply.refresh_from_db()
    assert reply.vote_count == 0


def test_follow_mute_and_unfollow():
    thread = f.thread()
    member = f.forum_member(thread.neighborhood)
    client = signed_in(member)
    assert "You do not follow this discussion." in html_of(client.get(thread.get_absolute_url()))
    client.post(action_url(thread, "follow"), {"state": "following"})
    assert Follow.objects.get(user=member, thread=thread).muted is False
    client.post(action_url(thread, "follow"), {"state": "muted"})
    assert "You muted this discussion." in html_of(client.get(thread.get_absolute_url()))
    client.post(action_url(thread, "follow"), {"state": "none"})
    assert not Follow.objects.filter(user=member, thread=thread).exists()


def test_flagging_thanks_the_flagger_and_a_moderators_flag_hides_at_once():
    thread = f.thread()
    reply = f.reply(thread)
    member = f.forum_member(thread.neighborhood)
    response = signed_in(member).post(
        reply_action_url(reply, "flag"), {"reason": "spam", "note": "Ad"}, follow=True
    )
    assert "moderators will review it" in html_of(response)
    assert Flag.objects.filter(reply=reply, reason="spam").exists()
    moderator = f.forum_member(thread.neighborhood, role=Membership.Role.MODERATOR)
    page = html_of(signed_in(moderator).get(thread.get_absolute_url()))
    assert "Flagged 1 time" in page
    signed_in(moderator).post(reply_action_url(reply, "flag"), {"reason": "abuse"})
    reply.refresh_from_db()
    assert reply.visibility == Visibility.PENDING
    assert "hidden pending review" in html_of(Client().get(thread.get_absolute_url()))


def test_author_of_hidden_reply_sees_why_and_may_appeal_once():
    thread = f.thread()
    reply = f.reply(thread, body="My honest opinion")
    moderator = f.forum_member(thread.neighborhood, role=Membership.Role.MODERATOR)
    signed_in(moderator).post(
        reply_action_url(reply, "moderate"), {"do": "hide", "reason": "Personal attack"}
    )
    reply.refresh_from_db()
    assert reply.visibility == Visibility.HIDDEN

    public = html_of(Client().get(thread.get_absolute_url()))
    assert "My honest opinion" not in public and "hidden pending review" in public
    author = signed_in(reply.author)
    page = html_of(author.get(thread.get_absolute_url()))
    assert "Reason: Personal attack" in page and "You may appeal once" in page
    author.post(reply_action_url(reply, "appeal"), {"text": "It was not an attack."})
    assert Appeal.objects.filter(reply=reply).count() == 1
    page = html_of(author.get(thread.get_absolute_url()))
    assert "You may appeal once" not in page and "You appealed" in page
    response = author.post(reply_action_url(reply, "appeal"), {"text": "Again"}, follow=True)
    assert "already appealed" in html_of(response)
    assert Appeal.objects.filter(reply=reply).count() == 1


def test_moderator_hides_a_thread_and_only_its_author_and_moderators_can_read_it(client):
    thread = f.thread(title="Rude rant")
    moderator = f.forum_member(thread.neighborhood, role=Membership.Role.MODERATOR)
    response = signed_in(moderator).post(
        action_url(thread, "moderate"), {"do": "hide", "reason": "Off topic"}
    )
    assert response.status_code == 302
    assert client.get(thread.get_absolute_url()).status_code == 404
    assert "Rude rant" not in html_of(client.get(feed_url(thread.neighborhood)))
    page = html_of(signed_in(thread.author).get(thread.get_absolute_url()))
    assert "Hidden by a moderator" in page and "Reason: Off topic" in page
    assert signed_in(moderator).get(thread.get_absolute_url()).status_code == 200


def test_moderation_needs_a_reason_and_moderator_rights():
    thread = f.thread()
    moderator = f.forum_member(thread.neighborhood, role=Membership.Role.MODERATOR)
    response = signed_in(moderator).post(
        action_url(thread, "moderate"), {"do": "lock", "reason": ""}, follow=True
    )
    assert "Say why" in html_of(response)
    member = f.forum_member(thread.neighborhood)
    response = signed_in(member).post(
        action_url(thread, "moderate"), {"do": "lock", "reason": "No"}
    )
    assert response.status_code == 403 and "Only moderators" in html_of(response)
    thread.refresh_from_db()
    assert not thread.is_locked


def test_a_locked_thread_stops_replies():
    thread = f.thread()
    moderator = f.forum_member(thread.neighborhood, role=Membership.Role.MODERATOR)
    signed_in(moderator).post(action_url(thread, "moderate"), {"do": "lock", "reason": "Answered"})
    member = signed_in(f.forum_member(thread.neighborhood))
    page = html_of(member.get(thread.get_absolute_url()))
    assert "This thread is locked; no new replies." in page
    assert action_url(thread, "reply") not in page
    response = member.post(action_url(thread, "reply"), {"body": "Still here"})
    assert response.status_code == 403 and "locked" in html_of(response)
    assert not Reply.objects.exists()


def test_moderator_moves_and_merges_threads():
    n, elsewhere = f.NeighborhoodFactory(), f.NeighborhoodFactory()
    staff = f.CityStaffFactory().user
    original = f.thread(n, title="Trash pickup missed on Monday")
    duplicate = f.thread(n, title="No trash pickup this week")
    voter = f.forum_member(n)
    services.vote(voter, thread=duplicate)
    client = signed_in(staff)
    response = client.post(
        action_url(duplicate, "moderate"),
        {"do": "merge", "into": str(original.pk), "reason": "Same issue"},
    )
    assert response["Location"] == original.get_absolute_url()
    original.refresh_from_db()
    assert original.vote_count == 1 and original.replies.count() == 1

    moved = f.thread(n, title="Belongs next door")
    client.post(
        action_url(moved, "moderate"),
        {"do": "move", "neighborhood": elsewhere.slug, "reason": "Wrong neighborhood"},
    )
    moved.refresh_from_db()
    assert moved.neighborhood == elsewhere
    old_url = reverse("forums:thread", args=[n.slug, moved.pk])
    response = Client().get(old_url)
    assert response.status_code == 301 and response["Location"] == moved.get_absolute_url()


def test_a_merged_thread_redirects_to_the_original(client):
    n = f.NeighborhoodFactory()
    original = f.thread(n, title="Original issue")
    duplicate = f.thread(n, title="Same issue again")
    services.merge_threads(duplicate, original, actor=f.CityStaffFactory().user, reason="Dup")
    response = client.get(duplicate.get_absolute_url())
    assert response.status_code == 301 and response["Location"] == original.get_absolute_url()


def test_wrong_slug_redirects_and_missing_or_deleted_threads_are_not_found(client):
    thread = f.thread()
    wrong = reverse("forums:thread", args=["somewhere-else", thread.pk])
    response = client.get(wrong)
    assert response.status_code == 301 and response["Location"] == thread.get_absolute_url()
    assert client.get(reverse("forums:thread", args=["x", 999_999])).status_code == 404
    signed_in(thread.author).post(action_url(thread, "delete"))
    thread.refresh_from_db()
    assert thread.deleted_at is not None
    assert client.get(thread.get_absolute_url()).status_code == 404
    assert signed_in(thread.author).get(thread.get_absolute_url()).status_code == 404


def test_actions_are_post_only_csrf_protected_and_known():
    thread = f.thread()
    member = f.forum_member(thread.neighborhood)
    client = signed_in(member)
    assert client.get(action_url(thread, "vote")).status_code == 405
    assert client.post(action_url(thread, "explode")).status_code == 404
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(member)
    assert strict.post(action_url(thread, "vote")).status_code == 403
    thread.refresh_from_db()
    assert thread.vote_count == 0
    response = Client().post(action_url(thread, "vote"))
    assert response.status_code == 302 and "login" in response["Location"]


def test_strangers_get_a_403_page_with_the_reason():
    thread = f.thread()
    stranger = signed_in(f.VerifiedUserFactory())
    response = stranger.post(action_url(thread, "vote"))
    assert response.status_code == 403
    assert f"Join {thread.neighborhood.name}" in html_of(response)
    response = stranger.get(reverse("forums:edit", args=[thread.neighborhood.slug, thread.pk]))
    assert response.status_code == 403 and "Only the author" in html_of(response)


def test_author_edits_thread_and_reply_and_moderators_see_the_history():
    thread = f.thread(title="Broken bench in the park")
    client = signed_in(thread.author)
    edit = reverse("forums:edit", args=[thread.neighborhood.slug, thread.pk])
    assert 'value="Broken bench in the park"' in html_of(client.get(edit))
    response = client.post(
        edit,
        {
            "title": "Broken bench in Franklin Square",
            "body": thread.body,
            "category": thread.category_id,
            "tags": "parks",
            "lat": "",
            "lon": "",
        },
    )
    assert response.status_code == 302
    page = html_of(Client().get(thread.get_absolute_url()))
    assert "Broken bench in Franklin Square" in page and "edited" in page

    reply = f.reply(thread, author=thread.author, body="First words")
    page = html_of(client.get(thread.get_absolute_url(), {"edit": reply.pk}))
    assert reply_action_url(reply, "edit") in page and "First words</textarea>" in page
    client.post(reply_action_url(reply, "edit"), {"body": "Better words"})
    reply.refresh_from_db()
    assert reply.body == "Better words" and reply.edited_at is not None
    assert Revision.objects.count() == 2

    moderator = f.forum_member(thread.neighborhood, role=Membership.Role.MODERATOR)
    page = html_of(signed_in(moderator).get(thread.get_absolute_url()))
    assert "Edit history" in page and "Broken bench in the park" in page
    assert "Edit history" not in html_of(Client().get(thread.get_absolute_url()))


def test_a_deleted_reply_keeps_its_place_as_a_placeholder():
    thread = f.thread()
    reply = f.reply(thread, body="Regrettable words")
    signed_in(reply.author).post(reply_action_url(reply, "delete"))
    page = html_of(Client().get(thread.get_absolute_url()))
    assert f'id="reply-{reply.pk}"' in page and "This reply was deleted." in page
    assert "Regrettable words" not in page


def test_organization_admins_cosign():
    thread = f.thread()
    organization = f.OrganizationFactory(
        name="Old City Civic", verified=True, neighborhoods=[thread.neighborhood]
    )
    admin = f.OrganizationMembershipFactory(organization=organization, admin=True).user
    client = signed_in(admin)
    assert "Co-sign as an organization" in html_of(client.get(thread.get_absolute_url()))
    client.post(action_url(thread, "cosign"), {"organization": organization.pk})
    assert "Co-signed by" in html_of(Client().get(thread.get_absolute_url()))
    response = signed_in(f.VerifiedUserFactory()).post(
        action_url(thread, "cosign"), {"organization": organization.pk}
    )
    assert response.status_code == 403


def test_escalation_is_suggested_when_enough_verified_neighbours_support(settings):
    """The notice comes from the 311 app's panel on the thread page (forums.hooks)."""
    settings.ENGAGEMENT = {"FORUM_ESCALATION_SUPPORTERS": 2}
    thread = f.thread()
    text = "it can be escalated to 311"
    assert text not in html_of(Client().get(thread.get_absolute_url()))
    for _ in range(2):
        services.vote(f.forum_member(thread.neighborhood), thread=thread)
    assert text in html_of(Client().get(thread.get_absolute_url()))


# Search, Atom and the neighborhood page ---------------------------------------------------------


def test_search_finds_a_thread_by_tag(client):
    n = f.NeighborhoodFactory()
    f.thread(n, title="Where do I take old paint?", tags="recycling")
    f.thread(n, title="Broken swing")
    html = html_of(client.get(reverse("forums:search"), {"q": "recycling"}))
    assert "Where do I take old paint?" in html and "Broken swing" not in html
    assert "1 discussion found" in html


def test_atom_feed_parses_and_leaves_out_hidden_threads(client):
    n = f.NeighborhoodFactory()
    visible = f.thread(n, title="Visible one", body="Some **bold** words", tags="lighting")
    hidden = f.thread(n, title="Hidden one")
    services.moderate(f.CityStaffFactory().user, "hide", thread=hidden, reason="Spam")
    response = client.get(reverse("forums:feed-atom", args=[n.slug]))
    assert response["Content-Type"].startswith("application/atom+xml")
    root = ET.fromstring(response.content)
    entries = root.findall(f"{ATOM}entry")
    assert [e.findtext(f"{ATOM}title") for e in entries] == ["Visible one"]
    summary = entries[0].find(f"{ATOM}summary")
    assert summary.text == "Some bold words" and summary.get("type") in (None, "text")
    terms = {c.get("term") for c in entries[0].findall(f"{ATOM}category")}
    assert terms == {"Streets and sidewalks", "lighting"}
    assert entries[0].find(f"{ATOM}link").get("href").endswith(visible.get_absolute_url())


def test_atom_feed_queries_do_not_grow_with_threads(client):
    n = f.NeighborhoodFactory()
    author = f.forum_member(n)
    category = f.forum_category("streets")
    url = reverse("forums:feed-atom", args=[n.slug])
    _bulk_threads(n, 1, author=author, category=category)
    few = _count_queries(client, url)
    _bulk_threads(n, 80, author=author, category=category)
    assert _count_queries(client, url) == few


def test_neighborhood_page_has_a_discussions_panel(client):
    n = f.NeighborhoodFactory()
    for i in range(6):
        f.thread(n, title=f"Topic number {i}")
    html = html_of(client.get(n.get_absolute_url()))
    assert f"Discussions in {n.name}" in html
    assert html.count('class="thread-row') == 5 and "(more than 5)" in html
    assert reverse("forums:neighborhood", args=[n.slug]) in html
    assert "forums/forums.js" in html


def test_site_navigation_links_to_discussions(client):
    html = html_of(client.get(reverse("neighborhoods:list")))
    assert f'href="{reverse("forums:search")}">Discussions<' in html
    member = f.forum_member()
    html = html_of(signed_in(member).get(reverse("neighborhoods:list")))
    assert f'href="{reverse("forums:mine")}">Discussions<' in html


# Query counts -----------------------------------------------------------------------------------


def _bulk_threads(neighborhood, count: int, *, author, category) -> None:
    now = timezone.now()
    rows = []
    for i in range(count):
        created = now - timedelta(minutes=i)
        votes, replies = i % 7, i % 3
        rows.append(
            Thread(
                neighborhood=neighborhood,
                author=author,
                category=category,
                title=f"Bulk thread {i}",
                body="Body",
                body_html="<p>Body</p>",
                vote_count=votes,
                reply_count=replies,
                hot=hot_score(votes, replies, created),
                created_at=created,
                last_activity_at=created,
                is_pinned=i == 5,
            )
        )
    Thread.objects.bulk_create(rows, batch_size=500)


def _count_queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured.captured_queries)


@pytest.mark.parametrize("sort", ["hot", "top", "new", "discussed", "unanswered"])
def test_feed_queries_do_not_grow_with_threads(sort):
    few, many = f.NeighborhoodFactory(), f.NeighborhoodFactory()
    member = f.forum_member(few)
    Membership.objects.create(user=member, neighborhood=many, verified_at=timezone.now())
    category = f.forum_category("streets")
    client = signed_in(member)
    feeds = [feed_url(n, sort=sort, period="all") for n in (few, many)]
    mine = reverse("forums:mine") + f"?sort={sort}&period=all"

    def fill(neighborhood, count: int) -> None:
        _bulk_threads(neighborhood, count, author=member, category=category)
        first = Thread.objects.filter(neighborhood=neighborhood).order_by("pk")[0]
        first.tags.add("lighting")
        Vote.objects.create(user=member, thread=first)

    fill(few, 10)
    before = [_count_queries(client, url) for url in (feeds[0], mine)]
    fill(many, 1000)
    after = [_count_queries(client, url) for url in (feeds[1], mine)]
    assert before == after


def test_neighborhood_page_queries_do_not_grow_with_threads(client):
    n = f.NeighborhoodFactory()
    author = f.forum_member(n)
    category = f.forum_category("streets")
    _bulk_threads(n, 2, author=author, category=category)
    few = _count_queries(client, n.get_absolute_url())
    _bulk_threads(n, 200, author=author, category=category)
    assert _count_queries(client, n.get_absolute_url()) == few


@pytest.mark.parametrize("viewer", ["member", "moderator", "anonymous"])
def test_thread_page_queries_do_not_grow_with_replies(viewer):
    n = f.NeighborhoodFactory()
    staff = f.CityStaffFactory().user
    people = [f.forum_member(n) for _ in range(4)] + [staff]
    role = Membership.Role.MODERATOR if viewer == "moderator" else Membership.Role.MEMBER
    client = signed_in(f.forum_member(n, role=role)) if viewer != "anonymous" else Client()

    def thread_with(count: int) -> Thread:
        thread = f.thread(n, tags="lighting")
        first = f.reply(thread, author=people[0])
        f.reply(thread, author=staff, quote=first)
        now = timezone.now()
        Reply.objects.bulk_create(
            Reply(
                thread=thread,
                author=people[i % len(people)],
                body=f"Reply {i}",
                body_html=f"<p>Reply {i}</p>",
                quote=first if i % 4 == 0 else None,
                is_official=people[i % len(people)] == staff,
                department=staff.city_staff.department
                if people[i % len(people)] == staff
                else None,
                visibility=Visibility.PENDING if i % 9 == 0 else Visibility.VISIBLE,
                deleted_at=now if i % 11 == 0 else None,
                created_at=now + timedelta(seconds=i),
            )
            for i in range(count - 2)
        )
        Flag.objects.create(user=people[1], reply=first, reason="spam")
        return thread

    small, large = thread_with(3), thread_with(60)
    assert large.replies.count() == 60
    counts = [_count_queries(client, t.get_absolute_url()) for t in (small, large)]
    assert counts[0] == counts[1]
