"""Pages of the forums: feeds, search, composing, the thread page and the actions on threads.

Every form works without JavaScript; ``forums.js`` adds live updates and suggestions. The views
only translate: ``services`` decides who may do what and raises ``ValidationError`` (with field
names), ``PermissionDenied`` (the reason, shown on a 403 page) or ``RateLimited`` (when to retry).
"""

from __future__ import annotations

from collections import Counter

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from alerts import live
from neighborhoods import uploads
from neighborhoods.geometry import GeometryError, validate_point
from neighborhoods.http import safe_next as _next_url
from neighborhoods.models import Neighborhood
from neighborhoods.paging import windowed_page
from neighborhoods.permissions import is_authenticated, is_city_staff
from neighborhoods.ratelimit import RateLimited, client_ip
from neighborhoods.text import plain_text

from . import hooks, services
from .conf import app_settings
from .forms import (
    MODERATION_CHOICES,
    PERIOD_LABELS,
    REPLY_MODERATION_CHOICES,
    SORT_LABELS,
    FeedFilterForm,
    ReplyEditForm,
    ReplyForm,
    ThreadEditForm,
    ThreadForm,
)
from .models import Appeal, Cosign, Flag, ForumCategory, Reply, Revision, Thread, Vote

PANEL_SIZE = 5
# Columns of a neighborhood the feeds never show (its boundary can be large).
HEAVY_NEIGHBORHOOD_FIELDS = ("neighborhood__boundary", "neighborhood__source_properties")
# Service errors about these names belong to these form fields.
FIELD_ALIASES = {"location": "lat"}


# Helpers ------------------------------------------------------------------------------------


def _form_errors(form, exc: ValidationError) -> None:
    """Put a service's ValidationError on the form's fields (or on the form)."""
    if not hasattr(exc, "error_dict"):
        for message in exc.messages:
            form.add_error(None, message)
        return
    for field, errors in exc.error_dict.items():
        field = FIELD_ALIASES.get(field, field)
        target = field if field in form.fields else None
        for error in errors:
            form.add_error(target, error)


def _message_of(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return " ".join(exc.messages)
    return str(exc) or "You are not allowed to do this."


def _denied(request: HttpRequest, reason: str, *, back: str = "") -> HttpResponse:
    return render(
        request,
        "forums/denied.html",
        {"reason": reason or "You are not allowed to do this.", "back": back},
        status=403,
    )


def _neighborhood_or_404(slug: str) -> Neighborhood:
    return get_object_or_404(Neighborhood.objects.defer("boundary", "source_properties"), slug=slug)


def _voted_thread_ids(user, threads: list[Thread]) -> set[int]:
    if not is_authenticated(user) or not threads:
        return set()
    return set(
        Vote.objects.filter(
            user=user, reply=None, thread_id__in=[t.pk for t in threads]
        ).values_list("thread_id", flat=True)
    )


def _decorate_rows(request: HttpRequest, threads: list[Thread], refusals: dict) -> list[Thread]:
    """Tags, the viewer's support and whether they may support, for a page of threads.

    ``refusals`` maps neighborhood ids to :func:`services.posting_refusal`; threads elsewhere
    (where the viewer is no member) cannot be supported by them.
    """
    threads = services.with_tag_names(threads)
    voted = _voted_thread_ids(request.user, threads)
    for thread in threads:
        thread.tag_list = thread._tag_names
        thread.voted = thread.pk in voted
        thread.can_vote = (
            thread.neighborhood_id in refusals
            and refusals[thread.neighborhood_id] is None
            and not thread.is_locked
        )
    return threads


# Feeds --------------------------------------------------------------------------------------


def _feed_page(
    request: HttpRequest,
    *,
    scope: str,
    heading: str,
    neighborhood: Neighborhood | None = None,
    neighborhoods: list[Neighborhood] | None = None,
) -> HttpResponse:
    live.mark_cursor(request)
    filters = FeedFilterForm(request.GET or None)
    chosen = filters.choices()
    target = neighborhood if neighborhood is not None else neighborhoods
    threads = services.feed(
        target,
        sort=chosen["sort"],
        period=chosen["period"],
        tag=chosen["tag"],
        category=chosen["category"],
    ).defer(*HEAVY_NEIGHBORHOOD_FIELDS)
    page = windowed_page(threads, app_settings.FORUM_PAGE_SIZE, request.GET.get("page"))
    places = [neighborhood] if neighborhood is not None else (neighborhoods or [])
    refusals = {n.pk: services.posting_refusal(request.user, n) for n in places}
    rows = _decorate_rows(request, list(page.object_list), refusals)
    if neighborhood is not None:
        topics = [f"neighborhood:{neighborhood.slug}"]
    else:
        topics = [f"neighborhood:{n.slug}" for n in neighborhoods or []]
    return render(
        request,
        "forums/feed.html",
        {
            "scope": scope,
            "heading": heading,
            "neighborhood": neighborhood,
            "my_neighborhoods": neighborhoods,
            "filters": filters,
            "chosen": chosen,
            "sorts": SORT_LABELS,
            "periods": PERIOD_LABELS,
            "categories": list(ForumCategory.objects.all()),
            "page": page,
            "threads": rows,
            "topics": topics,
            "posting_refusal": refusals.get(neighborhood.pk) if neighborhood else None,
            "show_neighborhood": neighborhood is None,
            "vote_in": [n.slug for n in places if refusals[n.pk] is None],
            "page_size": app_settings.FORUM_PAGE_SIZE,
            "neighborhood_names": {n.slug: n.name for n in neighborhoods or []},
        },
    )


@require_GET
def neighborhood_feed(request: HttpRequest, slug: str) -> HttpResponse:
    neighborhood = _neighborhood_or_404(slug)
    return _feed_page(
        request,
        scope="neighborhood",
        heading=f"Discussions in {neighborhood.name}",
        neighborhood=neighborhood,
    )


@login_required
@require_GET
def my_feed(request: HttpRequest) -> HttpResponse:
    mine = list(
        Neighborhood.objects.filter(memberships__user=request.user)
        .defer("boundary", "source_properties")
        .order_by("name")
        .distinct()
    )
    return _feed_page(
        request, scope="mine", heading="Discussions in my neighborhoods", neighborhoods=mine
    )


@require_GET
def search(request: HttpRequest) -> HttpResponse:
    query = " ".join(request.GET.get("q", "").split())[:200]
    neighborhood = None
    slug = request.GET.get("neighborhood", "").strip()
    if slug:
        neighborhood = _neighborhood_or_404(slug)
    results = services.search_threads(query, neighborhood=neighborhood) if query else []
    results = _decorate_rows(request, results, {})
    return render(
        request,
        "forums/search.html",
        {"query": query, "neighborhood": neighborhood, "threads": results},
    )


def neighborhood_panel(request: HttpRequest, neighborhood: Neighborhood) -> str:
    """The "Discussions" panel on the neighborhood page (a fixed number of queries)."""
    live.mark_cursor(request)
    threads = list(
        services.feed(neighborhood, sort="hot").defer(*HEAVY_NEIGHBORHOOD_FIELDS)[: PANEL_SIZE + 1]
    )
    return render_to_string(
        "forums/includes/neighborhood_panel.html",
        {
            "neighborhood": neighborhood,
            "threads": threads[:PANEL_SIZE],
            "more": len(threads) > PANEL_SIZE,
            "panel_size": PANEL_SIZE,
            "topic": f"neighborhood:{neighborhood.slug}",
            "posting_refusal": services.posting_refusal(request.user, neighborhood),
        },
        request=request,
    )


# Composing ----------------------------------------------------------------------------------


def _similar(neighborhood: Neighborhood, title: str, lat, lon) -> list[services.Similar]:
    try:
        lat, lon = validate_point(lat, lon)
    except GeometryError:
        lat = lon = None
    return services.similar_threads(neighborhood, title or "", lat=lat, lon=lon)


@login_required
@require_http_methods(["GET", "POST"])
def thread_new(request: HttpRequest, slug: str) -> HttpResponse:
    neighborhood = get_object_or_404(Neighborhood, slug=slug)
    feed_url = reverse("forums:neighborhood", args=[slug])
    refusal = services.posting_refusal(request.user, neighborhood)
    if refusal:
        return _denied(request, refusal, back=feed_url)
    status = 200
    held: dict = {}
    suggestions: list[services.Similar] = []
    checked = False
    if request.method == "POST":
        files = uploads.with_held(request, "photos")
        form = ThreadForm(request.POST, files)
        if form.is_valid():
            data = form.cleaned_data
            try:
                thread = services.create_thread(
                    author=request.user,
                    neighborhood=neighborhood,
                    title=data["title"],
                    body=data["body"],
                    category=data["category"],
                    tags=data["tags"],
                    lat=data["lat"],
                    lon=data["lon"],
                    photos=data["photos"],
                    ip=client_ip(request),
                    honeypot=data["website"],
                )
            except ValidationError as exc:
                _form_errors(form, exc)
            except RateLimited as exc:
                form.add_error(None, str(exc))
                status = 429
            except PermissionDenied as exc:
                return _denied(request, str(exc), back=feed_url)
            else:
                uploads.release(files, "photos")
                messages.success(request, "Your discussion is open. Neighbours see it now.")
                return redirect(thread)
        status = status if status != 200 else 400
        held = uploads.hold(request, form, files, "photos")
    else:
        fields = ("title", "body", "category", "tags", "lat", "lon")
        form = ThreadForm(initial={k: request.GET[k] for k in fields if request.GET.get(k)})
        checked = bool(request.GET.get("check"))
        if checked:
            suggestions = _similar(
                neighborhood,
                request.GET.get("title", "")[:200],
                request.GET.get("lat"),
                request.GET.get("lon"),
            )
    return render(
        request,
        "forums/thread_form.html",
        {
            "form": form,
            "neighborhood": neighborhood,
            "suggestions": suggestions,
            "checked": checked,
            "held": held,
            # Photos the field refused are not kept: the author chooses them again.
            "photos_dropped": bool(request.FILES) and bool(form.errors.get("photos")),
        },
        status=status,
    )


# The thread page ----------------------------------------------------------------------------


def _thread_or_404(request: HttpRequest, pk: int) -> Thread:
    thread = get_object_or_404(
        Thread.objects.select_related("neighborhood", "category", "author__engagement_profile"),
        pk=pk,
    )
    if not services.can_read_thread(request.user, thread):
        raise Http404("No such discussion.")
    return thread


def _reply_rows(request: HttpRequest, thread: Thread, perms: dict, *, editing: int | None):
    """The replies with what the viewer sees and may do with each (a fixed number of queries)."""
    user = request.user
    replies = list(services.replies_of(thread))
    voted: set[int] = set()
    appealed: set[int] = set()
    if is_authenticated(user) and replies:
        voted = set(
            Vote.objects.filter(user=user, reply__thread=thread).values_list("reply_id", flat=True)
        )
        appealed = set(
            Appeal.objects.filter(reply__thread=thread, author=user).values_list(
                "reply_id", flat=True
            )
        )
    flags: Counter = Counter()
    if perms["moderate"] and replies:
        flags.update(
            Flag.objects.filter(reply__thread=thread, resolved_at__isnull=True).values_list(
                "reply_id", flat=True
            )
        )
    rows = []
    for reply in replies:
        data = services.reply_payload(reply)
        mine = is_authenticated(user) and reply.author_id == user.pk
        visible = data["state"] == "visible"
        # Display only: the services check again when the action is posted.
        can_edit = (
            reply.deleted_at is None
            and (perms["moderate"] or (mine and not perms["suspended"]))
            and (perms["moderate"] or not thread.is_locked)
        )
        rows.append(
            {
                "reply": reply,
                "data": data,
                "mine": mine,
                "shows_text": visible
                or (data["state"] == "hidden" and (mine or perms["moderate"])),
                "voted": reply.pk in voted,
                "can_vote": visible and perms["vote"],
                "can_edit": can_edit,
                "editing": can_edit and editing == reply.pk,
                "can_flag": is_authenticated(user) and not mine and reply.deleted_at is None,
                "can_appeal": mine and data["state"] == "hidden" and reply.pk not in appealed,
                "appealed": reply.pk in appealed,
                "can_answer": perms["mark_answer"] and visible and reply.is_official,
                "is_answer": thread.answer_id == reply.pk,
                "open_flags": flags.get(reply.pk, 0),
            }
        )
    return rows


def _thread_context(
    request: HttpRequest,
    thread: Thread,
    *,
    reply_form: ReplyForm | None = None,
    edit_form: ReplyEditForm | None = None,
    editing: int | None = None,
) -> dict:
    user = request.user
    neighborhood = thread.neighborhood
    moderator = services.can_moderate(user, neighborhood)
    vote_refusal = services.posting_refusal(user, neighborhood)
    perms = {
        "moderate": moderator,
        "suspended": services.suspension_of(user, neighborhood) is not None,
        "vote": vote_refusal is None and thread.is_listed and not thread.is_locked,
        "mark_answer": services.can_mark_answer(user, thread),
    }
    if editing is None and request.GET.get("edit", "").isdigit():
        editing = int(request.GET["edit"])
    rows = _reply_rows(request, thread, perms, editing=editing)
    by_id = {row["reply"].pk: row for row in rows}
    answer = by_id.get(thread.answer_id) if thread.answer_id else None
    if answer is not None and answer["data"]["state"] != "visible":
        answer = None
    if edit_form is None and editing in by_id and by_id[editing]["editing"]:
        edit_form = ReplyEditForm(initial={"body": by_id[editing]["reply"].body})

    reply_refusal = (
        services.reply_refusal(user, thread)
        if thread.is_listed
        else "This discussion is not open for replies."
    )
    quote = str(reply_form.data.get("quote", "") if reply_form else request.GET.get("quote", ""))
    quoted = by_id.get(int(quote)) if quote.isdigit() else None
    quoting = None
    if quoted is not None and quoted["data"]["state"] == "visible":
        quoting = {
            "id": quoted["reply"].pk,
            "author": quoted["data"]["author"],
            "excerpt": plain_text(quoted["reply"].body, 200),
        }
    if reply_form is None:
        reply_form = ReplyForm(initial={"quote": quoting["id"] if quoting else None})

    thread_voted = is_authenticated(user) and (
        Vote.objects.filter(user=user, thread=thread, reply=None).exists()
    )
    mine = is_authenticated(user) and thread.author_id == user.pk
    cosigns = list(Cosign.objects.filter(thread=thread).select_related("organization"))
    signable = services.cosign_organizations(user, thread)
    signed_ids = {c.organization_id for c in cosigns}
    appeal = None
    if mine and thread.visibility != "visible":
        appeal = services.appeal_of(thread=thread)
    revisions = []
    destinations = []
    thread_flags = 0
    if moderator:
        revisions = list(
            Revision.objects.filter(Q(thread=thread) | Q(reply__thread=thread)).select_related(
                "edited_by__engagement_profile"
            )
        )
        places = Neighborhood.objects.defer("boundary", "source_properties").order_by("name")
        if not is_city_staff(user):
            places = places.filter(
                memberships__user=user, memberships__role__in=["moderator", "organizer"]
            )
        destinations = [n for n in places if n.pk != neighborhood.pk]
        thread_flags = Flag.objects.filter(
            thread=thread, reply=None, resolved_at__isnull=True
        ).count()
    photos = list(thread.photos.all())
    return {
        "thread": thread,
        "neighborhood": neighborhood,
        "tags": sorted(thread.tags.names()),
        "photos": photos,
        "rows": rows,
        "answer": answer,
        "voted": thread_voted,
        "mine": mine,
        "perms": perms,
        "vote_refusal": vote_refusal,
        "can_edit": services.can_edit(user, thread) and (moderator or not thread.is_locked),
        "reply_refusal": reply_refusal,
        "reply_form": reply_form,
        "quoting": quoting,
        "edit_form": edit_form,
        "follow_state": services.follow_state(user, thread),
        "cosigns": cosigns,
        "cosign_choices": [o for o in signable if o.pk not in signed_ids],
        "cosign_withdrawable": [o for o in signable if o.pk in signed_ids],
        "appeal": appeal,
        "can_flag_thread": is_authenticated(user) and not mine and thread.deleted_at is None,
        # How the viewer's own replies are signed, so one arriving live offers no Flag button.
        "viewer_name": services.author_name(user) if is_authenticated(user) else "",
        "offers": services.photo_location_offers(thread, user),
        "revisions": revisions,
        "destinations": destinations,
        "thread_flags": thread_flags,
        "moderation_choices": _moderation_choices(thread),
        "reply_moderation_choices": REPLY_MODERATION_CHOICES,
        "flag_reasons": Flag.Reason.choices,
        "topic": f"thread:{thread.pk}",
        "panels": hooks.render_thread_panels(request, thread),
    }


def _moderation_choices(thread: Thread) -> list[tuple[str, str]]:
    """The moderation actions that change something for this thread now."""
    pointless = {
        "unlock" if not thread.is_locked else "lock",
        "unpin" if not thread.is_pinned else "pin",
        "approve" if thread.visibility == "visible" else "hide",
    }
    if thread.deleted_at:
        pointless.add("delete")
    return [choice for choice in MODERATION_CHOICES if choice[0] not in pointless]


def _render_thread(request: HttpRequest, thread: Thread, *, status: int = 200, **kwargs):
    live.mark_cursor(request)
    return render(
        request,
        "forums/thread_detail.html",
        _thread_context(request, thread, **kwargs),
        status=status,
    )


@require_GET
def thread_detail(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    live.mark_cursor(request)
    thread = get_object_or_404(
        Thread.objects.select_related("neighborhood", "category", "author__engagement_profile"),
        pk=pk,
    )
    if thread.merged_into_id:
        return redirect(thread.merged_into.get_absolute_url(), permanent=True)
    if not services.can_read_thread(request.user, thread):
        raise Http404("No such discussion.")
    if thread.neighborhood.slug != slug:
        url = thread.get_absolute_url()
        if request.GET:
            url = f"{url}?{request.GET.urlencode()}"
        return redirect(url, permanent=True)
    return _render_thread(request, thread)


@login_required
@require_http_methods(["GET", "POST"])
def thread_edit(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    thread = _thread_or_404(request, pk)
    if not services.can_edit(request.user, thread):
        return _denied(
            request,
            "Only the author or a moderator can edit this discussion.",
            back=thread.get_absolute_url(),
        )
    if request.method == "POST":
        form = ThreadEditForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            clear = data["clear_pin"] or (data["lat"] is None and data["lon"] is None)
            try:
                services.edit_thread(
                    thread,
                    user=request.user,
                    title=data["title"],
                    body=data["body"],
                    tags=data["tags"],
                    category=data["category"],
                    lat=None if clear else data["lat"],
                    lon=None if clear else data["lon"],
                    clear_pin=clear,
                )
            except ValidationError as exc:
                _form_errors(form, exc)
            except PermissionDenied as exc:
                return _denied(request, str(exc), back=thread.get_absolute_url())
            else:
                messages.success(request, "Your changes are saved.")
                return redirect(thread)
    else:
        form = ThreadEditForm(
            initial={
                "title": thread.title,
                "body": thread.body,
                "category": thread.category_id,
                "tags": ", ".join(sorted(thread.tags.names())),
                "lat": thread.lat,
                "lon": thread.lon,
            }
        )
    return render(
        request,
        "forums/thread_edit.html",
        {"form": form, "thread": thread, "neighborhood": thread.neighborhood},
        status=400 if form.errors else 200,
    )


# Actions ------------------------------------------------------------------------------------

THREAD_ACTIONS = {
    "reply",
    "vote",
    "unvote",
    "follow",
    "flag",
    "appeal",
    "delete",
    "unanswer",
    "cosign",
    "withdraw-cosign",
    "moderate",
    "use-photo-location",
}
REPLY_ACTIONS = {"vote", "unvote", "edit", "delete", "flag", "appeal", "answer", "moderate"}
FOLLOW_MESSAGES = {
    "following": "You follow this discussion: new replies reach your inbox.",
    "muted": "Muted: you will not be notified about this discussion.",
    "none": "You no longer follow this discussion.",
}


def _organization_choice(request: HttpRequest, thread: Thread):
    wanted = request.POST.get("organization", "")
    for organization in services.cosign_organizations(request.user, thread):
        if str(organization.pk) == wanted:
            return organization
    raise PermissionDenied("Choose an organization you administer that serves this neighborhood.")


def _moderate_thread(request: HttpRequest, thread: Thread) -> tuple[str, str]:
    user, action = request.user, request.POST.get("do", "")
    reason = request.POST.get("reason", "")
    if action == "merge":
        into = request.POST.get("into", "").strip().lstrip("#")
        original = Thread.objects.filter(pk=int(into)).first() if into.isdigit() else None
        if original is None:
            raise ValidationError({"original": "Give the number of the thread to merge into."})
        original = services.merge_threads(thread, original, actor=user, reason=reason)
        return "Merged: its votes, followers and replies are now in this discussion.", (
            original.get_absolute_url()
        )
    if action == "move":
        slug = request.POST.get("neighborhood", "")
        destination = Neighborhood.objects.filter(slug=slug).first()
        services.moderate(user, "move", thread=thread, reason=reason, neighborhood=destination)
        thread.refresh_from_db()
        return f"Moved to {destination.name}.", thread.get_absolute_url()
    services.moderate(user, action, thread=thread, reason=reason)
    return f"Done: {dict(MODERATION_CHOICES).get(action, action).lower()}.", ""


def _thread_action(request: HttpRequest, thread: Thread, action: str) -> tuple[str, str]:
    """Do ``action``; return the message and where to go next ("" for back)."""
    user, ip, post = request.user, client_ip(request), request.POST
    if action == "vote":
        services.vote(user, thread=thread, ip=ip)
        return "You support this discussion.", ""
    if action == "unvote":
        services.unvote(user, thread=thread, ip=ip)
        return "You withdrew your support.", ""
    if action == "follow":
        state = services.set_follow(user, thread, post.get("state", ""))
        return FOLLOW_MESSAGES[state], ""
    if action == "flag":
        services.flag(user, thread=thread, reason=post.get("reason", ""), note=post.get("note", ""))
        return "Thank you: moderators will review it.", ""
    if action == "appeal":
        services.appeal(user, thread=thread, text=post.get("text", ""))
        return "Your appeal is sent; a moderator will decide.", ""
    if action == "delete":
        services.delete_thread(thread, user=user, reason=post.get("reason", ""))
        feed = reverse("forums:neighborhood", args=[thread.neighborhood.slug])
        back = (
            thread.get_absolute_url() if services.can_moderate(user, thread.neighborhood) else feed
        )
        return "The discussion is deleted.", back
    if action == "unanswer":
        services.mark_answer(thread, None, user=user)
        return "The answer is no longer marked.", ""
    if action == "cosign":
        organization = _organization_choice(request, thread)
        services.cosign(thread, organization, user=user)
        return f"{organization.name} co-signs this discussion.", ""
    if action == "withdraw-cosign":
        organization = _organization_choice(request, thread)
        services.withdraw_cosign(thread, organization, user=user)
        return f"{organization.name} no longer co-signs it.", ""
    if action == "use-photo-location":
        photo = post.get("photo", "")
        services.use_photo_location(
            thread, user=user, photo_id=int(photo) if photo.isdigit() else 0
        )
        return "The pin is placed where your photo was taken.", ""
    return _moderate_thread(request, thread)


@require_POST
def thread_action(request: HttpRequest, slug: str, pk: int, action: str) -> HttpResponse:
    if action not in THREAD_ACTIONS:
        raise Http404("No such action.")
    thread = _thread_or_404(request, pk)
    if not is_authenticated(request.user):
        return redirect_to_login(thread.get_absolute_url())
    back = _next_url(request, thread.get_absolute_url())
    if action == "reply":
        return _post_reply(request, thread)
    try:
        message, target = _thread_action(request, thread, action)
    except PermissionDenied as exc:
        return _denied(request, str(exc), back=back)
    except (ValidationError, RateLimited) as exc:
        messages.error(request, _message_of(exc))
    else:
        messages.success(request, message)
        back = target or back
    return redirect(back)


def _post_reply(request: HttpRequest, thread: Thread) -> HttpResponse:
    form = ReplyForm(request.POST)
    status = 400
    if form.is_valid():
        data = form.cleaned_data
        try:
            reply = services.create_reply(
                thread,
                author=request.user,
                body=data["body"],
                quote=data["quote"],
                ip=client_ip(request),
                honeypot=data["website"],
            )
        except PermissionDenied as exc:
            return _denied(request, str(exc), back=thread.get_absolute_url())
        except ValidationError as exc:
            _form_errors(form, exc)
        except RateLimited as exc:
            form.add_error(None, str(exc))
            status = 429
        else:
            messages.success(request, "Your reply is posted.")
            return redirect(reply.get_absolute_url())
    return _render_thread(request, thread, reply_form=form, status=status)


def _reply_action(request: HttpRequest, reply: Reply, action: str) -> tuple[str, str]:
    user, ip, post, thread = request.user, client_ip(request), request.POST, reply.thread
    if action == "vote":
        services.vote(user, reply=reply, ip=ip)
        return "You support this reply.", ""
    if action == "unvote":
        services.unvote(user, reply=reply, ip=ip)
        return "You withdrew your support.", ""
    if action == "delete":
        services.delete_reply(reply, user=user, reason=post.get("reason", ""))
        return "The reply is deleted.", ""
    if action == "flag":
        services.flag(user, reply=reply, reason=post.get("reason", ""), note=post.get("note", ""))
        return "Thank you: moderators will review it.", ""
    if action == "appeal":
        services.appeal(user, reply=reply, text=post.get("text", ""))
        return "Your appeal is sent; a moderator will decide.", ""
    if action == "answer":
        services.mark_answer(thread, reply, user=user)
        return "Marked as the answer: it is shown first.", ""
    do = post.get("do", "")
    services.moderate(user, do, reply=reply, reason=post.get("reason", ""))
    return f"Done: {dict(REPLY_MODERATION_CHOICES).get(do, do).lower()}.", ""


@require_POST
def reply_action(
    request: HttpRequest, slug: str, pk: int, reply_pk: int, action: str
) -> HttpResponse:
    if action not in REPLY_ACTIONS:
        raise Http404("No such action.")
    thread = _thread_or_404(request, pk)
    reply = get_object_or_404(
        Reply.objects.select_related("author", "department"), pk=reply_pk, thread=thread
    )
    reply.thread = thread
    if not is_authenticated(request.user):
        return redirect_to_login(reply.get_absolute_url())
    back = _next_url(request, reply.get_absolute_url())
    if action == "edit":
        return _edit_reply(request, thread, reply)
    try:
        message, target = _reply_action(request, reply, action)
    except PermissionDenied as exc:
        return _denied(request, str(exc), back=back)
    except (ValidationError, RateLimited) as exc:
        messages.error(request, _message_of(exc))
    else:
        messages.success(request, message)
        back = target or back
    return redirect(back)


def _edit_reply(request: HttpRequest, thread: Thread, reply: Reply) -> HttpResponse:
    form = ReplyEditForm(request.POST)
    if form.is_valid():
        try:
            services.edit_reply(reply, user=request.user, body=form.cleaned_data["body"])
        except PermissionDenied as exc:
            return _denied(request, str(exc), back=reply.get_absolute_url())
        except ValidationError as exc:
            _form_errors(form, exc)
        else:
            messages.success(request, "Your reply is updated.")
            return redirect(reply.get_absolute_url())
    return _render_thread(request, thread, edit_form=form, editing=reply.pk, status=400)
