"""The rules of the forums, through ``forums.services``: posting, support, following, moderation."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone
from PIL import Image

from alerts.models import Event, Notification
from forums import services
from forums.models import (
    Appeal,
    Flag,
    Follow,
    ModerationAction,
    Reply,
    Revision,
    Thread,
    Visibility,
    Vote,
    hot_score,
)
from neighborhoods.models import Membership, VerificationLevel
from neighborhoods.ratelimit import RateLimited
from tests import factories as f

pytestmark = pytest.mark.django_db


def jpeg(gps: tuple[float, float] | None = None, size=(64, 48)) -> io.BytesIO:
    """A small JPEG, with an EXIF GPS position when ``gps`` is given."""
    image = Image.new("RGB", size, (200, 40, 40))
    exif = Image.Exif()
    if gps is not None:
        lat, lon = gps

        def dms(value: float):
            value = abs(value)
            degrees = int(value)
            minutes = int((value - degrees) * 60)
            seconds = round(((value - degrees) * 60 - minutes) * 60, 4)
            return (degrees, minutes, seconds)

        exif[0x8825] = {
            1: "N" if lat >= 0 else "S",
            2: dms(lat),
            3: "E" if lon >= 0 else "W",
            4: dms(lon),
        }
        exif[0x010F] = "PhoneMaker"
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif)
    buffer.seek(0)
    buffer.name = "photo.jpg"
    buffer.size = len(buffer.getvalue())
    return buffer


def events(topic: str, type_: str | None = None) -> list[Event]:
    rows = Event.objects.filter(topic=topic).order_by("id")
    return list(rows.filter(type=type_) if type_ else rows)


# Who may post ------------------------------------------------------------------------------


def test_only_members_at_the_required_level_may_open_a_thread():
    neighborhood = f.NeighborhoodFactory(required_level=VerificationLevel.VERIFIED)
    outsider = f.VerifiedUserFactory()
    claimed = f.MembershipFactory(neighborhood=neighborhood, home_claimed=True).user
    verified = f.forum_member(neighborhood)

    assert "Join" in services.posting_refusal(outsider, neighborhood)
    assert "verified resident" in services.posting_refusal(claimed, neighborhood)
    assert services.posting_refusal(verified, neighborhood) is None
    with pytest.raises(PermissionDenied, match="Join"):
        f.thread(neighborhood, author=outsider)
    assert f.thread(neighborhood, author=verified).author == verified


def test_staff_may_reply_anywhere_officially_but_not_open_threads_without_membership():
    thread = f.thread()
    staff = f.CityStaffFactory(department__name="Streets Department").user
    with pytest.raises(PermissionDenied):
        f.thread(thread.neighborhood, author=staff)
    answer = f.reply(thread, author=staff, body="A crew is scheduled for Tuesday.")
    assert answer.is_official and answer.department.name == "Streets Department"
    thread.refresh_from_db()
    assert thread.has_official_reply


def test_a_suspended_member_cannot_post_reply_or_vote_until_the_suspension_ends():
    thread = f.thread()
    member = f.forum_member(thread.neighborhood)
    moderator = f.forum_member(thread.neighborhood, role=Membership.Role.MODERATOR)
    suspension = services.suspend(
        moderator, member, thread.neighborhood, days=3, reason="Insults in three threads"
    )
    refusal = services.posting_refusal(member, thread.neighborhood)
    assert "suspended" in refusal and "Insults in three threads" in refusal
    for attempt in (
        lambda: f.reply(thread, author=member),
        lambda: services.vote(member, thread=thread),
        lambda: f.thread(thread.neighborhood, author=member),
    ):
        with pytest.raises(PermissionDenied, match="suspended"):
            attempt()
    assert Notification.objects.filter(user=member, kind="forum_moderation").exists()
    services.lift_suspension(moderator, suspension, reason="Apologised")
    assert services.posting_refusal(member, thread.neighborhood) is None
    assert list(
        ModerationAction.objects.filter(subject=member).values_list("action", flat=True)
    ) == ["unsuspend", "suspend"]


def test_a_locked_thread_takes_replies_only_from_moderators():
    thread = f.thread()
    moderator = f.forum_member(thread.neighborhood, role=Membership.Role.MODERATOR)
    services.moderate(moderator, "lock", thread=thread, reason="Resolved; see the answer")
    thread.refresh_from_db()
    with pytest.raises(PermissionDenied, match="locked"):
        f.reply(thread)
    with pytest.raises(PermissionDenied, match="locked"):
        services.vote(f.forum_member(thread.neighborhood), thread=thread)
    assert f.reply(thread, author=moderator).pk


# Text, tags, pins and photos -----------------------------------------------------------------


def test_invalid_fields_are_reported_together_by_name():
    neighborhood = f.NeighborhoodFactory()
    member = f.forum_member(neighborhood)
    with pytest.raises(ValidationError) as caught:
        services.create_thread(
            author=member,
            neighborhood=neighborhood,
            title="Hi",
            body="",
            category=None,
            tags="ok, not a tag!",
            lat=10,
            lon=10,
        )
    assert set(caught.value.message_dict) == {"title", "body", "category", "tags", "location"}
    assert not Thread.objects.exists()


def test_tags_are_normalised_and_limited():
    assert services.clean_tags("Potholes, #Street_Lights  potholes") == [
        "potholes",
        "street-lights",
    ]
    with pytest.raises(ValidationError):
        services.clean_tags(["a", "b", "c", "d", "e", "f"])
    with pytest.raises(ValidationError):
        services.clean_tags(["<script>"])


def test_a_pin_must_fall_inside_or_near_the_neighborhood(philly):
    old_city = philly["Old City"]
    member = f.forum_member(old_city)
    lat, lon = f.inside(old_city)
    inside = f.thread(old_city, author=member, lat=lat, lon=lon)
    assert (inside.lat, inside.lon) == (round(lat, 6), round(lon, 6))
    # Society Hill, a block south of Old City's edge (Walnut Street): near enough.
    near = f.thread(
        old_city, author=member, title="Crossing at 3rd and Walnut", lat=39.9465, lon=-75.1460
    )
    assert services.distance_to_neighborhood_m(old_city, near.lat, near.lon) <= 300
    # City Hall is about 1.5 km away: refused.
    with pytest.raises(ValidationError, match="within 300 m"):
        f.thread(old_city, author=member, title="Far away", lat=39.9526, lon=-75.1635)


def test_a_photo_is_reencoded_and_its_gps_is_offered_to_the_author_only(philly):
    old_city = philly["Old City"]
    author = f.forum_member(old_city)
    lat, lon = f.inside(old_city)
    thread = f.thread(old_city, author=author, photos=[jpeg(gps=(lat, lon))])
    photo = thread.photos.get()
    assert thread.lat is None  # never published silently
    with Image.open(photo.image.path) as stored:
        assert not stored.getexif()  # metadata stripped
    offers = services.photo_location_offers(thread, author)
    assert [(o.lat, o.lon) for o in offers] == [(round(lat, 6), round(lon, 6))]
    assert services.photo_location_offers(thread, f.forum_member(old_city)) == []
    assert (
        "lat" in services.thread_payload(thread) and services.thread_payload(thread)["lat"] is None
    )

    services.use_photo_location(thread, user=author, photo_id=photo.pk)
    thread.refresh_from_db()
    assert thread.lat == pytest.approx(lat, abs=1e-5)
    assert services.photo_location_offers(thread, author) == []


def test_photos_are_limited_in_number_and_must_be_images(settings):
    settings.ENGAGEMENT = {"FORUM_MAX_PHOTOS": 2}
    neighborhood = f.NeighborhoodFactory()
    author = f.forum_member(neighborhood)
    with pytest.raises(ValidationError, match="at most 2"):
        f.thread(neighborhood, author=author, photos=[jpeg(), jpeg(), jpeg()])
    fake = io.BytesIO(b"<?php echo 1; ?>")
    fake.name, fake.size = "photo.jpg", 16
    with pytest.raises(ValidationError) as caught:
        f.thread(neighborhood, author=author, photos=[fake])
    assert "photos" in caught.value.message_dict
    assert not Thread.objects.exists()


def test_new_accounts_cannot_post_links_or_photos_and_open_few_threads(settings):
    neighborhood = f.NeighborhoodFactory()
    newcomer = f.forum_member(neighborhood, new=True)
    with pytest.raises(ValidationError, match="links"):
        f.thread(neighborhood, author=newcomer, body="Cheap pills at example.com")
    with pytest.raises(ValidationError, match="photos"):
        f.thread(neighborhood, author=newcomer, photos=[jpeg()])
    f.thread(neighborhood, author=newcomer, title="First question")
    f.thread(neighborhood, author=newcomer, title="Second question")
    with pytest.raises(RateLimited) as caught:
        f.thread(neighborhood, author=newcomer, title="Third question")
    assert "Try again in" in str(caught.value)
    # A month-old account posts links freely.
    regular = f.forum_member(neighborhood)
    assert (
        "nofollow ugc noopener"
        in f.thread(neighborhood, author=regular, body="See https://www.phila.gov/311").body_html
    )


def test_threads_are_rate_limited_per_account_and_per_address(settings, frozen_rate_window):
    settings.ENGAGEMENT = {"FORUM_THREAD_RATE": (2, 3600)}
    neighborhood = f.NeighborhoodFactory()
    first = f.forum_member(neighborhood)
    for n in range(2):
        f.thread(neighborhood, author=first, title=f"Question number {n}", ip="203.0.113.9")
    with pytest.raises(RateLimited):
        f.thread(neighborhood, author=first, title="One too many", ip="203.0.113.10")
    # Other accounts behind the same address share a limit five times larger.
    for n in range(8):
        f.thread(neighborhood, title=f"From the library {n}", ip="203.0.113.9")
    with pytest.raises(RateLimited):
        f.thread(neighborhood, title="Library again", ip="203.0.113.9")


def test_the_honeypot_refuses_without_saying_why():
    neighborhood = f.NeighborhoodFactory()
    with pytest.raises(ValidationError) as caught:
        f.thread(neighborhood, honeypot="http://spam.example")
    assert "could not be accepted" in str(caught.value)
    assert not Thread.objects.exists()


# Editing and deleting -----------------------------------------------------------------------


def test_editing_keeps_the_previous_text_for_moderators_and_marks_the_post():
    thread = f.thread(body="Light out at 2nd and Market")
    services.edit_thread(thread, user=thread.author, body="Light out at 2nd and Arch")
    thread.refresh_from_db()
    assert thread.edited_at is not None
    assert Revision.objects.get(thread=thread).body == "Light out at 2nd and Market"
    with pytest.raises(PermissionDenied):
        services.edit_thread(thread, user=f.forum_member(thread.neighborhood), title="Hijacked!")
    moderator = f.forum_member(thread.neighborhood, role=Membership.Role.MODERATOR)
    services.edit_thread(thread, user=moderator, body="Light out at 2nd and Arch (address fixed)")
    assert ModerationAction.objects.filter(action="edit", actor=moderator, thread=thread).exists()


def test_a_deleted_reply_keeps_its_place_without_its_text():
    thread = f.thread()
    gone = f.reply(thread, body="I was wrong about this")
    f.reply(thread)
    services.delete_reply(gone, user=gone.author)
    thread.refresh_from_db()
    assert thread.reply_count == 1
    payload = services.reply_payload(Reply.objects.get(pk=gone.pk))
    assert payload["state"] == "deleted" and payload["body_html"] == "" and payload["author"] == ""
    assert len(list(services.replies_of(thread))) == 2


def test_quoting_links_the_quoted_reply_and_only_within_the_thread():
    thread = f.thread()
    first = f.reply(thread, body="The light has been out since **Monday**.")
    answer = f.reply(thread, body="Reported it too.", quote=first.pk)
    payload = services.reply_payload(services.replies_of(thread).get(pk=answer.pk))
    assert payload["quote"]["id"] == first.pk and payload["quote"]["url"] == f"#reply-{first.pk}"
    assert "Monday" in payload["quote"]["excerpt"]
    other = f.reply(f.thread(thread.neighborhood, title="Another topic"))
    with pytest.raises(ValidationError, match="quote"):
        f.reply(thread, quote=other.pk)


# Support ------------------------------------------------------------------------------------


def test_one_vote_per_person_toggled_with_exact_counts_and_hot_score():
    thread = f.thread()
    people = [f.forum_member(thread.neighborhood) for _ in range(3)]
    for person in people:
        assert services.vote(person, thread=thread) >= 1
        services.vote(person, thread=thread)  # idempotent
    thread.refresh_from_db()
    assert thread.vote_count == Vote.objects.filter(thread=thread).count() == 3
    assert thread.hot == pytest.approx(hot_score(3, 0, thread.created_at))
    assert services.unvote(people[0], thread=thread) == 2
    assert services.unvote(people[0], thread=thread) == 2
    assert services.has_voted(people[1], thread=thread)
    assert not services.has_voted(people[0], thread=thread)
    counts = [e.data["vote_count"] for e in events(f"thread:{thread.pk}", "thread.counts")]
    assert counts == [1, 2, 3, 2]
    assert len(events(f"neighborhood:{thread.neighborhood.slug}", "thread.counts")) == 4


def test_replies_have_their_own_support():
    thread = f.thread()
    answer = f.reply(thread)
    voter = f.forum_member(thread.neighborhood)
    assert services.vote(voter, reply=answer) == 1
    thread.refresh_from_db()
    assert thread.vote_count == 0
    last = events(f"thread:{thread.pk}", "thread.counts")[-1]
    assert last.data["reply"] == {"id": answer.pk, "vote_count": 1}
    outsider = f.VerifiedUserFactory()
    with pytest.raises(PermissionDenied):
        services.vote(outsider, reply=answer)


def test_the_hot_formula_trades_ten_times_the_support_for_twelve_and_a_half_hours():
    start = timezone.now()
    older = hot_score(100, 0, start)
    newer = hot_score(10, 0, start + timedelta(seconds=45_000))
    assert older == pytest.approx(newer)
    assert hot_score(0, 0, start) == hot_score(1, 0, start)


# Following, mentions and notifications ------------------------------------------------------


def test_followers_hear_of_replies_mentions_are_notified_and_muting_silences():
    thread = f.thread()
    author = thread.author
    follower, muted, named = (f.forum_member(thread.neighborhood) for _ in range(3))
    named.username = "Dana.Rivera"
    named.save()
    services.set_follow(follower, thread, "following")
    services.set_follow(muted, thread, "muted")
    replier = f.forum_member(thread.neighborhood)
    f.reply(thread, author=replier, body="Ping @dana.rivera and @nobody-here")

    kinds = dict(Notification.objects.values_list("user_id", "kind"))
    assert kinds[author.pk] == "forum_reply"
    assert kinds[follower.pk] == "forum_reply"
    assert kinds[named.pk] == "forum_mention"  # once, as a mention
    assert muted.pk not in kinds and replier.pk not in kinds
    assert services.follow_state(replier, thread) == "following"  # replying follows
    assert services.follow_state(muted, thread) == "muted"


def test_mentions_inside_quotes_and_code_are_not_mentions():
    thread = f.thread()
    named = f.forum_member(thread.neighborhood)
    text = f"> @{named.username} said so\n\n`@{named.username}`"
    assert services.mentioned_users(text) == []
    assert services.mentioned_users(f"thanks @{named.username}!") == [named]


def test_city_staff_answer_under_their_name_never_as_an_anonymous_neighbor():
    named = f.CityStaffFactory(
        user__first_name="Sam", user__last_name="Rivera", department__name="Streets Department"
    ).user
    nameless = f.CityStaffFactory(
        user__first_name="", user__last_name="", department__name="Water Department"
    ).user
    chosen = f.UserFactory()
    f.ProfileFactory(user=chosen, display_name="Streets desk")
    f.CityStaffFactory(user=chosen)
    thread = f.thread(f.NeighborhoodFactory())
    reply = f.reply(thread, author=named, body="A crew is on the way.")
    assert services.reply_payload(reply)["author"] == "Sam Rivera"
    assert services.author_name(nameless) == "Water Department staff"
    assert services.author_name(chosen) == "Streets desk"  # their own choice stays


def test_an_official_reply_marked_as_the_answer_notifies_followers():
    thread = f.thread()
    follower = f.forum_member(thread.neighborhood)
    services.set_follow(follower, thread, "following")
    staff = f.CityStaffFactory(department__name="Streets Department").user
    resident_reply = f.reply(thread)
    official = f.reply(thread, author=staff, body="Fixed on Tuesday.")
    with pytest.raises(ValidationError, match="official"):
        services.mark_answer(thread, resident_reply, user=thread.author)
    with pytest.raises(PermissionDenied):
        services.mark_answer(thread, official, user=follower)
    services.mark_answer(thread, official, user=thread.author)
    thread.refresh_from_db()
    assert thread.answer == official
    note = Notification.objects.get(user=follower, kind="forum_answer")
    assert "Streets Department answered" in note.title
    assert events(f"thread:{thread.pk}", "thread.answered")


def test_verified_organizations_serving_the_neighborhood_cosign_once():
    thread = f.thread()
    organization = f.OrganizationFactory(verified=True, neighborhoods=[thread.neighborhood])
    admin = f.OrganizationMembershipFactory(organization=organization, admin=True).user
    member = f.OrganizationMembershipFactory(organization=organization).user
    assert services.cosign_organizations(admin, thread) == [organization]
    services.cosign(thread, organization, user=admin)
    services.cosign(thread, organization, user=admin)
    assert list(thread.cosigned_by.all()) == [organization]
    with pytest.raises(PermissionDenied):
        services.cosign(thread, organization, user=member)
    elsewhere = f.OrganizationFactory(verified=True)
    elsewhere_admin = f.OrganizationMembershipFactory(organization=elsewhere, admin=True).user
    with pytest.raises(PermissionDenied, match="does not serve"):
        services.cosign(thread, elsewhere, user=elsewhere_admin)


# Flags, hiding and appeals ------------------------------------------------------------------


def test_flags_hide_content_pending_review_at_the_threshold_and_the_author_may_appeal_once():
    thread = f.thread()
    rude = f.reply(thread, body="You are all idiots")
    flaggers = [f.forum_member(thread.neighborhood) for _ in range(3)]
    services.flag(flaggers[0], reply=rude, reason="abuse")
    services.flag(flaggers[0], reply=rude, reason="abuse")  # once per person
    services.flag(flaggers[1], reply=rude, reason="abuse", note="Name-calling")
    rude.refresh_from_db()
    assert rude.visibility == Visibility.VISIBLE
    services.flag(flaggers[2], reply=rude, reason="abuse")
    rude.refresh_from_db()
    assert rude.visibility == Visibility.PENDING
    thread.refresh_from_db()
    assert thread.reply_count == 0
    told = Notification.objects.get(user=rude.author, kind="forum_moderation")
    assert "Harassment or hate" in told.body and "appeal" in told.body
    assert events(f"thread:{thread.pk}", "reply.removed")[-1].data["body_html"] == ""

    with pytest.raises(PermissionDenied):
        services.appeal(flaggers[0], reply=rude, text="Not theirs to appeal")
    services.appeal(rude.author, reply=rude, text="It was a joke between friends")
    with pytest.raises(ValidationError, match="already appealed"):
        services.appeal(rude.author, reply=rude, text="Again")
    assert Appeal.objects.count() == 1
    assert ModerationAction.objects.filter(action="auto_hide", actor=None, reply=rude).exists()


def test_a_moderator_or_staff_flag_hides_at_once_and_nobody_flags_their_own_post():
    thread = f.thread()
    spam = f.reply(thread, body="Buy now")
    moderator = f.forum_member(thread.neighborhood, role=Membership.Role.MODERATOR)
    services.flag(moderator, reply=spam, reason="spam")
    spam.refresh_from_db()
    assert spam.visibility == Visibility.PENDING
    other = f.thread(thread.neighborhood, title="Another discussion here")
    services.flag(f.CityStaffFactory().user, thread=other, reason="off_topic")
    other.refresh_from_db()
    assert other.visibility == Visibility.PENDING and not other.is_listed
    with pytest.raises(ValidationError, match="own post"):
        services.flag(thread.author, thread=thread, reason="spam")


def test_approving_restores_content_resolves_flags_and_upholds_the_appeal():
    thread = f.thread()
    reply = f.reply(thread)
    moderator = f.forum_member(thread.neighborhood, role=Membership.Role.MODERATOR)
    services.moderate(moderator, "hide", reply=reply, reason="Personal details")
    services.appeal(reply.author, reply=reply, text="I removed the phone number")
    services.moderate(moderator, "approve", reply=reply, reason="Fixed by the author")
    reply.refresh_from_db()
    thread.refresh_from_db()
    assert reply.visibility == Visibility.VISIBLE and thread.reply_count == 1
    assert Appeal.objects.get().upheld is True
    assert not Flag.objects.filter(resolved_at__isnull=True).exists()
    log = list(
        ModerationAction.objects.filter(reply=reply).values_list("action", "actor", "reason")
    )
    assert ("hide", moderator.pk, "Personal details") in log
    assert ("approve", moderator.pk, "Fixed by the author") in log


def test_moderation_needs_a_moderator_of_that_neighborhood_and_a_reason():
    thread = f.thread()
    elsewhere = f.forum_member(role=Membership.Role.MODERATOR)
    with pytest.raises(PermissionDenied):
        services.moderate(elsewhere, "hide", thread=thread, reason="No")
    organizer = f.forum_member(thread.neighborhood, role=Membership.Role.ORGANIZER)
    with pytest.raises(ValidationError, match="reason"):
        services.moderate(organizer, "delete", thread=thread, reason=" ")
    services.moderate(organizer, "pin", thread=thread)
    thread.refresh_from_db()
    assert thread.is_pinned


def test_moving_a_thread_tells_both_neighborhoods():
    thread = f.thread()
    destination = f.NeighborhoodFactory()
    staff = f.CityStaffFactory().user
    services.moderate(staff, "move", thread=thread, neighborhood=destination, reason="Wrong area")
    thread.refresh_from_db()
    assert thread.neighborhood == destination
    assert events(f"neighborhood:{destination.slug}", "thread.created")
    source_slug = ModerationAction.objects.get(action="move").data["source"]
    assert events(f"neighborhood:{source_slug}", "thread.removed")[-1].data == {"id": thread.pk}


# Merging ------------------------------------------------------------------------------------


def test_merging_carries_every_vote_and_follower_exactly_once_and_every_reply():
    neighborhood = f.NeighborhoodFactory()
    original = f.thread(neighborhood, title="Pothole on Front Street")
    duplicate = f.thread(neighborhood, title="Huge pothole Front St", tags="potholes")
    both, only_original, only_duplicate = (f.forum_member(neighborhood) for _ in range(3))
    for person in (both, only_original):
        services.vote(person, thread=original)
    for person in (both, only_duplicate):
        services.vote(person, thread=duplicate)
    services.set_follow(only_duplicate, duplicate, "following")
    services.set_follow(both, original, "muted")
    services.set_follow(both, duplicate, "following")
    dup_reply = f.reply(duplicate, body="Wrecked my tyre")
    services.vote(only_original, reply=dup_reply)

    staff = f.CityStaffFactory().user
    services.merge_threads(duplicate, original, actor=staff, reason="Same pothole")
    original.refresh_from_db()
    duplicate.refresh_from_db()

    voters = list(Vote.objects.filter(thread=original).values_list("user_id", flat=True))
    assert sorted(voters) == sorted({both.pk, only_original.pk, only_duplicate.pk})
    assert original.vote_count == 3
    follows = dict(Follow.objects.filter(thread=original).values_list("user_id", "muted"))
    assert follows[both.pk] is True  # the mute on the original wins
    assert follows[only_duplicate.pk] is False and follows[duplicate.author_id] is False
    assert Follow.objects.filter(thread=duplicate).count() == 0
    bodies = [r.body for r in services.replies_of(original)]
    assert bodies[0].startswith("**Huge pothole Front St**") and "Wrecked my tyre" in bodies
    assert original.reply_count == 2
    dup_reply.refresh_from_db()
    assert dup_reply.thread == original and dup_reply.vote_count == 1
    assert duplicate.merged_into == original and not duplicate.is_listed
    assert "potholes" in original.tags.names()
    assert events(f"thread:{duplicate.pk}", "thread.merged")[-1].data["into"] == original.pk
    with pytest.raises(ValidationError):
        services.merge_threads(duplicate, original, actor=staff, reason="Again")


# Feeds --------------------------------------------------------------------------------------


def _aged(thread: Thread, hours: float, votes: int = 0, replies: int = 0) -> Thread:
    created = timezone.now() - timedelta(hours=hours)
    Thread.objects.filter(pk=thread.pk).update(
        created_at=created,
        vote_count=votes,
        reply_count=replies,
        hot=hot_score(votes, replies, created),
    )
    thread.refresh_from_db()
    return thread


def test_feed_sorts_and_filters():
    neighborhood = f.NeighborhoodFactory()
    author = f.forum_member(neighborhood)
    fresh = _aged(f.thread(neighborhood, author=author, title="Fresh issue today"), 1, votes=2)
    popular_old = _aged(
        f.thread(neighborhood, author=author, title="Popular last month", tags="trees"),
        24 * 20,
        votes=50,
    )
    talked = _aged(f.thread(neighborhood, author=author, title="Much discussed"), 30, replies=9)
    answered = f.thread(neighborhood, author=author, title="Answered by the city")
    f.reply(answered, author=f.CityStaffFactory().user)
    hidden = f.thread(neighborhood, author=author, title="Hidden one here")
    services.moderate(f.CityStaffFactory().user, "hide", thread=hidden, reason="Spam")

    def titles(**kwargs):
        return [t.title for t in services.feed(neighborhood, **kwargs)]

    assert titles(sort="new")[0] == "Answered by the city"
    assert "Hidden one here" not in titles(sort="new")
    assert titles(sort="top", period="week")[0] == fresh.title
    assert titles(sort="top", period="all")[0] == popular_old.title
    assert titles(sort="discussed")[0] == talked.title
    assert "Answered by the city" not in titles(sort="unanswered")
    assert titles(sort="hot", tag="trees") == [popular_old.title]
    assert titles(sort="new", category="parks") == []
    services.moderate(f.CityStaffFactory().user, "pin", thread=talked)
    assert titles(sort="new")[0] == talked.title  # pinned lead a neighborhood's feed
    with pytest.raises(ValidationError):
        services.feed(neighborhood, sort="random")


def test_my_neighborhoods_feed_covers_every_membership():
    first, second, third = (f.NeighborhoodFactory() for _ in range(3))
    me = f.forum_member(first)
    f.MembershipFactory(neighborhood=second, user=me)
    f.thread(first, title="In the first one")
    f.thread(second, title="In the second one")
    f.thread(third, title="Somewhere else entirely")
    mine = services.feed(services.my_neighborhoods(me), sort="new")
    assert sorted(t.title for t in mine) == ["In the first one", "In the second one"]


def test_search_finds_threads_by_title_body_and_tag_but_not_hidden_ones():
    neighborhood = f.NeighborhoodFactory()
    f.thread(neighborhood, title="Behind the rec center", tags="dumping")
    f.thread(neighborhood, title="Streetlight flicker", body="The lamp on Elfreth's Alley")
    hidden = f.thread(neighborhood, title="Dumping again, spam link")
    services.moderate(f.CityStaffFactory().user, "hide", thread=hidden, reason="Spam")
    assert [t.title for t in services.search_threads("dumping")] == ["Behind the rec center"]
    assert [t.title for t in services.search_threads("Elfreth")] == ["Streetlight flicker"]


# Similar threads ----------------------------------------------------------------------------


def test_similar_open_threads_nearby_are_suggested(philly):
    old_city = philly["Old City"]
    author = f.forum_member(old_city)
    lat, lon = 39.9525, -75.1440
    near = f.thread(
        old_city, author=author, title="Streetlight out at 2nd and Arch", lat=lat, lon=lon
    )
    far = f.thread(
        old_city, author=author, title="Streetlight out near the bridge", lat=39.9555, lon=-75.1400
    )
    f.thread(old_city, author=author, title="Farmers market hours on Sunday")
    locked = f.thread(old_city, author=author, title="Streetlight out at Front and Arch")
    services.moderate(f.CityStaffFactory().user, "lock", thread=locked, reason="Fixed")

    found = services.similar_threads(
        old_city, "streetlight is out at 2nd & Arch", lat=lat, lon=lon + 0.0003
    )
    assert [s.thread.pk for s in found][:2] == [near.pk, far.pk]
    assert found[0].distance_m < 50 and found[0].score > found[1].score
    assert locked.pk not in [s.thread.pk for s in found]
    assert services.similar_threads(old_city, "the and of") == []


# Live events and the XSS corpus --------------------------------------------------------------


def test_new_threads_and_replies_are_published_on_their_topics():
    thread = f.thread()
    created = events(f"neighborhood:{thread.neighborhood.slug}", "thread.created")
    assert created[-1].data["id"] == thread.pk and created[-1].data["title"] == thread.title
    assert "email" not in str(created[-1].data)
    reply = f.reply(thread)
    published = events(f"thread:{thread.pk}", "reply.created")[-1].data
    assert published["id"] == reply.pk and "<strong>" not in published["body_html"]
    assert events(f"neighborhood:{thread.neighborhood.slug}", "thread.counts")[-1].data == {
        "id": thread.pk,
        "vote_count": 0,
        "reply_count": 1,
    }
