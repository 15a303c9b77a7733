"""JSON API of the forums: threads, replies, support, flags, appeals, following, answers.

The views check who is asking, turn the request into arguments for :mod:`forums.services` and
return :func:`forums.services.thread_payload` / :func:`forums.services.reply_payload` (plus a
``viewer`` block about the caller); the rules themselves live in the services.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict

from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
)
from rest_framework import serializers, status
from rest_framework.exceptions import NotAuthenticated
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import IsAuthenticatedOrReadOnly
from rest_framework.response import Response
from rest_framework.utils import html

from alerts.api import TRUE_VALUES, ApiPagination
from neighborhoods.apibase import ApiError, ApiView, AuthenticatedApiView
from neighborhoods.apibase import invalid as _invalid
from neighborhoods.apibase import query_list as _slugs
from neighborhoods.apibase import validated as _validated
from neighborhoods.geometry import GeometryError, validate_point
from neighborhoods.models import Neighborhood
from neighborhoods.permissions import is_authenticated
from neighborhoods.ratelimit import client_ip

from . import services
from .conf import app_settings
from .models import Flag, ForumCategory, Reply, Thread, Visibility, Vote

FOLLOW_STATES = ["following", "muted", "none"]
THREAD_STATES = ["visible", "pending", "hidden", "deleted", "merged"]
REPLY_STATES = ["visible", "hidden", "deleted"]
THREAD_RELATIONS = ("neighborhood", "category", "author__engagement_profile")


# Pagination ---------------------------------------------------------------------------------


class ForumPagination(ApiPagination):
    """``?page=`` and ``?page_size=`` (up to 100); ``FORUM_PAGE_SIZE`` rows a page by default."""

    def get_page_size(self, request) -> int:
        self.page_size = app_settings.FORUM_PAGE_SIZE
        return PageNumberPagination.get_page_size(self, request)


# Response shapes (for the schema; the data itself is built by the services) -----------------


class ThreadSerializer(serializers.Serializer):
    """:func:`forums.services.thread_payload`: what lists and live events show of a thread."""

    id = serializers.IntegerField()
    title = serializers.CharField()
    url = serializers.CharField(help_text="The thread's page.")
    neighborhood = serializers.SlugField()
    category = serializers.SlugField()
    category_name = serializers.CharField()
    tags = serializers.ListField(child=serializers.CharField())
    author = serializers.CharField(help_text="The author's display name (never the account).")
    excerpt = serializers.CharField(help_text="The start of the body as plain text.")
    vote_count = serializers.IntegerField(help_text="People who support the thread.")
    reply_count = serializers.IntegerField(help_text="Visible replies.")
    hot = serializers.FloatField(help_text="The `hot` sort key: support decayed by age.")
    lat = serializers.FloatField(allow_null=True)
    lon = serializers.FloatField(allow_null=True)
    is_locked = serializers.BooleanField()
    is_pinned = serializers.BooleanField()
    has_official_reply = serializers.BooleanField()
    answer_id = serializers.IntegerField(allow_null=True, help_text="The official answer.")
    created_at = serializers.DateTimeField()
    last_activity_at = serializers.DateTimeField()
    edited_at = serializers.DateTimeField(allow_null=True)


class ItemViewerSerializer(serializers.Serializer):
    voted = serializers.BooleanField(help_text="The caller supports it.")
    mine = serializers.BooleanField(help_text="The caller wrote it.")


class ThreadListItemSerializer(ThreadSerializer):
    viewer = ItemViewerSerializer()


class ReplyQuoteSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    author = serializers.CharField(help_text="Empty when the quoted reply is no longer shown.")
    excerpt = serializers.CharField()
    url = serializers.CharField(help_text="An anchor on the thread's page.")


class ReplySerializer(serializers.Serializer):
    """:func:`forums.services.reply_payload` and the caller's relation to the reply."""

    id = serializers.IntegerField()
    thread = serializers.IntegerField()
    author = serializers.CharField(help_text="Empty for hidden and deleted replies.")
    body_html = serializers.CharField(help_text="Sanitised HTML; empty unless visible.")
    state = serializers.ChoiceField(choices=REPLY_STATES)
    quote = ReplyQuoteSerializer(allow_null=True)
    is_official = serializers.BooleanField(help_text="Written by city staff.")
    department = serializers.CharField(help_text="The staff author's department.")
    vote_count = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    edited_at = serializers.DateTimeField(allow_null=True)
    viewer = ItemViewerSerializer()


class ThreadPhotoSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    url = serializers.CharField()
    width = serializers.IntegerField()
    height = serializers.IntegerField()


class PhotoLocationSerializer(serializers.Serializer):
    photo_id = serializers.IntegerField()
    lat = serializers.FloatField()
    lon = serializers.FloatField()


class ThreadViewerSerializer(ItemViewerSerializer):
    # Not an enum in the schema: the same choices are the Follow request's ``state``.
    follow_state = serializers.CharField(help_text="`following`, `muted` or `none`.")
    can_reply = serializers.BooleanField()
    reply_refusal = serializers.CharField(
        allow_null=True, help_text="Why the caller may not reply (null when they may)."
    )
    can_edit = serializers.BooleanField(help_text="Edit or delete the thread.")
    can_moderate = serializers.BooleanField()
    can_mark_answer = serializers.BooleanField()
    can_appeal = serializers.BooleanField(help_text="The author of hidden content, once.")
    photo_locations = PhotoLocationSerializer(
        many=True,
        help_text="For the author of a thread without a pin: positions found in its photos, "
        "to accept with `POST /threads/<id>/photo-location/`.",
    )


class ThreadDetailSerializer(ThreadSerializer):
    body = serializers.CharField(help_text="Markdown, for editing.")
    body_html = serializers.CharField(help_text="The body rendered and sanitised.")
    state = serializers.ChoiceField(choices=THREAD_STATES)
    moderation_note = serializers.CharField(help_text="Why it is hidden (empty when visible).")
    photos = ThreadPhotoSerializer(many=True)
    cosigned_by = serializers.ListField(
        child=serializers.CharField(), help_text="Organizations that co-signed the thread."
    )
    answer = ReplySerializer(allow_null=True, help_text="The official answer, shown first.")
    merged_into = serializers.IntegerField(
        allow_null=True, help_text="The thread this duplicate was merged into."
    )
    viewer = ThreadViewerSerializer()


class SimilarThreadSerializer(serializers.Serializer):
    thread = ThreadSerializer()
    score = serializers.FloatField(help_text="0–1: title similarity, nearer pins score higher.")
    distance_m = serializers.IntegerField(
        allow_null=True, help_text="From the given pin to the thread's (null without both)."
    )


class VoteResultSerializer(serializers.Serializer):
    vote_count = serializers.IntegerField()
    voted = serializers.BooleanField()


class FlagResultSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    reason = serializers.ChoiceField(choices=Flag.Reason.choices)
    created_at = serializers.DateTimeField()


class AppealResultSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    created_at = serializers.DateTimeField()


class ForumCategorySerializer(serializers.Serializer):
    slug = serializers.SlugField()
    name = serializers.CharField()
    description = serializers.CharField()


# Requests -----------------------------------------------------------------------------------


@extend_schema_field(
    {
        "oneOf": [
            {"type": "array", "items": {"type": "string"}},
            {"type": "string", "description": "comma-separated"},
        ],
        "example": ["streetlights", "safety"],
    }
)
class TagsField(serializers.Field):
    """A list of tags, or one comma-separated string (a form may also repeat the field)."""

    def get_value(self, dictionary):
        if html.is_html_input(dictionary) and self.field_name in dictionary:
            values = dictionary.getlist(self.field_name)
            return values[0] if len(values) == 1 else values
        return super().get_value(dictionary)

    def to_internal_value(self, data) -> list[str] | str:
        if isinstance(data, str) or (
            isinstance(data, list) and all(isinstance(tag, str) for tag in data)
        ):
            return data
        raise serializers.ValidationError("Give a list of tags or a comma-separated string.")

    def to_representation(self, value):
        return value


class ThreadCreateSerializer(serializers.Serializer):
    neighborhood = serializers.SlugField(help_text="The neighborhood's slug.")
    title = serializers.CharField(
        allow_blank=True, help_text=f"5 to {services.TITLE_MAX} characters."
    )
    body = serializers.CharField(allow_blank=True, help_text="Markdown.")
    category = serializers.SlugField(
        required=False, help_text="A slug from `GET /api/v1/forum-categories/`."
    )
    tags = TagsField(required=False, help_text=f"At most {services.MAX_TAGS}.")
    lat = serializers.FloatField(required=False, allow_null=True, help_text="The map pin.")
    lon = serializers.FloatField(required=False, allow_null=True)
    photos = serializers.ListField(
        child=serializers.FileField(allow_empty_file=True),
        required=False,
        help_text="multipart only: JPEG, PNG or WebP files (repeat the field).",
    )


class ThreadEditSerializer(serializers.Serializer):
    title = serializers.CharField(required=False, allow_blank=True)
    body = serializers.CharField(required=False, allow_blank=True)
    category = serializers.SlugField(required=False)
    tags = TagsField(required=False, help_text="Replaces the tags.")
    lat = serializers.FloatField(
        required=False, allow_null=True, help_text="`lat` and `lon` null remove the pin."
    )
    lon = serializers.FloatField(required=False, allow_null=True)


class ReasonRequestSerializer(serializers.Serializer):
    reason = serializers.CharField(
        required=False, allow_blank=True, max_length=500, help_text="For the moderation log."
    )


class ReplyCreateSerializer(serializers.Serializer):
    body = serializers.CharField(allow_blank=True, help_text="Markdown.")
    quote = serializers.IntegerField(
        required=False, allow_null=True, help_text="The id of a reply in this thread to quote."
    )


class ReplyEditSerializer(serializers.Serializer):
    body = serializers.CharField(allow_blank=True, help_text="Markdown.")


class FlagRequestSerializer(serializers.Serializer):
    reason = serializers.ChoiceField(choices=Flag.Reason.choices)
    note = serializers.CharField(
        required=False, allow_blank=True, help_text="Up to 500 characters."
    )


class AppealRequestSerializer(serializers.Serializer):
    text = serializers.CharField(allow_blank=True, help_text="Why it should be shown again.")


class FollowSerializer(serializers.Serializer):
    state = serializers.ChoiceField(choices=FOLLOW_STATES)


class AnswerRequestSerializer(serializers.Serializer):
    reply = serializers.IntegerField(
        allow_null=True, help_text="An official reply in this thread; null clears the answer."
    )


class PhotoLocationRequestSerializer(serializers.Serializer):
    photo_id = serializers.IntegerField()


# Helpers ------------------------------------------------------------------------------------


def _neighborhood(slug: str, field: str = "neighborhood") -> Neighborhood:
    found = Neighborhood.objects.filter(slug=slug).first()
    if found is None:
        raise _invalid(
            {field: [f"No neighborhood has the slug {slug!r}."]}, "Unknown neighborhood."
        )
    return found


def _category(slug: str | None) -> ForumCategory | None:
    if not slug:
        return None
    found = ForumCategory.objects.filter(slug=slug).first()
    if found is None:
        raise _invalid({"category": [f"No category has the slug {slug!r}."]}, "Unknown category.")
    return found


def _readable_thread(request, pk: int) -> Thread:
    """The thread, unless it is hidden or deleted and the caller may not see it."""
    thread = get_object_or_404(Thread.objects.select_related(*THREAD_RELATIONS), pk=pk)
    if not services.can_read_thread(request.user, thread):
        raise Http404("No such thread.")
    return thread


def _readable_reply(request, pk: int) -> Reply:
    reply = get_object_or_404(
        Reply.objects.select_related(
            *(f"thread__{relation}" for relation in THREAD_RELATIONS),
            "author__engagement_profile",
            "department",
            "quote__author__engagement_profile",
        ),
        pk=pk,
    )
    if not services.can_read_thread(request.user, reply.thread):
        raise Http404("No such reply.")
    return reply


def _mine(user, obj: Thread | Reply) -> bool:
    return is_authenticated(user) and obj.author_id == user.pk


def _voted_ids(user, *, threads: Sequence[Thread] = (), replies: Sequence[Reply] = ()) -> set[int]:
    """Which of these the caller supports, in one query (none for anonymous callers)."""
    if not is_authenticated(user) or not (threads or replies):
        return set()
    if replies:
        votes = Vote.objects.filter(user=user, reply_id__in=[r.pk for r in replies])
        return set(votes.values_list("reply_id", flat=True))
    votes = Vote.objects.filter(user=user, reply=None, thread_id__in=[t.pk for t in threads])
    return set(votes.values_list("thread_id", flat=True))


def _thread_items(threads: list[Thread], user) -> list[dict]:
    threads = services.with_tag_names(threads)
    voted = _voted_ids(user, threads=threads)
    return [
        {
            **services.thread_payload(thread),
            "viewer": {"voted": thread.pk in voted, "mine": _mine(user, thread)},
        }
        for thread in threads
    ]


def _reply_items(replies: list[Reply], user) -> list[dict]:
    voted = _voted_ids(user, replies=replies)
    return [
        {
            **services.reply_payload(reply),
            "viewer": {"voted": reply.pk in voted, "mine": _mine(user, reply)},
        }
        for reply in replies
    ]


def _thread_state(thread: Thread) -> str:
    if thread.merged_into_id:
        return "merged"
    if thread.deleted_at is not None:
        return "deleted"
    return thread.visibility


def _thread_detail(thread: Thread, user) -> dict:
    data = services.thread_payload(thread)
    state = _thread_state(thread)
    if thread.is_listed:
        refusal = services.reply_refusal(user, thread)
    else:
        refusal = "This thread is not open for replies."
    answer = None
    if thread.answer_id:
        answer = services.replies_of(thread).filter(pk=thread.answer_id).first()
    mine = _mine(user, thread)
    data.update(
        body=thread.body,
        body_html=thread.body_html,
        state=state,
        moderation_note=thread.moderation_note if state in ("pending", "hidden") else "",
        photos=[
            {"id": p.pk, "url": p.image.url, "width": p.width, "height": p.height}
            for p in thread.photos.all()
        ],
        cosigned_by=list(thread.cosigned_by.order_by("name").values_list("name", flat=True)),
        answer=_reply_items([answer], user)[0] if answer else None,
        merged_into=thread.merged_into_id,
        viewer={
            "voted": services.has_voted(user, thread=thread),
            "mine": mine,
            "follow_state": services.follow_state(user, thread),
            "can_reply": refusal is None,
            "reply_refusal": refusal,
            "can_edit": services.can_edit(user, thread),
            "can_moderate": services.can_moderate(user, thread.neighborhood),
            "can_mark_answer": services.can_mark_answer(user, thread),
            "can_appeal": mine
            and state in (Visibility.PENDING, Visibility.HIDDEN)
            and services.appeal_of(thread=thread) is None,
            "photo_locations": [
                asdict(offer) for offer in services.photo_location_offers(thread, user)
            ],
        },
    )
    return data


def _detail_response(thread: Thread, request, http_status: int = status.HTTP_200_OK) -> Response:
    thread = Thread.objects.select_related(*THREAD_RELATIONS).get(pk=thread.pk)
    return Response(_thread_detail(thread, request.user), status=http_status)


def _vote_response(count: int, voted: bool) -> Response:
    return Response({"vote_count": count, "voted": voted})


ERRORS = {400: None, 401: None, 403: None, 404: None}
LIMITED = {**ERRORS, 429: OpenApiResponse(description="Over a rate limit; see `Retry-After`.")}


# Threads ------------------------------------------------------------------------------------


class ThreadListView(ApiView):
    permission_classes = [IsAuthenticatedOrReadOnly]
    pagination_class = ForumPagination

    @extend_schema(
        summary="Threads of one, several or all neighborhoods, sorted",
        parameters=[
            OpenApiParameter(
                "neighborhood",
                str,
                description="a neighborhood's slug; several comma-separated or repeated",
            ),
            OpenApiParameter("sort", str, enum=list(services.SORTS), default="hot"),
            OpenApiParameter(
                "period", str, enum=list(services.PERIODS), default="all", description="for top"
            ),
            OpenApiParameter("tag", str, description="a tag"),
            OpenApiParameter("category", str, description="a category's slug"),
            OpenApiParameter(
                "mine", bool, description="only the caller's neighborhoods (needs sign-in)"
            ),
            OpenApiParameter(
                "q", str, description="search title, body and tags; results by relevance"
            ),
        ],
        responses={200: ThreadListItemSerializer(many=True), 400: None, 401: None},
    )
    def get(self, request):
        params = request.query_params
        errors: dict[str, list[str]] = {}
        sort = params.get("sort") or "hot"
        if sort not in services.SORTS:
            errors["sort"] = [f"Use one of {', '.join(services.SORTS)}."]
        period = params.get("period") or "all"
        if period not in services.PERIODS:
            errors["period"] = [f"Use one of {', '.join(services.PERIODS)}."]
        slugs = _slugs(request, "neighborhood")
        found = {n.slug: n for n in Neighborhood.objects.filter(slug__in=slugs)} if slugs else {}
        unknown = [slug for slug in slugs if slug not in found]
        if unknown:
            errors["neighborhood"] = [f"No neighborhood has the slug {s!r}." for s in unknown]
        category = params.get("category") or ""
        if category and not ForumCategory.objects.filter(slug=category).exists():
            errors["category"] = [f"No category has the slug {category!r}."]
        if errors:
            raise _invalid(errors, "Some filters are invalid.")
        neighborhoods: Neighborhood | list[Neighborhood] | None = (
            [found[slug] for slug in slugs] if slugs else None
        )
        if params.get("mine", "").lower() in TRUE_VALUES:
            if not is_authenticated(request.user):
                raise NotAuthenticated("Sign in to see the threads of your neighborhoods.")
            mine = services.my_neighborhoods(request.user)
            if neighborhoods is not None:
                mine = [n for n in mine if n.slug in found]
            neighborhoods = mine
        elif neighborhoods is not None and len(neighborhoods) == 1:
            neighborhoods = neighborhoods[0]  # a single feed: its pinned threads lead
        tag = params.get("tag", "").strip().lower()
        query = params.get("q", "").strip()
        if query:
            threads = self._search(query, neighborhoods, tag=tag, category=category)
        else:
            threads = services.feed(
                neighborhoods, sort=sort, period=period, tag=tag, category=category
            )
        paginator = ForumPagination()
        page = paginator.paginate_queryset(threads, request, view=self)
        return paginator.get_paginated_response(_thread_items(list(page), request.user))

    def _search(self, query: str, neighborhoods, *, tag: str, category: str) -> list[Thread]:
        single = neighborhoods if isinstance(neighborhoods, Neighborhood) else None
        threads = services.search_threads(query, neighborhood=single)
        if neighborhoods is not None and single is None:
            allowed = {n.pk for n in neighborhoods}
            threads = [t for t in threads if t.neighborhood_id in allowed]
        if category:
            threads = [t for t in threads if t.category.slug == category]
        if tag:
            threads = [t for t in services.with_tag_names(threads) if tag in t._tag_names]
        return threads

    @extend_schema(
        summary="Open a thread (members at the neighborhood's required level)",
        request={
            "application/json": ThreadCreateSerializer,
            "multipart/form-data": ThreadCreateSerializer,
        },
        responses={201: ThreadDetailSerializer, **LIMITED},
    )
    def post(self, request):
        data = _validated(ThreadCreateSerializer, request)
        neighborhood = _neighborhood(data["neighborhood"])
        refusal = services.posting_refusal(request.user, neighborhood)
        if refusal:
            raise PermissionDenied(refusal)
        thread = services.create_thread(
            author=request.user,
            neighborhood=neighborhood,
            title=data["title"],
            body=data["body"],
            category=_category(data.get("category")),
            tags=data.get("tags", ()),
            lat=data.get("lat"),
            lon=data.get("lon"),
            photos=data.get("photos", ()),
            ip=client_ip(request),
        )
        response = _detail_response(thread, request, status.HTTP_201_CREATED)
        response["Location"] = reverse("api-thread", args=[thread.pk])
        return response


class ThreadDetailView(ApiView):
    permission_classes = [IsAuthenticatedOrReadOnly]

    @extend_schema(
        summary="One thread with its photos, co-signers, answer and what the caller may do",
        description="A merged duplicate answers `200` with `merged_into` set (and `state` "
        "`merged`); its replies, support and followers are in that thread now.",
        responses={200: ThreadDetailSerializer, 404: None},
    )
    def get(self, request, pk: int):
        return Response(_thread_detail(_readable_thread(request, pk), request.user))

    @extend_schema(
        summary="Edit a thread (its author, or a moderator); the earlier text is kept",
        request=ThreadEditSerializer,
        responses={200: ThreadDetailSerializer, **ERRORS},
    )
    def patch(self, request, pk: int):
        thread = _readable_thread(request, pk)
        if not services.can_edit(request.user, thread):
            raise PermissionDenied("Only the author or a moderator can edit this thread.")
        data = _validated(ThreadEditSerializer, request, partial=True)
        clear_pin = "lat" in data and data["lat"] is None and data.get("lon") is None
        thread = services.edit_thread(
            thread,
            user=request.user,
            title=data.get("title"),
            body=data.get("body"),
            tags=data.get("tags"),
            category=_category(data.get("category")),
            lat=data.get("lat"),
            lon=data.get("lon"),
            clear_pin=clear_pin,
        )
        return _detail_response(thread, request)

    @extend_schema(
        summary="Delete a thread (its author, or a moderator); it leaves every list",
        request=ReasonRequestSerializer,
        responses={204: None, **ERRORS},
    )
    def delete(self, request, pk: int):
        thread = _readable_thread(request, pk)
        data = _validated(ReasonRequestSerializer, request)
        services.delete_thread(thread, user=request.user, reason=data.get("reason", ""))
        return Response(status=status.HTTP_204_NO_CONTENT)


class PhotoLocationView(AuthenticatedApiView):
    @extend_schema(
        summary="Use the position found in one of the author's photos as the thread's pin",
        request=PhotoLocationRequestSerializer,
        responses={200: ThreadDetailSerializer, **ERRORS},
    )
    def post(self, request, pk: int):
        thread = _readable_thread(request, pk)
        data = _validated(PhotoLocationRequestSerializer, request)
        thread = services.use_photo_location(thread, user=request.user, photo_id=data["photo_id"])
        return _detail_response(thread, request)


class SimilarThreadsView(ApiView):
    @extend_schema(
        summary="Open threads like a title being written, nearest to its pin first",
        parameters=[
            OpenApiParameter("neighborhood", str, required=True, description="a slug"),
            OpenApiParameter("title", str, required=True),
            OpenApiParameter("lat", float, description="the pin being placed (with lon)"),
            OpenApiParameter("lon", float),
            OpenApiParameter("exclude", int, description="a thread to leave out (when editing)"),
        ],
        responses={200: SimilarThreadSerializer(many=True), 400: None},
    )
    def get(self, request):
        params = request.query_params
        missing = {
            name: ["This parameter is required."]
            for name in ("neighborhood", "title")
            if not params.get(name, "").strip()
        }
        lat, lon = params.get("lat") or None, params.get("lon") or None
        if (lat is None) != (lon is None):
            missing["lon" if lon is None else "lat"] = ["Give both lat and lon."]
        if missing:
            raise ApiError(
                f"Missing: {', '.join(missing)}.", code="missing_parameter", fields=missing
            )
        point = (None, None)
        if lat is not None:
            try:
                point = validate_point(lat, lon)
            except GeometryError as exc:
                raise ApiError(
                    str(exc), code="invalid_point", fields={"lat": [str(exc)], "lon": [str(exc)]}
                ) from exc
        exclude = params.get("exclude") or None
        if exclude is not None and not exclude.isdigit():
            raise _invalid({"exclude": ["Give a thread id."]})
        found = services.similar_threads(
            _neighborhood(params["neighborhood"].strip()),
            params["title"],
            lat=point[0],
            lon=point[1],
            exclude=int(exclude) if exclude else None,
        )
        services.with_tag_names([s.thread for s in found])
        return Response(
            [
                {
                    "thread": services.thread_payload(s.thread),
                    "score": s.score,
                    "distance_m": None if s.distance_m is None else round(s.distance_m),
                }
                for s in found
            ]
        )


class CategoryListView(ApiView):
    @extend_schema(summary="Forum categories", responses=ForumCategorySerializer(many=True))
    def get(self, request):
        return Response(ForumCategorySerializer(ForumCategory.objects.all(), many=True).data)


# Replies ------------------------------------------------------------------------------------


class ReplyListView(ApiView):
    permission_classes = [IsAuthenticatedOrReadOnly]
    pagination_class = ForumPagination

    @extend_schema(
        summary="A thread's replies, oldest first (hidden and deleted ones as placeholders)",
        responses={200: ReplySerializer(many=True), 404: None},
    )
    def get(self, request, pk: int):
        thread = _readable_thread(request, pk)
        paginator = ForumPagination()
        page = paginator.paginate_queryset(services.replies_of(thread), request, view=self)
        return paginator.get_paginated_response(_reply_items(list(page), request.user))

    @extend_schema(
        summary="Reply (members at the required level; city staff anywhere, officially)",
        request=ReplyCreateSerializer,
        responses={201: ReplySerializer, **LIMITED},
    )
    def post(self, request, pk: int):
        thread = _readable_thread(request, pk)
        if thread.is_listed:
            refusal = services.reply_refusal(request.user, thread)
            if refusal:
                raise PermissionDenied(refusal)
        data = _validated(ReplyCreateSerializer, request)
        reply = services.create_reply(
            thread,
            author=request.user,
            body=data["body"],
            quote=data.get("quote"),
            ip=client_ip(request),
        )
        return Response(_reply_items([reply], request.user)[0], status=status.HTTP_201_CREATED)


class ReplyDetailView(AuthenticatedApiView):
    @extend_schema(
        summary="Edit a reply (its author, or a moderator); the earlier text is kept",
        request=ReplyEditSerializer,
        responses={200: ReplySerializer, **ERRORS},
    )
    def patch(self, request, pk: int):
        reply = _readable_reply(request, pk)
        if not services.can_edit(request.user, reply):
            raise PermissionDenied("Only the author or a moderator can edit this reply.")
        data = _validated(ReplyEditSerializer, request)
        reply = services.edit_reply(reply, user=request.user, body=data["body"])
        return Response(_reply_items([reply], request.user)[0])

    @extend_schema(
        summary="Delete a reply (its author, or a moderator); a placeholder keeps its place",
        request=ReasonRequestSerializer,
        responses={204: None, **ERRORS},
    )
    def delete(self, request, pk: int):
        reply = _readable_reply(request, pk)
        data = _validated(ReasonRequestSerializer, request)
        services.delete_reply(reply, user=request.user, reason=data.get("reason", ""))
        return Response(status=status.HTTP_204_NO_CONTENT)


# Support, flags, appeals, following, answers ------------------------------------------------


class ThreadVoteView(AuthenticatedApiView):
    @extend_schema(
        summary="Support a thread (idempotent)",
        request=None,
        responses={200: VoteResultSerializer, **LIMITED},
    )
    def post(self, request, pk: int):
        thread = _readable_thread(request, pk)
        return _vote_response(
            services.vote(request.user, thread=thread, ip=client_ip(request)), True
        )

    @extend_schema(
        summary="Withdraw support from a thread (idempotent)",
        request=None,
        responses={200: VoteResultSerializer, **LIMITED},
    )
    def delete(self, request, pk: int):
        thread = _readable_thread(request, pk)
        count = services.unvote(request.user, thread=thread, ip=client_ip(request))
        return _vote_response(count, False)


class ReplyVoteView(AuthenticatedApiView):
    @extend_schema(
        summary="Support a reply (idempotent)",
        request=None,
        responses={200: VoteResultSerializer, **LIMITED},
    )
    def post(self, request, pk: int):
        reply = _readable_reply(request, pk)
        return _vote_response(services.vote(request.user, reply=reply, ip=client_ip(request)), True)

    @extend_schema(
        summary="Withdraw support from a reply (idempotent)",
        request=None,
        responses={200: VoteResultSerializer, **LIMITED},
    )
    def delete(self, request, pk: int):
        reply = _readable_reply(request, pk)
        count = services.unvote(request.user, reply=reply, ip=client_ip(request))
        return _vote_response(count, False)


def _flag_response(request, **target) -> Response:
    data = _validated(FlagRequestSerializer, request)
    record = services.flag(
        request.user,
        reason=data["reason"],
        note=data.get("note", ""),
        ip=client_ip(request),
        **target,
    )
    return Response(
        {"id": record.pk, "reason": record.reason, "created_at": record.created_at.isoformat()},
        status=status.HTTP_201_CREATED,
    )


def _appeal_response(request, **target) -> Response:
    data = _validated(AppealRequestSerializer, request)
    record = services.appeal(request.user, text=data["text"], **target)
    return Response(
        {"id": record.pk, "created_at": record.created_at.isoformat()},
        status=status.HTTP_201_CREATED,
    )


FLAG_SCHEMA = extend_schema(
    summary="Flag for moderators (enough flags hide it pending review)",
    request=FlagRequestSerializer,
    responses={201: FlagResultSerializer, **LIMITED},
)
APPEAL_SCHEMA = extend_schema(
    summary="The author asks moderators to show hidden content again (once)",
    request=AppealRequestSerializer,
    responses={201: AppealResultSerializer, **ERRORS},
)


class ThreadFlagView(AuthenticatedApiView):
    @FLAG_SCHEMA
    def post(self, request, pk: int):
        return _flag_response(request, thread=_readable_thread(request, pk))


class ReplyFlagView(AuthenticatedApiView):
    @FLAG_SCHEMA
    def post(self, request, pk: int):
        return _flag_response(request, reply=_readable_reply(request, pk))


class ThreadAppealView(AuthenticatedApiView):
    @APPEAL_SCHEMA
    def post(self, request, pk: int):
        return _appeal_response(request, thread=_readable_thread(request, pk))


class ReplyAppealView(AuthenticatedApiView):
    @APPEAL_SCHEMA
    def post(self, request, pk: int):
        return _appeal_response(request, reply=_readable_reply(request, pk))


class FollowView(AuthenticatedApiView):
    @extend_schema(
        summary="Follow (notified of replies), mute (never notified) or neither",
        request=FollowSerializer,
        responses={200: FollowSerializer, **ERRORS},
    )
    def put(self, request, pk: int):
        thread = _readable_thread(request, pk)
        data = _validated(FollowSerializer, request)
        return Response({"state": services.set_follow(request.user, thread, data["state"])})


class AnswerView(AuthenticatedApiView):
    @extend_schema(
        summary="Mark an official reply as the answer, or clear it (author, moderators, staff)",
        request=AnswerRequestSerializer,
        responses={200: ThreadDetailSerializer, **ERRORS},
    )
    def post(self, request, pk: int):
        thread = _readable_thread(request, pk)
        if not services.can_mark_answer(request.user, thread):
            raise PermissionDenied(
                "Only the author, a moderator or city staff can choose the answer."
            )
        data = _validated(AnswerRequestSerializer, request)
        reply = None
        if data["reply"] is not None:
            reply = Reply.objects.select_related("department").filter(pk=data["reply"]).first()
            if reply is None:
                raise _invalid({"reply": ["Choose a visible reply in this thread."]})
        thread = services.mark_answer(thread, reply, user=request.user)
        return _detail_response(thread, request)
