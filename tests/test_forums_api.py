"""The forums JSON API: feeds, threads, replies, support, flags, following, answers, the schema."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.contrib.contenttypes.models import ContentType
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from drf_spectacular.drainage import GENERATOR_STATS
from rest_framework.test import APIClient
from taggit.models import Tag, TaggedItem

from forums import services
from forums.models import Flag, Reply, Suspension, Thread, Visibility
from neighborhoods.models import Membership
from tests.factories import (
    CityStaffFactory,
    DepartmentFactory,
    MembershipFactory,
    NeighborhoodFactory,
    OrganizationFactory,
    OrganizationMembershipFactory,
    UserFactory,
    forum_category,
    forum_member,
    inside,
    reply,
    thread,
)
from tests.test_forum_services import jpeg

pytestmark = pytest.mark.django_db

THREADS = "/api/v1/threads/"
SIMILAR = "/api/v1/threads/similar/"
CATEGORIES = "/api/v1/forum-categories/"


def thread_url(topic: Thread, action: str | None = None) -> str:
    return f"{THREADS}{topic.pk}/" + (f"{action}/" if action else "")


def reply_url(answer: Reply, action: str | None = None) -> str:
    return f"/api/v1/replies/{answer.pk}/" + (f"{action}/" if action else "")


def error_of(response, status: int) -> dict:
    """The error body of a JSON error response with this status."""
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["message"]
    return body["error"]


def fresh(topic: Thread) -> Thread:
    return Thread.objects.select_related(*("neighborhood", "category")).get(pk=topic.pk)


@pytest.fixture
def place():
    return NeighborhoodFactory(name="Fishtown")


@pytest.fixture
def elsewhere():
    return NeighborhoodFactory(name="Kensington")


@pytest.fixture
def author(place):
    return forum_member(place)


@pytest.fixture
def topic(place, author):
    return thread(place, author=author, tags="streetlights, safety")


@pytest.fixture
def staff():
    return CityStaffFactory(department=DepartmentFactory(name="Streets Department")).user


@pytest.fixture
def moderator(place):
    return forum_member(place, role=Membership.Role.MODERATOR)


@pytest.fixture
def client_for(api, api_as):
    def make(user) -> APIClient:
        return api if user is None else api_as(user)

    return make


def new_thread_payload(where, **overrides) -> dict:
    lat, lon = inside(where)
    return {
        "neighborhood": where.slug,
        "title": "Broken streetlight at the corner",
        "body": "Dark for a **week** now.",
        "category": "streets",
        "tags": ["streetlights", "safety"],
        "lat": lat,
        "lon": lon,
        **overrides,
    }


def many_threads(neighborhood, count: int) -> list[Thread]:
    """``count`` listed threads by three authors, each with two tags, written in bulk."""
    authors = [forum_member(neighborhood) for _ in range(3)]
    category = forum_category()
    now = timezone.now()
    threads = Thread.objects.bulk_create(
        Thread(
            neighborhood=neighborhood,
            author=authors[n % 3],
            category=category,
            title=f"Thread number {n}",
            body="Body",
            body_html="<p>Body</p>",
            created_at=now - timedelta(minutes=n),
            last_activity_at=now - timedelta(minutes=n),
            hot=-n,
        )
        for n in range(count)
    )
    tags = [Tag.objects.create(name="safety", slug="safety"), Tag.objects.create(name="lights")]
    content_type = ContentType.objects.get_for_model(Thread)
    TaggedItem.objects.bulk_create(
        TaggedItem(tag=tag, content_type=content_type, object_id=t.pk)
        for t in threads
        for tag in tags
    )
    return threads


# Who may do what ----------------------------------------------------------------------------

PERSONAS = [
    "anonymous",
    "registered",
    "below_level",
    "member",
    "suspended",
    "moderator",
    "organizer",
    "city_staff",
    "org_admin",
]
SIGNED_IN = set(PERSONAS) - {"anonymous"}
MODERATORS = {"moderator", "organizer", "city_staff"}
MEMBERS = {"member", "moderator", "organizer"}

# action: (status on success, personas allowed); the others get 401 (anonymous) or 403.
ALLOWED = {
    "list": (200, set(PERSONAS)),
    "read": (200, set(PERSONAS)),
    "create_thread": (201, MEMBERS),
    "reply": (201, MEMBERS | {"city_staff"}),
    "vote": (200, MEMBERS),
    "flag": (201, SIGNED_IN),
    "edit_others_thread": (200, MODERATORS),
    "delete_others_thread": (204, MODERATORS),
    "mark_answer": (200, MODERATORS),
    "follow": (200, SIGNED_IN),
}


@pytest.fixture
def persona(place):
    """``persona(name)``: a person in that role towards ``place`` (``None`` for anonymous)."""

    def suspended():
        user = forum_member(place)
        Suspension.objects.create(
            user=user, neighborhood=place, until=timezone.now() + timedelta(days=7), reason="Spam"
        )
        return user

    def org_admin():
        organization = OrganizationFactory(verified=True, neighborhoods=[place])
        return OrganizationMembershipFactory(organization=organization, admin=True).user

    def make(name: str):
        return {
            "anonymous": lambda: None,
            "registered": UserFactory,
            "below_level": lambda: MembershipFactory(neighborhood=place).user,
            "member": lambda: forum_member(place),
            "suspended": suspended,
            "moderator": lambda: forum_member(place, role=Membership.Role.MODERATOR),
            "organizer": lambda: forum_member(place, role=Membership.Role.ORGANIZER),
            "city_staff": lambda: CityStaffFactory().user,
            "org_admin": org_admin,
        }[name]()

    return make


def perform(action: str, client: APIClient, place, topic: Thread):
    if action == "list":
        return client.get(THREADS, {"neighborhood": place.slug})
    if action == "read":
        return client.get(thread_url(topic))
    if action == "create_thread":
        return client.post(THREADS, new_thread_payload(place), format="json")
    if action == "reply":
        return client.post(thread_url(topic, "replies"), {"body": "Me too."}, format="json")
    if action == "vote":
        return client.post(thread_url(topic, "vote"))
    if action == "flag":
        return client.post(thread_url(topic, "flag"), {"reason": "spam"}, format="json")
    if action == "edit_others_thread":
        return client.patch(thread_url(topic), {"title": "A clearer title"}, format="json")
    if action == "delete_others_thread":
        return client.delete(thread_url(topic))
    if action == "mark_answer":
        official = reply(topic, author=CityStaffFactory().user)
        return client.post(thread_url(topic, "answer"), {"reply": official.pk}, format="json")
    assert action == "follow"
    return client.put(thread_url(topic, "follow"), {"state": "following"}, format="json")


@pytest.mark.parametrize("action", list(ALLOWED))
@pytest.mark.parametrize("who", PERSONAS)
def test_permission_matrix(action, who, persona, client_for, place, topic):
    success, allowed = ALLOWED[action]
    expected = success if who in allowed else 401 if who == "anonymous" else 403

    response = perform(action, client_for(persona(who)), place, topic)

    assert response.status_code == expected, response.content
    if expected >= 400:
        assert response.json()["error"]["code"] in ("not_authenticated", "permission_denied")


def test_a_refusal_says_what_is_missing(api_as, place, topic, persona):
    below = api_as(persona("below_level"))
    suspended = api_as(persona("suspended"))

    assert "reach the level" in error_of(below.post(thread_url(topic, "vote")), 403)["message"]
    message = error_of(suspended.post(THREADS, new_thread_payload(place), format="json"), 403)
    assert "suspended" in message["message"] and "Spam" in message["message"]


def test_anonymous_callers_are_asked_to_sign_in(api, topic):
    response = api.post(thread_url(topic, "vote"))

    assert error_of(response, 401)["code"] == "not_authenticated"
    assert response["WWW-Authenticate"] == "Token"


# The feed -----------------------------------------------------------------------------------


class TestFeed:
    def test_each_item_is_the_thread_payload_with_the_callers_relation(
        self, api_as, place, author, topic
    ):
        services.vote(forum_member(place), thread=topic)
        member = forum_member(place)
        services.vote(member, thread=topic)

        mine = api_as(author).get(THREADS).json()["results"][0]
        theirs = api_as(member).get(THREADS).json()["results"][0]

        expected = services.thread_payload(fresh(topic))
        assert {k: v for k, v in mine.items() if k != "viewer"} == expected
        assert mine["tags"] == ["safety", "streetlights"]
        assert mine["viewer"] == {"voted": False, "mine": True}
        assert theirs["viewer"] == {"voted": True, "mine": False}
        assert mine["vote_count"] == 2

    def test_filters_by_neighborhoods_tag_and_category(self, api, place, elsewhere):
        here = thread(place, tags="lights", category_slug="streets")
        there = thread(elsewhere, tags="lights", category_slug="safety")
        untagged = thread(place, category_slug="safety")
        third = NeighborhoodFactory(name="Port Richmond")
        thread(third)

        def ids(params: dict) -> set[int]:
            response = api.get(THREADS, params)
            assert response.status_code == 200, response.content
            return {t["id"] for t in response.json()["results"]}

        assert ids({"neighborhood": "fishtown"}) == {here.pk, untagged.pk}
        assert ids({"neighborhood": "fishtown,kensington"}) == {here.pk, untagged.pk, there.pk}
        assert ids({"neighborhood": ["fishtown", "kensington"]}) == {
            here.pk,
            untagged.pk,
            there.pk,
        }
        assert ids({"tag": "lights"}) == {here.pk, there.pk}
        assert ids({"category": "safety", "neighborhood": "fishtown"}) == {untagged.pk}

    def test_sorts_new_top_and_unanswered_with_a_period(self, api, place, staff):
        old = thread(place, title="Old but popular thread")
        Thread.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=10))
        for _ in range(2):
            services.vote(forum_member(place), thread=old)
        answered = thread(place, title="Answered by the city")
        reply(answered, author=staff)
        newest = thread(place, title="The newest thread here")

        def order(**params) -> list[int]:
            return [t["id"] for t in api.get(THREADS, params).json()["results"]]

        assert order(sort="new") == [newest.pk, answered.pk, old.pk]
        assert order(sort="top")[0] == old.pk
        assert old.pk not in order(sort="top", period="week")
        assert order(sort="unanswered") == [old.pk, newest.pk]
        assert order(sort="discussed")[0] == answered.pk

    def test_a_single_neighborhood_leads_with_its_pinned_threads(self, api, place, moderator):
        pinned = thread(place, title="Welcome to the Fishtown forum")
        services.moderate(moderator, "pin", thread=pinned)
        newer = thread(place, title="Something newer happened")

        single = [t["id"] for t in api.get(THREADS, {"neighborhood": "fishtown"}).json()["results"]]
        everywhere = [t["id"] for t in api.get(THREADS, {"sort": "new"}).json()["results"]]

        assert single[0] == pinned.pk
        assert everywhere == [newer.pk, pinned.pk]

    def test_mine_keeps_the_callers_neighborhoods(self, api, api_as, place, elsewhere, author):
        here = thread(place, author=author)
        thread(elsewhere)

        mine = api_as(author).get(THREADS, {"mine": "1"}).json()["results"]

        assert [t["id"] for t in mine] == [here.pk]
        assert error_of(api.get(THREADS, {"mine": "1"}), 401)["code"] == "not_authenticated"

    def test_search_goes_through_the_search_backend(self, api, place, elsewhere):
        found = thread(place, title="Dumping behind the rec center", tags="dumping")
        thread(place, title="Streetlight flicker")
        thread(elsewhere, title="Dumping on the corner lot")

        results = api.get(THREADS, {"q": "dumping", "neighborhood": "fishtown"}).json()["results"]

        assert [t["id"] for t in results] == [found.pk]
        assert results[0]["tags"] == ["dumping"]

    def test_invalid_filters_name_every_parameter_at_fault(self, api):
        response = api.get(
            THREADS,
            {"sort": "best", "period": "year", "neighborhood": "atlantis", "category": "x"},
        )

        error = error_of(response, 400)
        assert error["code"] == "invalid"
        assert set(error["fields"]) == {"sort", "period", "neighborhood", "category"}
        assert "'atlantis'" in error["fields"]["neighborhood"][0]

    def test_is_paginated(self, api, place):
        many_threads(place, 5)

        first = api.get(THREADS, {"page_size": 2}).json()
        last = api.get(THREADS, {"page_size": 2, "page": 3}).json()

        assert first["count"] == 5 and len(first["results"]) == 2
        assert first["next"].endswith("page=2&page_size=2")
        assert len(last["results"]) == 1 and last["next"] is None
        assert error_of(api.get(THREADS, {"page": 9}), 404)["code"] == "not_found"

    @pytest.mark.parametrize("count", [5, 60])
    def test_the_number_of_queries_does_not_grow_with_the_threads(
        self, api, place, count, django_assert_num_queries
    ):
        many_threads(place, count)

        # the neighborhood, count, page (with authors, categories), tags
        with django_assert_num_queries(4):
            response = api.get(THREADS, {"neighborhood": "fishtown", "page_size": 100})

        assert len(response.json()["results"]) == count

    @pytest.mark.parametrize("count", [5, 60])
    def test_nor_for_a_signed_in_caller_and_their_neighborhoods(
        self, token_client, place, count, django_assert_num_queries
    ):
        threads = many_threads(place, count)
        member = forum_member(place)
        client = token_client(member)
        client.get("/api/v1/me/")  # a token's first use records itself once
        for t in threads[:3]:
            services.vote(member, thread=t)

        # token with its user, my neighborhoods, count, page, tags, the caller's votes
        with django_assert_num_queries(6):
            response = client.get(THREADS, {"mine": "1", "page_size": 100})

        results = response.json()["results"]
        assert len(results) == count
        assert sum(t["viewer"]["voted"] for t in results) == 3


# Opening and changing a thread --------------------------------------------------------------


class TestCreate:
    def test_opens_a_thread_the_author_follows(self, api_as, place, author):
        response = api_as(author).post(THREADS, new_thread_payload(place), format="json")

        assert response.status_code == 201, response.content
        body = response.json()
        created = Thread.objects.get()
        assert response["Location"] == f"{THREADS}{created.pk}/"
        assert body["id"] == created.pk and body["neighborhood"] == "fishtown"
        assert body["tags"] == ["safety", "streetlights"] and body["category"] == "streets"
        assert body["body_html"] == "<p>Dark for a <strong>week</strong> now.</p>"
        assert body["viewer"]["follow_state"] == "following"
        assert body["viewer"]["photo_locations"] == []

    def test_tags_may_be_one_comma_separated_string(self, api_as, place, author):
        payload = new_thread_payload(place, tags="Potholes, #Safety")

        body = api_as(author).post(THREADS, payload, format="json").json()

        assert body["tags"] == ["potholes", "safety"]

    def test_a_photos_position_is_offered_not_published(
        self, api_as, place, author, settings, tmp_path
    ):
        settings.MEDIA_ROOT = tmp_path
        lat, lon = inside(place)
        payload = new_thread_payload(place, lat="", lon="", tags=["lights", "safety"])
        payload["photos"] = [jpeg(gps=(lat, lon)), jpeg()]
        client = api_as(author)

        response = client.post(THREADS, payload, format="multipart")

        assert response.status_code == 201, response.content
        body = response.json()
        assert body["lat"] is None and len(body["photos"]) == 2
        assert body["tags"] == ["lights", "safety"]
        assert {"url", "width", "height"} <= set(body["photos"][0])
        offers = body["viewer"]["photo_locations"]
        assert [o["photo_id"] for o in offers] == [body["photos"][0]["id"]]
        assert client.get(thread_url(Thread.objects.get()), format="json").json()["lat"] is None

        used = client.post(
            f"{THREADS}{body['id']}/photo-location/", {"photo_id": offers[0]["photo_id"]}
        )

        assert used.status_code == 200, used.content
        assert used.json()["lat"] == pytest.approx(lat, abs=1e-4)
        assert used.json()["viewer"]["photo_locations"] == []

    @pytest.mark.parametrize(
        ("changes", "field"),
        [
            ({"title": ""}, "title"),
            ({"tags": ["not a tag!"]}, "tags"),
            ({"lat": 1.9, "lon": 1.9}, "location"),
            ({"category": "weather"}, "category"),
            ({"neighborhood": "atlantis"}, "neighborhood"),
            ({"body": ""}, "body"),
            ({"lat": "north"}, "lat"),
        ],
    )
    def test_validation_errors_name_the_field(self, api_as, place, author, changes, field):
        payload = new_thread_payload(place, **changes)

        error = error_of(api_as(author).post(THREADS, payload, format="json"), 400)

        assert error["code"] == "invalid"
        assert set(error["fields"]) == {field}, error
        assert not Thread.objects.exists()

    def test_several_faults_are_reported_together(self, api_as, place, author):
        payload = new_thread_payload(place, title="Hi", tags="a b c d e f", lat=1.9, lon=1.9)

        error = error_of(api_as(author).post(THREADS, payload, format="json"), 400)

        assert set(error["fields"]) == {"title", "tags", "location"}

    def test_a_photo_that_is_not_an_image_is_named(self, api_as, place, author, settings, tmp_path):
        settings.MEDIA_ROOT = tmp_path
        fake = SimpleUploadedFile("x.png", b"not an image", content_type="image/png")
        payload = {**new_thread_payload(place, tags="lights"), "photos": [fake]}

        error = error_of(api_as(author).post(THREADS, payload, format="multipart"), 400)

        assert set(error["fields"]) == {"photos"}
        assert "x.png" in error["fields"]["photos"][0]
        assert not Thread.objects.exists()


class TestOneThread:
    def test_shows_the_body_photos_cosigners_answer_and_viewer(
        self, api_as, place, author, topic, staff
    ):
        organization = OrganizationFactory(
            name="Fishtown Neighbors", verified=True, neighborhoods=[place]
        )
        admin = OrganizationMembershipFactory(organization=organization, admin=True).user
        services.cosign(topic, organization, user=admin)
        official = reply(topic, author=staff, body="A crew is scheduled for Monday.")
        services.mark_answer(topic, official, user=author)

        body = api_as(author).get(thread_url(topic)).json()

        assert body["body_html"] == "<p>It has been dark for a <strong>week</strong>.</p>"
        assert body["photos"] == [] and body["cosigned_by"] == ["Fishtown Neighbors"]
        assert body["answer"]["id"] == official.pk and body["answer"]["is_official"]
        assert body["answer"]["department"] == "Streets Department"
        assert body["state"] == "visible" and body["merged_into"] is None
        assert body["viewer"] == {
            "voted": False,
            "mine": True,
            "follow_state": "following",
            "can_reply": True,
            "reply_refusal": None,
            "can_edit": True,
            "can_moderate": False,
            "can_mark_answer": True,
            "can_appeal": False,
            "photo_locations": [],
        }

    def test_anonymous_readers_are_told_why_they_cannot_reply(self, api, topic):
        viewer = api.get(thread_url(topic)).json()["viewer"]

        assert viewer["can_reply"] is False and viewer["can_edit"] is False
        assert viewer["reply_refusal"] == "Sign in to take part in the discussion."

    def test_hidden_threads_are_seen_by_their_author_and_moderators_only(
        self, api, api_as, place, author, topic, moderator
    ):
        services.moderate(moderator, "hide", thread=topic, reason="Personal details")

        assert error_of(api.get(thread_url(topic)), 404)["code"] == "not_found"
        assert error_of(api_as(forum_member(place)).get(thread_url(topic)), 404)
        own = api_as(author).get(thread_url(topic)).json()
        assert own["state"] == "hidden" and own["moderation_note"] == "Personal details"
        assert own["viewer"]["can_appeal"] and not own["viewer"]["can_reply"]
        assert api_as(moderator).get(thread_url(topic)).status_code == 200
        assert error_of(api.get(thread_url(topic, "replies")), 404)

    def test_a_merged_duplicate_points_to_the_original(self, api, place, topic, moderator):
        duplicate = thread(place, title="Streetlight broken on the corner")

        services.merge_threads(duplicate, topic, actor=moderator, reason="Same light")
        body = api.get(thread_url(duplicate)).json()

        assert body["merged_into"] == topic.pk and body["state"] == "merged"
        assert body["viewer"]["can_reply"] is False

    def test_the_author_edits_and_deletes(self, api_as, place, author, topic, moderator):
        client = api_as(author)

        edited = client.patch(
            thread_url(topic), {"title": "Streetlight still out", "tags": "lights"}, format="json"
        )
        assert edited.status_code == 200, edited.content
        assert edited.json()["title"] == "Streetlight still out"
        assert edited.json()["tags"] == ["lights"] and edited.json()["edited_at"]

        unpinned = client.patch(thread_url(topic), {"lat": None, "lon": None}, format="json")
        assert unpinned.json()["lat"] is None

        assert client.delete(thread_url(topic)).status_code == 204
        assert fresh(topic).deleted_at is not None
        assert error_of(client.get(thread_url(topic)), 404)
        assert api_as(moderator).get(thread_url(topic)).json()["state"] == "deleted"

    def test_an_edit_names_the_field_at_fault(self, api_as, author, topic):
        error = error_of(api_as(author).patch(thread_url(topic), {"title": ""}, format="json"), 400)

        assert set(error["fields"]) == {"title"}

    def test_unknown_threads_are_a_json_404(self, api):
        assert error_of(api.get(f"{THREADS}999999/"), 404)["code"] == "not_found"


# Replies ------------------------------------------------------------------------------------


class TestReplies:
    def test_lists_replies_oldest_first_with_quotes(self, api, place, topic):
        first = reply(topic, body="First!")
        second = reply(topic, body="Quoting you.", quote=first)

        body = api.get(thread_url(topic, "replies")).json()

        assert [r["id"] for r in body["results"]] == [first.pk, second.pk]
        assert body["results"][1]["quote"]["id"] == first.pk
        assert body["results"][1]["quote"]["excerpt"] == "First!"
        assert body["results"][0]["viewer"] == {"voted": False, "mine": False}

    def test_a_staff_reply_is_official_with_the_department(self, api_as, topic, staff):
        response = api_as(staff).post(
            thread_url(topic, "replies"), {"body": "We have a crew on it."}, format="json"
        )

        assert response.status_code == 201, response.content
        body = response.json()
        assert body["is_official"] is True and body["department"] == "Streets Department"
        assert body["viewer"] == {"voted": False, "mine": True}
        assert api_as(staff).get(thread_url(topic)).json()["has_official_reply"] is True

    def test_a_hidden_reply_keeps_its_place_without_its_text(self, api, place, topic, moderator):
        shown = reply(topic, body="Nice neighbors here.")
        hidden = reply(topic, body="Here is my neighbor's phone number.")
        services.moderate(moderator, "hide", reply=hidden, reason="Personal details")

        results = api.get(thread_url(topic, "replies")).json()["results"]

        assert [r["id"] for r in results] == [shown.pk, hidden.pk]
        assert results[1]["state"] == "hidden"
        assert results[1]["body_html"] == "" and results[1]["author"] == ""
        assert "phone" not in json.dumps(results)

    def test_quoting_a_reply_from_another_thread_is_refused(self, api_as, place, author, topic):
        other = reply(thread(place, title="Another thread entirely"))

        response = api_as(author).post(
            thread_url(topic, "replies"), {"body": "See this", "quote": other.pk}, format="json"
        )

        assert set(error_of(response, 400)["fields"]) == {"quote"}

    def test_an_empty_reply_names_the_body(self, api_as, author, topic):
        response = api_as(author).post(thread_url(topic, "replies"), {"body": " "}, format="json")

        assert set(error_of(response, 400)["fields"]) == {"body"}

    def test_the_author_edits_and_deletes_a_reply(self, api, api_as, place, topic):
        writer = forum_member(place)
        answer = reply(topic, author=writer, body="Typo hre.")
        client = api_as(writer)

        edited = client.patch(reply_url(answer), {"body": "Typo here."}, format="json")
        assert edited.status_code == 200, edited.content
        assert edited.json()["body_html"] == "<p>Typo here.</p>" and edited.json()["edited_at"]
        assert error_of(api_as(forum_member(place)).delete(reply_url(answer)), 403)

        assert client.delete(reply_url(answer)).status_code == 204
        placeholder = api.get(thread_url(topic, "replies")).json()["results"][0]
        assert placeholder["state"] == "deleted" and placeholder["body_html"] == ""

    @pytest.mark.parametrize("count", [3, 30])
    def test_the_number_of_queries_does_not_grow_with_the_replies(
        self, api, place, topic, count, django_assert_num_queries
    ):
        writers = [forum_member(place) for _ in range(3)]
        earlier = Reply.objects.create(
            thread=topic, author=writers[0], body="Quoted", body_html="<p>Quoted</p>"
        )
        Reply.objects.bulk_create(
            Reply(
                thread=topic,
                author=writers[n % 3],
                body="Reply",
                body_html="<p>Reply</p>",
                quote=earlier,
            )
            for n in range(count - 1)
        )

        # the thread, count, page (with authors, departments, quotes)
        with django_assert_num_queries(3):
            response = api.get(thread_url(topic, "replies"), {"page_size": 100})

        assert len(response.json()["results"]) == count


# Support ------------------------------------------------------------------------------------


class TestVotes:
    def test_voting_twice_counts_once_and_withdrawing_counts_zero(self, api_as, place, topic):
        client = api_as(forum_member(place))

        first = client.post(thread_url(topic, "vote"))
        second = client.post(thread_url(topic, "vote"))

        assert first.json() == second.json() == {"vote_count": 1, "voted": True}
        assert fresh(topic).vote_count == 1
        assert client.get(thread_url(topic)).json()["viewer"]["voted"] is True
        assert client.delete(thread_url(topic, "vote")).json() == {"vote_count": 0, "voted": False}
        assert client.delete(thread_url(topic, "vote")).json() == {"vote_count": 0, "voted": False}
        assert fresh(topic).vote_count == 0

    def test_replies_take_support_too(self, api, api_as, place, topic):
        answer = reply(topic)
        client = api_as(forum_member(place))

        assert client.post(reply_url(answer, "vote")).json() == {"vote_count": 1, "voted": True}
        assert client.post(reply_url(answer, "vote")).json()["vote_count"] == 1
        listed = client.get(thread_url(topic, "replies")).json()["results"][0]
        assert listed["vote_count"] == 1 and listed["viewer"]["voted"] is True
        assert client.delete(reply_url(answer, "vote")).json() == {"vote_count": 0, "voted": False}

    def test_over_the_vote_limit_is_a_429_with_retry_after(
        self, api_as, place, topic, settings, frozen_rate_window
    ):
        settings.ENGAGEMENT = {"FORUM_VOTE_RATE": (2, 3600)}
        client = api_as(forum_member(place))
        assert client.post(thread_url(topic, "vote")).status_code == 200
        assert client.delete(thread_url(topic, "vote")).status_code == 200

        response = client.post(thread_url(topic, "vote"))

        assert error_of(response, 429)["code"] == "rate_limited"
        assert 1 <= int(response["Retry-After"]) <= 3600
        assert fresh(topic).vote_count == 0


# Flags, appeals, following, answers ---------------------------------------------------------


class TestFlagsAndAppeals:
    def test_flagging_a_thread_and_a_reply(self, api_as, place, topic):
        answer = reply(topic)
        client = api_as(forum_member(place))

        on_thread = client.post(
            thread_url(topic, "flag"), {"reason": "off_topic", "note": "Not local"}, format="json"
        )
        on_reply = client.post(reply_url(answer, "flag"), {"reason": "spam"}, format="json")

        assert on_thread.status_code == on_reply.status_code == 201
        assert on_thread.json()["reason"] == "off_topic"
        assert Flag.objects.get(pk=on_thread.json()["id"]).note == "Not local"
        assert Flag.objects.get(pk=on_reply.json()["id"]).reply_id == answer.pk

    def test_an_unknown_reason_names_the_field(self, api_as, place, topic):
        response = api_as(forum_member(place)).post(
            thread_url(topic, "flag"), {"reason": "boring"}, format="json"
        )

        assert set(error_of(response, 400)["fields"]) == {"reason"}

    def test_a_moderators_flag_hides_at_once_and_the_author_appeals_once(
        self, api, api_as, author, topic, moderator
    ):
        api_as(moderator).post(thread_url(topic, "flag"), {"reason": "abuse"}, format="json")

        assert fresh(topic).visibility == Visibility.PENDING
        assert error_of(api.get(thread_url(topic)), 404)
        client = api_as(author)
        first = client.post(thread_url(topic, "appeal"), {"text": "It was a joke."}, format="json")
        again = client.post(thread_url(topic, "appeal"), {"text": "Please?"}, format="json")

        assert first.status_code == 201, first.content
        assert set(error_of(again, 400)["fields"]) == {"text"}
        assert client.get(thread_url(topic)).json()["viewer"]["can_appeal"] is False

    def test_only_the_author_appeals_a_hidden_reply(self, api_as, place, topic, moderator):
        writer = forum_member(place)
        answer = reply(topic, author=writer)
        services.moderate(moderator, "hide", reply=answer, reason="Rude")

        other = api_as(forum_member(place)).post(
            reply_url(answer, "appeal"), {"text": "Unfair"}, format="json"
        )
        own = api_as(writer).post(reply_url(answer, "appeal"), {"text": "Unfair"}, format="json")

        assert error_of(other, 403)["code"] == "permission_denied"
        assert own.status_code == 201


class TestFollowAndAnswer:
    def test_follow_mute_and_neither(self, api_as, place, topic):
        member = forum_member(place)
        client = api_as(member)

        for state in ("following", "muted", "none"):
            response = client.put(thread_url(topic, "follow"), {"state": state}, format="json")
            assert response.json() == {"state": state}
            assert services.follow_state(member, topic) == state
        bad = client.put(thread_url(topic, "follow"), {"state": "loud"}, format="json")
        assert set(error_of(bad, 400)["fields"]) == {"state"}

    def test_the_author_marks_an_official_reply_as_the_answer_and_clears_it(
        self, api_as, place, author, topic, staff
    ):
        official = reply(topic, author=staff)
        resident = reply(topic)
        client = api_as(author)

        marked = client.post(thread_url(topic, "answer"), {"reply": official.pk}, format="json")
        assert marked.status_code == 200, marked.content
        assert marked.json()["answer_id"] == official.pk
        assert marked.json()["answer"]["is_official"] is True

        refused = client.post(thread_url(topic, "answer"), {"reply": resident.pk}, format="json")
        assert set(error_of(refused, 400)["fields"]) == {"reply"}
        unknown = client.post(thread_url(topic, "answer"), {"reply": 999999}, format="json")
        assert set(error_of(unknown, 400)["fields"]) == {"reply"}

        cleared = client.post(thread_url(topic, "answer"), {"reply": None}, format="json")
        assert cleared.json()["answer_id"] is None and cleared.json()["answer"] is None


# Similar threads and categories -------------------------------------------------------------


class TestSimilar:
    def test_finds_a_near_duplicate_title_nearby(self, api, place, topic):
        lat, lon = inside(place)
        Thread.objects.filter(pk=topic.pk).update(lat=lat, lon=lon)
        thread(place, title="Community garden volunteers wanted")

        response = api.get(
            SIMILAR,
            {
                "neighborhood": "fishtown",
                "title": "Streetlight broken at corner",
                "lat": lat,
                "lon": lon,
            },
        )

        assert response.status_code == 200, response.content
        found = response.json()
        assert [s["thread"]["id"] for s in found] == [topic.pk]
        assert found[0]["score"] >= 0.35 and found[0]["distance_m"] == 0
        assert found[0]["thread"]["tags"] == ["safety", "streetlights"]

    def test_without_a_pin_the_distance_is_unknown(self, api, topic):
        found = api.get(
            SIMILAR, {"neighborhood": "fishtown", "title": "Broken streetlight on corner"}
        ).json()

        assert found[0]["thread"]["id"] == topic.pk and found[0]["distance_m"] is None

    def test_missing_parameters_are_named(self, api):
        error = error_of(api.get(SIMILAR, {"lat": "1.0"}), 400)

        assert error["code"] == "missing_parameter"
        assert set(error["fields"]) == {"neighborhood", "title", "lon"}

    def test_an_unknown_neighborhood_or_a_bad_pin_is_a_400(self, api, place):
        unknown = api.get(SIMILAR, {"neighborhood": "atlantis", "title": "Streetlight"})
        bad_pin = api.get(
            SIMILAR, {"neighborhood": "fishtown", "title": "Streetlight", "lat": 91, "lon": 0}
        )

        assert set(error_of(unknown, 400)["fields"]) == {"neighborhood"}
        assert error_of(bad_pin, 400)["code"] == "invalid_point"


def test_categories_are_listed_in_order(api):
    forum_category()

    body = api.get(CATEGORIES).json()

    assert body[0].keys() == {"slug", "name", "description"}
    assert "streets" in [c["slug"] for c in body]


# The schema ---------------------------------------------------------------------------------

FORUM_PATHS = {
    "/api/v1/threads/": {"get", "post"},
    "/api/v1/threads/similar/": {"get"},
    "/api/v1/threads/{id}/": {"get", "patch", "delete"},
    "/api/v1/threads/{id}/replies/": {"get", "post"},
    "/api/v1/threads/{id}/vote/": {"post", "delete"},
    "/api/v1/threads/{id}/flag/": {"post"},
    "/api/v1/threads/{id}/appeal/": {"post"},
    "/api/v1/threads/{id}/follow/": {"put"},
    "/api/v1/threads/{id}/answer/": {"post"},
    "/api/v1/threads/{id}/photo-location/": {"post"},
    "/api/v1/replies/{id}/": {"patch", "delete"},
    "/api/v1/replies/{id}/vote/": {"post", "delete"},
    "/api/v1/replies/{id}/flag/": {"post"},
    "/api/v1/replies/{id}/appeal/": {"post"},
    "/api/v1/forum-categories/": {"get"},
}


@pytest.fixture(scope="module")
def schema_and_problems(django_db_setup, django_db_blocker) -> tuple[dict, list[str]]:
    GENERATOR_STATS.reset()
    with django_db_blocker.unblock():
        response = APIClient().get("/api/v1/schema/", {"format": "json"})
    problems = [*GENERATOR_STATS._warn_cache, *GENERATOR_STATS._error_cache]
    assert response.status_code == 200
    return json.loads(response.content), problems


@pytest.fixture
def schema(schema_and_problems) -> dict:
    return schema_and_problems[0]


class TestSchema:
    def test_generates_without_warnings_or_errors(self, schema_and_problems):
        assert schema_and_problems[1] == []

    def test_lists_every_forums_operation(self, schema):
        for path, methods in FORUM_PATHS.items():
            assert path in schema["paths"], path
            assert set(schema["paths"][path]) >= methods, path

    def test_the_shapes_match_the_payloads(self, schema, api, topic):
        components = schema["components"]["schemas"]
        answer = reply(topic)
        detail = api.get(thread_url(topic)).json()
        listed = api.get(thread_url(topic, "replies")).json()["results"][0]

        assert set(components["Thread"]["properties"]) == set(services.thread_payload(topic))
        assert set(components["ThreadDetail"]["properties"]) == set(detail)
        assert set(components["ThreadViewer"]["properties"]) == set(detail["viewer"])
        assert set(components["Reply"]["properties"]) == set(listed)
        assert set(listed) - {"viewer"} == set(services.reply_payload(answer))

    def test_the_feed_is_paginated_with_its_filters(self, schema):
        operation = schema["paths"]["/api/v1/threads/"]["get"]
        names = {p["name"] for p in operation["parameters"]}

        assert names >= {"neighborhood", "sort", "period", "tag", "category", "mine", "q", "page"}
        sort = next(p for p in operation["parameters"] if p["name"] == "sort")
        assert set(sort["schema"]["enum"]) == set(services.SORTS)
        assert "PaginatedThreadListItemList" in schema["components"]["schemas"]

    def test_opening_a_thread_accepts_json_and_multipart(self, schema):
        content = schema["paths"]["/api/v1/threads/"]["post"]["requestBody"]["content"]

        assert {"application/json", "multipart/form-data"} <= set(content)

    def test_similar_threads_need_a_neighborhood_and_a_title(self, schema):
        parameters = schema["paths"]["/api/v1/threads/similar/"]["get"]["parameters"]

        assert {p["name"] for p in parameters if p.get("required")} == {"neighborhood", "title"}

    def test_actions_need_authentication(self, schema):
        operation = schema["paths"]["/api/v1/threads/{id}/vote/"]["post"]

        assert {"tokenAuth": []} in operation["security"]
        assert {} not in operation["security"]
