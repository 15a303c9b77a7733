"""Forum moderation in the Wagtail admin: who gets in, what the queue shows, every action (through
the services, into the log), suspensions, history, categories, and constant query counts."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from forums import services
from forums.models import (
    Appeal,
    Flag,
    Follow,
    ForumCategory,
    ModerationAction,
    Reply,
    Suspension,
    Thread,
    Visibility,
    Vote,
)
from neighborhoods.models import Membership
from tests.factories import (
    CityStaffFactory,
    NeighborhoodFactory,
    VerifiedUserFactory,
    forum_category,
    forum_member,
    reply,
    thread,
)

pytestmark = pytest.mark.django_db

ADMIN = ["wagtailadmin.access_admin"]
QUEUE = "/admin/moderation/"
LOG = "/admin/moderation/log/"
SUSPENSIONS = "/admin/moderation/suspensions/"


@pytest.fixture
def place_a():
    return NeighborhoodFactory(name="Alder Park")


@pytest.fixture
def place_b():
    return NeighborhoodFactory(name="Birch Hill")


@pytest.fixture
def moderator(place_a):
    """A volunteer moderator of Alder Park whom the city let into the admin."""
    return forum_member(place_a, role=Membership.Role.MODERATOR, user__permissions=ADMIN)


@pytest.fixture
def staff():
    return CityStaffFactory(user__permissions=ADMIN).user


def signed_in(client, user):
    client.force_login(user)
    return client


def flag_by(target, *, reason: str = "abuse", note: str = "", people: int = 1) -> None:
    """``people`` residents flag a thread or a reply through the service."""
    key = "reply" if isinstance(target, Reply) else "thread"
    for _ in range(people):
        services.flag(VerifiedUserFactory(), reason=reason, note=note, **{key: target})


def act(client, target, form: str, *, next_url: str = "", **fields):
    kind = "reply" if isinstance(target, Reply) else "thread"
    data = {"form": form, **{f"{form}-{name}": value for name, value in fields.items()}}
    if next_url:
        data["next"] = next_url
    return client.post(f"/admin/moderation/{kind}/{target.pk}/", data)


# Who gets in ----------------------------------------------------------------------------------


def test_moderator_sees_their_neighborhoods_flags_only(client, moderator, place_a, place_b):
    flag_by(thread(place_a, title="Dumping behind the library"))
    flag_by(thread(place_b, title="Noise from the bar on Birch Street"))
    page = signed_in(client, moderator).get(QUEUE).content.decode()
    assert "Dumping behind the library" in page
    assert "Noise from the bar" not in page


def test_city_staff_see_every_neighborhood(client, staff, place_a, place_b):
    flag_by(thread(place_a, title="Dumping behind the library"))
    flag_by(thread(place_b, title="Noise from the bar on Birch Street"))
    page = signed_in(client, staff).get(QUEUE).content.decode()
    assert "Dumping behind the library" in page and "Noise from the bar" in page


def test_members_without_a_moderating_role_get_no_access(client, place_a):
    plain = forum_member(place_a)
    assert signed_in(client, plain).get(QUEUE).status_code == 302  # to the admin's sign-in
    editor = forum_member(place_a, user__permissions=ADMIN)
    signed_in(client, editor)
    for url in (QUEUE, LOG, SUSPENSIONS, f"/admin/moderation/thread/{thread(place_a).pk}/"):
        response = client.get(url)
        assert response.status_code == 302 and response.url == "/admin/"
    assert QUEUE not in client.get("/admin/").content.decode()  # no menu either


def test_the_menu_and_a_dashboard_panel_appear_to_moderators(client, moderator, place_a):
    flag_by(thread(place_a))
    home = signed_in(client, moderator).get("/admin/").content.decode()
    assert QUEUE in home and LOG in home and SUSPENSIONS in home
    assert "1 post awaits review" in home


def test_a_moderator_cannot_open_or_act_on_another_neighborhoods_post(client, moderator, place_b):
    other = thread(place_b)
    signed_in(client, moderator)
    assert client.get(f"/admin/moderation/thread/{other.pk}/").status_code == 302
    act(client, other, "decide", action="hide", reason="Spam")
    other.refresh_from_db()
    assert other.visibility == Visibility.VISIBLE
    assert not ModerationAction.objects.filter(action="hide").exists()


# What the queue shows -------------------------------------------------------------------------


def test_queue_shows_sanitised_content_reasons_weight_hidden_state_and_appeal(
    client, moderator, place_a
):
    post = thread(
        place_a, title="Party on Friday", body="Come along <script>alert(1)</script> **now**"
    )
    flag_by(post, reason="spam", note="Advertises a club night", people=2)
    flag_by(post, reason="abuse")
    post.refresh_from_db()
    assert post.visibility == Visibility.PENDING  # three flags reach the threshold
    services.appeal(post.author, thread=post, text="It is a street party for neighbours.")
    page = signed_in(client, moderator).get(QUEUE).content.decode()
    assert "<strong>now</strong>" in page and "<script>alert" not in page
    assert "Spam or advertising × 2" in page and "Harassment or hate × 1" in page
    assert "Advertises a club night" in page
    assert re.search(r"Total weight</dt>\s*<dd>3 ", page)
    assert "Hidden pending review" in page
    assert "It is a street party for neighbours." in page
    assert services.author_name(post.author) in page


def test_queue_filters_by_neighborhood_reason_hidden_and_appeal(client, staff, place_a, place_b):
    spam = thread(place_a, title="Cheap watches for sale")
    flag_by(spam, reason="spam")
    hidden = thread(place_b, title="Names and addresses of tenants")
    flag_by(hidden, reason="privacy", people=3)
    appealed_reply = reply(thread(place_b, title="Park cleanup"), body="You are all idiots")
    services.moderate(staff, "hide", reply=appealed_reply, reason="Insults")
    services.appeal(appealed_reply.author, reply=appealed_reply, text="I was quoting someone.")
    signed_in(client, staff)

    def shown(**query) -> set[str]:
        page = client.get(QUEUE, query).content.decode()
        titles = ["Cheap watches", "Names and addresses", "Park cleanup"]
        return {title for title in titles if title in page}

    assert shown() == {"Cheap watches", "Names and addresses", "Park cleanup"}
    assert shown(neighborhood=place_a.pk) == {"Cheap watches"}
    assert shown(reason="privacy") == {"Names and addresses"}
    assert shown(hidden="true") == {"Names and addresses", "Park cleanup"}
    assert shown(hidden="false") == {"Cheap watches"}
    assert shown(appealed="true") == {"Park cleanup"}
    assert "I was quoting someone." in client.get(QUEUE, {"appealed": "true"}).content.decode()


def test_queue_pages_by_latest_flag(client, staff, place_a):
    author, flagger, category = forum_member(place_a), VerifiedUserFactory(), forum_category()
    start = timezone.now() - timedelta(hours=1)
    for n in range(21):
        post = Thread.objects.create(
            neighborhood=place_a, author=author, category=category, title=f"Thread {n:02d}"
        )
        # Flagged in reverse order of creation: the oldest thread was flagged last.
        Flag.objects.create(
            user=flagger, thread=post, reason="spam", created_at=start - timedelta(minutes=n)
        )
    signed_in(client, staff)
    first, second = client.get(QUEUE).content.decode(), client.get(QUEUE, {"p": 2}).content.decode()
    assert first.index("Thread 00") < first.index("Thread 01") < first.index("Thread 19")
    assert "Thread 20" not in first and "Thread 20" in second


# Actions --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "check"),
    [
        ("approve", lambda t: t.visibility == Visibility.VISIBLE),
        ("hide", lambda t: t.visibility == Visibility.HIDDEN),
        ("delete", lambda t: t.deleted_at is not None),
        ("lock", lambda t: t.is_locked),
        ("pin", lambda t: t.is_pinned),
    ],
)
def test_each_decision_changes_the_thread_and_is_logged(client, moderator, place_a, action, check):
    post = thread(place_a)
    flag_by(post, people=3)
    response = act(
        signed_in(client, moderator),
        post,
        "decide",
        action=action,
        reason="Checked it",
        next_url=QUEUE,
    )
    assert response.status_code == 302 and response.url == QUEUE
    post.refresh_from_db()
    assert check(post)
    entry = ModerationAction.objects.get(action=action)
    assert (entry.actor, entry.thread, entry.reason) == (moderator, post, "Checked it")


def test_unlock_and_unpin_undo(client, moderator, place_a):
    post = thread(place_a)
    services.moderate(moderator, "lock", thread=post, reason="Heated")
    services.moderate(moderator, "pin", thread=post)
    signed_in(client, moderator)
    act(client, post, "decide", action="unlock", reason="Calmer now")
    act(client, post, "decide", action="unpin")
    post.refresh_from_db()
    assert not post.is_locked and not post.is_pinned
    assert (
        ModerationAction.objects.filter(action__in=["unlock", "unpin"], actor=moderator).count()
        == 2
    )


def test_hiding_a_reply_from_the_queue(client, moderator, place_a):
    answer = reply(thread(place_a), body="Buy followers at example.com")
    flag_by(answer, reason="spam")
    act(signed_in(client, moderator), answer, "decide", action="hide", reason="Spam link")
    answer.refresh_from_db()
    assert answer.visibility == Visibility.HIDDEN
    assert not Flag.objects.filter(reply=answer, resolved_at__isnull=True).exists()
    entry = ModerationAction.objects.get(action="hide")
    assert (entry.actor, entry.reply, entry.reason) == (moderator, answer, "Spam link")
    assert "Buy followers" not in client.get(QUEUE).content.decode()


def test_approving_an_appealed_post_upholds_the_appeal_and_empties_the_queue(
    client, moderator, place_a
):
    answer = reply(thread(place_a), body="The council meets on Tuesday.")
    services.moderate(moderator, "hide", reply=answer, reason="Looked like spam")
    services.appeal(answer.author, reply=answer, text="It is the real meeting date.")
    signed_in(client, moderator)
    assert "It is the real meeting date." in client.get(QUEUE).content.decode()
    act(client, answer, "decide", action="approve", next_url=QUEUE)
    appeal = Appeal.objects.get(reply=answer)
    assert appeal.upheld is True and appeal.decided_at is not None
    answer.refresh_from_db()
    assert answer.visibility == Visibility.VISIBLE
    assert "The council meets" not in client.get(QUEUE).content.decode()


def test_actions_need_the_csrf_token(moderator, place_a):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(moderator)
    post = thread(place_a)
    assert act(browser, post, "decide", action="lock", reason="Heated").status_code == 403
    post.refresh_from_db()
    assert not post.is_locked


@pytest.mark.parametrize("action", ["hide", "delete", "lock"])
def test_a_reason_is_required(client, moderator, place_a, action):
    post = thread(place_a)
    flag_by(post)
    response = act(signed_in(client, moderator), post, "decide", action=action, reason=" ")
    assert response.status_code == 200
    assert "Say why: the reason goes into the moderation log." in response.content.decode()
    post.refresh_from_db()
    assert post.visibility == Visibility.VISIBLE and not post.is_locked and not post.deleted_at
    assert not ModerationAction.objects.filter(action=action).exists()


def test_suspend_then_lift(client, moderator, place_a):
    post = thread(place_a)
    member = post.author
    assert services.posting_refusal(member, place_a) is None
    response = act(signed_in(client, moderator), post, "suspend", days=7, reason="Repeated insults")
    assert response.status_code == 302
    refusal = services.posting_refusal(member, place_a)
    assert "suspended from Alder Park" in refusal and "Repeated insults" in refusal
    entry = ModerationAction.objects.get(action="suspend")
    assert (entry.actor, entry.subject, entry.reason) == (moderator, member, "Repeated insults")

    suspension = Suspension.objects.get(user=member)
    page = client.get(SUSPENSIONS).content.decode()
    assert "Repeated insults" in page and services.author_name(member) in page
    response = client.post(f"{SUSPENSIONS}{suspension.pk}/lift/", {"reason": "Apologised"})
    assert response.status_code == 302
    assert services.posting_refusal(member, place_a) is None
    lifted = ModerationAction.objects.get(action="unsuspend")
    assert (lifted.actor, lifted.subject, lifted.reason) == (moderator, member, "Apologised")
    assert "Repeated insults" not in client.get(SUSPENSIONS).content.decode()


def test_suspension_needs_a_reason_and_sensible_days(client, moderator, place_a):
    post = thread(place_a)
    signed_in(client, moderator)
    assert act(client, post, "suspend", days=7, reason="").status_code == 200
    assert act(client, post, "suspend", days=0, reason="Spam").status_code == 200
    assert not Suspension.objects.exists()


def test_moderators_lift_only_their_neighborhoods_suspensions(client, moderator, staff, place_b):
    member = forum_member(place_b)
    suspension = services.suspend(staff, member, place_b, days=3, reason="Spam")
    signed_in(client, moderator)
    assert "Spam" not in client.get(SUSPENSIONS).content.decode()
    assert client.post(f"{SUSPENSIONS}{suspension.pk}/lift/").status_code == 404
    assert services.posting_refusal(member, place_b) is not None


def test_move_to_a_neighborhood_the_moderator_also_moderates(client, moderator, place_a, place_b):
    post = thread(place_a)
    signed_in(client, moderator)
    assert (
        "Move to another neighborhood"
        not in client.get(f"/admin/moderation/thread/{post.pk}/").content.decode()
    )
    act(client, post, "move", neighborhood=place_b.pk, reason="Wrong place")
    Membership.objects.create(user=moderator, neighborhood=place_b, role=Membership.Role.ORGANIZER)
    elsewhere = NeighborhoodFactory(name="Cedar Row")
    refused = act(client, post, "move", neighborhood=elsewhere.pk, reason="Wrong place")
    assert refused.status_code == 200 and "Select a valid choice" in refused.content.decode()
    assert act(client, post, "move", neighborhood=place_b.pk, reason="").status_code == 200
    post.refresh_from_db()
    assert post.neighborhood == place_a
    assert (
        act(client, post, "move", neighborhood=place_b.pk, reason="Wrong place").status_code == 302
    )
    post.refresh_from_db()
    assert post.neighborhood == place_b
    entry = ModerationAction.objects.get(action="move")
    assert entry.data == {"source": place_a.slug, "destination": place_b.slug}
    assert (entry.actor, entry.reason) == (moderator, "Wrong place")


def test_merge_by_address_keeps_each_vote_and_follower_once(client, moderator, place_a):
    original = thread(place_a, title="Streetlight out on Elm Street")
    duplicate = thread(place_a, title="Elm Street streetlight broken")
    both, only_original, only_duplicate = (forum_member(place_a) for _ in range(3))
    for person in (both, only_original):
        services.vote(person, thread=original)
        services.set_follow(person, original, "following")
    for person in (both, only_duplicate):
        services.vote(person, thread=duplicate)
        services.set_follow(person, duplicate, "following")
    reply(duplicate, body="Still dark tonight.")
    followers = set(
        Follow.objects.filter(thread__in=[original, duplicate]).values_list("user", flat=True)
    )

    response = act(
        signed_in(client, moderator),
        duplicate,
        "merge",
        original=f"http://testserver{original.get_absolute_url()}",
        reason="Same streetlight",
    )
    assert response.status_code == 302
    original.refresh_from_db()
    duplicate.refresh_from_db()
    assert duplicate.merged_into == original
    assert original.vote_count == 3 == Vote.objects.filter(thread=original, reply=None).count()
    assert set(Follow.objects.filter(thread=original).values_list("user", flat=True)) == followers
    assert Follow.objects.filter(thread=original).count() == len(followers)
    assert original.replies.filter(body="Still dark tonight.").exists()
    entry = ModerationAction.objects.get(action="merge")
    assert (entry.actor, entry.reason, entry.data) == (
        moderator,
        "Same streetlight",
        {"into": original.pk},
    )


def test_merge_refusals_are_shown(client, moderator, place_a, place_b):
    post = thread(place_a)
    elsewhere = thread(place_b)
    signed_in(client, moderator)
    missing = act(client, post, "merge", original="999999", reason="Dup")
    assert "There is no thread number 999999." in missing.content.decode()
    itself = act(client, post, "merge", original=str(post.pk), reason="Dup")
    assert "cannot be merged into itself" in itself.content.decode()
    denied = act(client, post, "merge", original=f"#{elsewhere.pk}", reason="Dup")
    assert denied.status_code == 403
    assert "Only moderators of Birch Hill can do this." in denied.content.decode()
    post.refresh_from_db()
    assert post.merged_into is None


# Log, history, categories ---------------------------------------------------------------------


def test_log_is_scoped_and_filtered(client, moderator, staff, place_a, place_b):
    here, there = thread(place_a, title="Alder thread"), thread(place_b, title="Birch thread")
    services.moderate(moderator, "lock", thread=here, reason="Alder heat")
    services.moderate(staff, "pin", thread=there, reason="Birch notice")
    services.moderate(staff, "pin", thread=here, reason="Alder notice")
    signed_in(client, moderator)
    page = client.get(LOG).content.decode()
    assert "Alder heat" in page and "Alder notice" in page and "Birch notice" not in page
    page = client.get(LOG, {"action": "lock"}).content.decode()
    assert "Alder heat" in page and "Alder notice" not in page
    page = client.get(LOG, {"actor": staff.pk}).content.decode()
    assert "Alder notice" in page and "Alder heat" not in page
    signed_in(client, staff)
    page = client.get(LOG, {"neighborhood": place_b.pk}).content.decode()
    assert "Birch notice" in page and "Alder" not in page.split("<tbody>")[1]
    export = client.get(LOG, {"export": "csv"})
    assert b"Birch notice" in b"".join(export.streaming_content)


def test_history_shows_every_earlier_version(client, moderator, place_a):
    post = thread(place_a, title="Pothole on Main", body="Big pothole <b>here</b>.")
    services.edit_thread(post, user=post.author, body="Huge pothole, two feet wide.")
    answer = reply(post, body="I hit it yesterday.")
    services.edit_reply(answer, user=answer.author, body="I hit it yesterday with my bike.")
    signed_in(client, moderator)
    page = client.get(f"/admin/moderation/thread/{post.pk}/history/").content.decode()
    assert "Huge pothole, two feet wide." in page
    assert "Big pothole &lt;b&gt;here&lt;/b&gt;." in page  # the raw text, escaped
    assert "-Big pothole" in page and "+Huge pothole" in page
    page = client.get(f"/admin/moderation/reply/{answer.pk}/history/").content.decode()
    assert "I hit it yesterday.</pre>" in page and "with my bike" in page
    outsider = forum_member(place_a, user__permissions=ADMIN)
    signed_in(client, outsider)
    assert client.get(f"/admin/moderation/thread/{post.pk}/history/").status_code == 302


def test_city_staff_edit_forum_categories_and_moderators_do_not(client, staff, moderator):
    category = forum_category("streets")
    url = f"/admin/forum-categories/edit/{category.pk}/"
    fields = {
        "name": "Roads, kerbs and sidewalks",
        "slug": "streets",
        "description": "",
        "sort_order": 5,
    }
    assert signed_in(client, moderator).post(url, fields).status_code == 302
    category.refresh_from_db()
    assert category.name != "Roads, kerbs and sidewalks"
    response = signed_in(client, staff).post(url, fields)
    assert response.status_code == 302
    category.refresh_from_db()
    assert (category.name, category.sort_order) == ("Roads, kerbs and sidewalks", 5)
    assert "Roads, kerbs and sidewalks" in client.get("/admin/forum-categories/").content.decode()
    assert ForumCategory.objects.filter(slug="streets").count() == 1


def test_a_category_holding_threads_is_not_deleted(client, staff, place_a):
    used = thread(place_a).category
    spare = ForumCategory.objects.create(slug="spare", name="Spare")
    signed_in(client, staff)
    confirm = client.get(f"/admin/forum-categories/delete/{used.pk}/").content.decode()
    assert "1 thread is in this category, so it cannot be deleted." in confirm
    assert client.post(f"/admin/forum-categories/delete/{used.pk}/").status_code == 302
    assert client.post(f"/admin/forum-categories/delete/{spare.pk}/").status_code == 302
    assert set(ForumCategory.objects.filter(slug__in=["spare", used.slug])) == {used}


# Query counts ---------------------------------------------------------------------------------


def _flagged_posts(neighborhood, count: int, flagger, author, category) -> None:
    """``count`` flagged posts, alternating threads and replies, some appealed (fast, no services)."""
    now = timezone.now()
    for n in range(count):
        post = Thread.objects.create(
            neighborhood=neighborhood,
            author=author,
            category=category,
            title=f"Post {n}",
            body="Text",
            body_html="<p>Text</p>",
            visibility=Visibility.PENDING,
        )
        target = {"thread": post, "reply": None}
        if n % 2:
            answer = Reply.objects.create(
                thread=post, author=author, body="R", body_html="<p>R</p>"
            )
            target = {"thread": None, "reply": answer}
        Flag.objects.create(user=flagger, reason="spam", note="Spam", created_at=now, **target)
        if n % 3 == 0:
            Appeal.objects.create(author=author, text="Please look again", **target)


def _log_rows(neighborhood, count: int, category) -> None:
    """``count`` log entries by as many people about as many others (fast, no services)."""
    User = get_user_model()
    for n in range(count):
        actor = User.objects.create(username=f"actor{neighborhood.pk}-{n}-{count}")
        subject = User.objects.create(username=f"subject{neighborhood.pk}-{n}-{count}")
        post = Thread.objects.create(
            neighborhood=neighborhood, author=subject, category=category, title=f"T{n}", body="B"
        )
        answer = Reply.objects.create(thread=post, author=subject, body="R")
        ModerationAction.objects.create(
            actor=actor,
            action="hide",
            neighborhood=neighborhood,
            thread=post,
            reply=answer if n % 2 else None,
            subject=subject,
            reason="Because",
            data={"n": n},
        )


def _queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


@pytest.mark.parametrize("who", ["moderator", "staff"])
def test_queue_and_log_query_counts_do_not_grow_with_rows(client, request, place_a, who):
    user = request.getfixturevalue(who)
    category = forum_category("streets")
    flagger, author = VerifiedUserFactory(), forum_member(place_a)
    signed_in(client, user)
    _flagged_posts(place_a, 3, flagger, author, category)
    _log_rows(place_a, 3, category)
    few = _queries(client, QUEUE), _queries(client, LOG)
    _flagged_posts(place_a, 27, flagger, author, category)
    _log_rows(place_a, 27, category)
    many = _queries(client, QUEUE), _queries(client, LOG)
    assert few == many
    assert client.get(QUEUE).content.decode().count('class="forum-moderation-item"') == 20
