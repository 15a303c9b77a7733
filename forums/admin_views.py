"""Forum moderation in the Wagtail admin: the queue, one post's review page with every action,
its edit history, the moderation log and current suspensions.

Who sees what: city staff see every neighborhood; organizers and moderators
(:class:`~neighborhoods.models.Membership` roles) see the neighborhoods they moderate. The admin
itself lets in only people with Wagtail's ``wagtailadmin.access_admin`` permission (a city grants
it through a group); these screens then narrow what they show to the person's neighborhoods. Every
change goes through :mod:`forums.services`, which checks permission again and writes the log.
"""

from __future__ import annotations

import difflib
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import django_filters
from django import forms
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db.models import (
    CharField,
    DateTimeField,
    Exists,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.functions import Coalesce, Greatest
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import cached_property
from django.views import View
from django.views.generic import TemplateView
from wagtail.admin import messages
from wagtail.admin.filters import DateRangePickerWidget, WagtailFilterSet
from wagtail.admin.paginator import WagtailPaginator
from wagtail.admin.ui.components import Component
from wagtail.admin.utils import get_valid_next_url_from_request
from wagtail.admin.views.generic import DeleteView
from wagtail.admin.views.generic.base import WagtailAdminTemplateMixin
from wagtail.admin.views.reports.base import ReportView
from wagtail.admin.widgets import BooleanRadioSelect

from neighborhoods.admin_actions import ActionFormsMixin
from neighborhoods.models import Membership, Neighborhood
from neighborhoods.permissions import is_authenticated, is_city_staff

from . import services
from .admin_forms import (
    QUEUE_NAMESPACE,
    DecisionForm,
    LiftForm,
    MergeForm,
    MoveForm,
    SuspendForm,
)
from .models import Appeal, Flag, ModerationAction, Reply, Suspension, Thread, Visibility

LOG_NAMESPACE = "forum_moderation_log"
SUSPENSIONS_NAMESPACE = "forum_suspensions"
MODERATOR_ROLES = (Membership.Role.MODERATOR, Membership.Role.ORGANIZER)
# A neighborhood's boundary can be large; lists and menus need its name only.
HEAVY_NEIGHBORHOOD_FIELDS = ("boundary", "source_properties", "description")

ACTION_LABELS = {
    "approve": "Approved",
    "hide": "Hidden",
    "auto_hide": "Hidden by flags",
    "delete": "Deleted",
    "edit": "Edited",
    "lock": "Locked",
    "unlock": "Unlocked",
    "pin": "Pinned",
    "unpin": "Unpinned",
    "move": "Moved",
    "merge": "Merged",
    "suspend": "Suspended",
    "unsuspend": "Suspension lifted",
    "appeal": "Appealed",
}
DECISION_MESSAGES = {
    "approve": "Approved: it is visible and its flags are dismissed.",
    "hide": "Hidden; the author is told why and may appeal.",
    "delete": "Deleted.",
    "lock": "Locked: no new replies.",
    "unlock": "Unlocked.",
    "pin": "Pinned to the top of its neighborhood.",
    "unpin": "Unpinned.",
}


# Who may use these screens --------------------------------------------------------------------


def _moderated_ids(user) -> QuerySet:
    return Membership.objects.filter(user=user, role__in=MODERATOR_ROLES).values("neighborhood_id")


def moderated_neighborhoods(user) -> QuerySet[Neighborhood]:
    """The neighborhoods ``user`` moderates (every one for city staff), by name."""
    neighborhoods = Neighborhood.objects.defer(*HEAVY_NEIGHBORHOOD_FIELDS).order_by("name")
    if is_city_staff(user):
        return neighborhoods
    if not is_authenticated(user):
        return neighborhoods.none()
    return neighborhoods.filter(pk__in=_moderated_ids(user))


def in_moderated(queryset: QuerySet, user, neighborhood_path: str) -> QuerySet:
    """``queryset`` narrowed to the neighborhoods ``user`` moderates (untouched for city staff)."""
    if is_city_staff(user):
        return queryset
    return queryset.filter(**{f"{neighborhood_path}__in": _moderated_ids(user)})


def can_use_moderation(request: HttpRequest) -> bool:
    """Whether the moderation screens are for this person: city staff, and organizers and
    moderators of at least one neighborhood. Remembered for the request (the menu asks often)."""
    if not hasattr(request, "_forum_moderation"):
        user = request.user
        request._forum_moderation = is_city_staff(user) or (
            is_authenticated(user)
            and Membership.objects.filter(user=user, role__in=MODERATOR_ROLES).exists()
        )
    return request._forum_moderation


class ModerationAccessMixin:
    """Refuse (Wagtail shows "permission denied") anyone these screens are not for."""

    def dispatch(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not can_use_moderation(request):
            raise PermissionDenied
        return super().dispatch(request, *args, **kwargs)


def person_label(user) -> str:
    """How the admin names a person: their public name and account number (never an address)."""
    if user is None:
        return "—"
    return f"{services.author_name(user)} (#{user.pk})"


# The queue ------------------------------------------------------------------------------------


@dataclass
class QueueItem:
    """A flagged or appealed thread or reply, with its open flags and its author's appeal."""

    kind: str  # "thread" or "reply"
    target: Thread | Reply
    flags: list[Flag] = field(default_factory=list)
    appeal: Appeal | None = None

    @property
    def thread(self) -> Thread:
        return self.target if self.kind == "thread" else self.target.thread

    @property
    def neighborhood(self) -> Neighborhood:
        return self.thread.neighborhood

    @property
    def author(self) -> str:
        return person_label(self.target.author)

    @property
    def total_weight(self) -> int:
        return sum(flag.weight for flag in self.flags)

    @property
    def reasons(self) -> list[tuple[str, int]]:
        return Counter(flag.get_reason_display() for flag in self.flags).most_common()

    @property
    def notes(self) -> list[Flag]:
        return [flag for flag in self.flags if flag.note]

    @property
    def latest_flag_at(self) -> datetime | None:
        return self.flags[-1].created_at if self.flags else None

    @property
    def is_hidden(self) -> bool:
        return self.target.visibility != Visibility.VISIBLE

    @property
    def states(self) -> list[str]:
        states = []
        if self.target.deleted_at is not None:
            states.append("Deleted")
        if self.is_hidden:
            states.append(self.target.get_visibility_display())
        if self.kind == "thread":
            if self.target.merged_into_id:
                states.append(f"Merged into #{self.target.merged_into_id}")
            if self.target.is_locked:
                states.append("Locked")
            if self.target.is_pinned:
                states.append("Pinned")
        return states

    @property
    def label(self) -> str:
        if self.kind == "thread":
            return f"Thread “{self.target.title}”"
        return f"Reply #{self.target.pk} in “{self.thread.title}”"

    @property
    def review_url(self) -> str:
        return reverse(f"{QUEUE_NAMESPACE}:{self.kind}", args=[self.target.pk])

    @property
    def history_url(self) -> str:
        return reverse(f"{QUEUE_NAMESPACE}:{self.kind}_history", args=[self.target.pk])

    @property
    def public_url(self) -> str:
        return self.target.get_absolute_url()


def _light(queryset: QuerySet, neighborhood_path: str) -> QuerySet:
    """``queryset`` without the heavy fields of the neighborhood it selects at ``neighborhood_path``."""
    return queryset.defer(*(f"{neighborhood_path}__{name}" for name in HEAVY_NEIGHBORHOOD_FIELDS))


def _key(row: Flag | Appeal) -> tuple[str, int]:
    return ("reply", row.reply_id) if row.reply_id else ("thread", row.thread_id)


def queue_items(user, keys: Iterable[tuple[str, int]]) -> list[QueueItem]:
    """Load the posts named by ``(kind, id)`` keys, in that order, with their open flags (those
    ``user`` may see) and appeals: a constant four queries, however many posts."""
    keys = list(keys)
    thread_ids = [pk for kind, pk in keys if kind == "thread"]
    reply_ids = [pk for kind, pk in keys if kind == "reply"]
    threads = Thread.objects.select_related(
        "neighborhood", "category", "author__engagement_profile"
    )
    replies = Reply.objects.select_related("thread__neighborhood", "author__engagement_profile")
    found = {
        "thread": _light(threads, "neighborhood").in_bulk(thread_ids),
        "reply": _light(replies, "thread__neighborhood").in_bulk(reply_ids),
    }
    targets = Q(thread_id__in=thread_ids, reply__isnull=True) | Q(reply_id__in=reply_ids)
    flags: dict[tuple[str, int], list[Flag]] = defaultdict(list)
    if keys:
        open_flags = (
            services.moderation_queue(user)
            .filter(targets)
            .select_related(None)
            .select_related("user__engagement_profile")
            .order_by("created_at", "pk")
        )
        for flag in open_flags:
            flag.flagger_label = person_label(flag.user)
            flags[_key(flag)].append(flag)
    appeals = {_key(appeal): appeal for appeal in Appeal.objects.filter(targets)} if keys else {}
    items = []
    for kind, pk in keys:
        target = found[kind].get(pk)
        if target is not None:
            items.append(QueueItem(kind, target, flags[(kind, pk)], appeals.get((kind, pk))))
    return items


def _neighborhood_path(model: type[Thread] | type[Reply]) -> str:
    return "neighborhood" if model is Thread else "thread__neighborhood"


def _open_flags(user, model: type[Thread] | type[Reply]) -> QuerySet[Flag]:
    """Open flags ``user`` moderates on the outer query's thread (or reply)."""
    flags = services.moderation_queue(user).order_by()
    if model is Thread:
        return flags.filter(thread=OuterRef("pk"), reply__isnull=True)
    return flags.filter(reply=OuterRef("pk"))


def _pending_appeals(model: type[Thread] | type[Reply]) -> QuerySet[Appeal]:
    appeals = Appeal.objects.filter(decided_at__isnull=True)
    if model is Thread:
        return appeals.filter(thread=OuterRef("pk"), reply__isnull=True)
    return appeals.filter(reply=OuterRef("pk"))


def queued_posts(user, *, narrow: Callable[[QuerySet], QuerySet] = lambda posts: posts) -> QuerySet:
    """Keys (``id``, ``kind``, ``latest``) of the threads and replies awaiting ``user``'s review:
    open flags (:func:`forums.services.moderation_queue`) or an undecided appeal, the most recently
    flagged or appealed first. ``narrow`` filters each model's posts (the queue's filters)."""

    def posts(model: type[Thread] | type[Reply]) -> QuerySet:
        flags, appeals = _open_flags(user, model), _pending_appeals(model)
        queued = model.objects.filter(
            Exists(flags) | (Exists(appeals) & Q(deleted_at__isnull=True))
        )
        queued = narrow(in_moderated(queued, user, _neighborhood_path(model)))
        flagged_at = Subquery(flags.order_by("-created_at").values("created_at")[:1])
        appealed_at = Subquery(appeals.values("created_at")[:1])
        return (
            queued.annotate(
                kind=Value(model._meta.model_name, output_field=CharField()),
                latest=Greatest(
                    Coalesce(flagged_at, appealed_at),
                    Coalesce(appealed_at, flagged_at),
                    output_field=DateTimeField(),
                ),
            )
            .values("id", "kind", "latest")
            .order_by()
        )

    return posts(Thread).union(posts(Reply), all=True).order_by("-latest", "-id")


class QueueFilterSet(WagtailFilterSet):
    """Filters applied to threads and to replies alike (each method sees which)."""

    neighborhood = django_filters.ModelChoiceFilter(
        label="Neighborhood",
        queryset=lambda request: moderated_neighborhoods(request.user),
        method="filter_neighborhood",
        empty_label="All",
    )
    reason = django_filters.ChoiceFilter(
        label="Reason",
        choices=Flag.Reason.choices,
        method="filter_reason",
        widget=forms.RadioSelect,
        empty_label="All",
    )
    hidden = django_filters.BooleanFilter(
        label="Hidden", method="filter_hidden", widget=BooleanRadioSelect
    )
    appealed = django_filters.BooleanFilter(
        label="Appealed by the author", method="filter_appealed", widget=BooleanRadioSelect
    )

    class Meta:
        model = Flag
        fields: list[str] = []

    def filter_neighborhood(self, queryset: QuerySet, name: str, value) -> QuerySet:
        return queryset.filter(**{_neighborhood_path(queryset.model): value})

    def filter_reason(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        flags = _open_flags(self.request.user, queryset.model).filter(reason=value)
        return queryset.filter(Exists(flags))

    def filter_hidden(self, queryset: QuerySet, name: str, value: bool) -> QuerySet:
        visible = Q(visibility=Visibility.VISIBLE)
        return queryset.filter(~visible if value else visible)

    def filter_appealed(self, queryset: QuerySet, name: str, value: bool) -> QuerySet:
        appealed = Exists(_pending_appeals(queryset.model))
        return queryset.filter(appealed if value else ~appealed)


class ModerationReportView(ModerationAccessMixin, ReportView):
    """A paginated, filterable admin listing (Wagtail's report machinery)."""

    def get_context_data(self, **kwargs) -> dict:
        context = super().get_context_data(**kwargs)
        # Where a form on the page comes back to: this listing with its filters and page.
        query = self.request.GET.copy()
        query.pop("_w_filter_fragment", None)
        context["next_url"] = f"{self.index_url}?{query.urlencode()}" if query else self.index_url
        return context


class QueuePanel(Component):
    """On the admin dashboard of those who moderate: how many posts await their review."""

    name = "forum_moderation_queue"
    template_name = "forums/admin/home_panel.html"
    order = 90

    def get_context_data(self, parent_context: Mapping[str, Any]) -> dict:
        return {
            "count": queued_posts(parent_context["request"].user).count(),
            "url": reverse(f"{QUEUE_NAMESPACE}:queue"),
        }


class PostPaginator(WagtailPaginator):
    verbose_name = "post"
    verbose_name_plural = "posts"


class QueueView(ModerationReportView):
    """Posts with open flags or an undecided appeal, most recently flagged or appealed first."""

    page_title = "Moderation queue"
    header_icon = "tasks"
    template_name = "forums/admin/queue.html"
    results_template_name = "forums/admin/queue_results.html"
    index_url_name = f"{QUEUE_NAMESPACE}:queue"
    index_results_url_name = f"{QUEUE_NAMESPACE}:queue_results"
    filterset_class = QueueFilterSet
    verbose_name_plural = "flagged or appealed posts"
    paginator_class = PostPaginator
    paginate_by = 20

    def get_filtered_queryset(self) -> QuerySet:
        return queued_posts(self.request.user, narrow=self.filter_queryset)

    def decorate_paginated_queryset(self, object_list) -> list[QueueItem]:
        return queue_items(self.request.user, [(row["kind"], row["id"]) for row in object_list])


# One post: review and act, history ------------------------------------------------------------


class ItemMixin:
    """Views of one thread (``kind = "thread"``) or reply that only its moderators may open."""

    kind = "thread"

    def dispatch(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not can_use_moderation(request):
            raise PermissionDenied
        items = queue_items(request.user, [(self.kind, kwargs["pk"])])
        if not items:
            raise Http404
        self.item = items[0]
        if not services.can_moderate(request.user, self.item.neighborhood):
            raise PermissionDenied
        return super().dispatch(request, *args, **kwargs)

    def get_breadcrumbs_items(self) -> list[dict]:
        return [
            *self.breadcrumbs_items,
            {"url": reverse(f"{QUEUE_NAMESPACE}:queue"), "label": "Moderation queue"},
            {"url": "", "label": self.get_page_title()},
        ]


class ItemView(ItemMixin, ActionFormsMixin, WagtailAdminTemplateMixin, TemplateView):
    """Everything about one flagged post, and every action on it (each a POST to this page)."""

    template_name = "forums/admin/item.html"
    unavailable_message = "That action is not available for this post."
    header_icon = "warning"

    def get_page_title(self) -> str:
        return f"Review {self.kind}"

    def get_page_subtitle(self) -> str:
        return self.item.thread.title

    @cached_property
    def author(self):
        return self.item.target.author

    def get_forms(self, bound: str | None = None) -> dict[str, forms.Form]:
        def data(name: str):
            return self.request.POST if bound == name else None

        found = {"decide": DecisionForm(data("decide"), kind=self.kind, prefix="decide")}
        thread = self.item.thread
        if self.kind == "thread" and thread.deleted_at is None and not thread.merged_into_id:
            others = moderated_neighborhoods(self.request.user).exclude(pk=thread.neighborhood_id)
            if others.exists():
                found["move"] = MoveForm(data("move"), neighborhoods=others, prefix="move")
            found["merge"] = MergeForm(data("merge"), prefix="merge")
        if self.author is not None and not is_city_staff(self.author):
            found["suspend"] = SuspendForm(data("suspend"), prefix="suspend")
        return found

    def get_context_data(self, **kwargs) -> dict:
        context = super().get_context_data(**kwargs)
        target = self.item.target
        log = ModerationAction.objects.select_related("actor__engagement_profile")
        log = log.filter(reply=target) if self.kind == "reply" else log.filter(thread=target)
        context.update(
            item=self.item,
            forms=kwargs.get("forms") or self.get_forms(),
            log=[_describe(entry) for entry in log[:20]],
            revision_count=target.revisions.count(),
            suspension=(
                services.suspension_of(self.author, self.item.neighborhood) if self.author else None
            ),
            next_url=get_valid_next_url_from_request(self.request),
            queue_url=reverse(f"{QUEUE_NAMESPACE}:queue"),
        )
        return context

    def perform(self, name: str, form: forms.Form) -> tuple[str, str]:
        """Apply one action; say what was done and go back where the moderator came from."""
        done = self.apply(name, form.cleaned_data)
        return done, get_valid_next_url_from_request(self.request) or self.request.path

    def apply(self, name: str, data: dict) -> str:
        """Apply one action through the services; return what to tell the moderator."""
        user, item = self.request.user, self.item
        if name == "decide":
            services.moderate(
                user, data["action"], reason=data["reason"], **{self.kind: item.target}
            )
            return f"{item.label}: {DECISION_MESSAGES[data['action']]}"
        if name == "move":
            destination = data["neighborhood"]
            services.moderate(
                user, "move", thread=item.target, reason=data["reason"], neighborhood=destination
            )
            return f"{item.label} moved to {destination.name}."
        if name == "merge":
            original = services.merge_threads(
                item.target, data["original"], actor=user, reason=data["reason"]
            )
            return f"{item.label} merged into “{original.title}” (#{original.pk})."
        suspension = services.suspend(
            user, self.author, item.neighborhood, days=data["days"], reason=data["reason"]
        )
        until = timezone.localtime(suspension.until).strftime("%-d %B %Y, %H:%M")
        return (
            f"{person_label(self.author)} is suspended from {item.neighborhood.name} until {until}."
        )


@dataclass
class Edit:
    """One edit of a post: the text before it, who made it, when, and what changed."""

    anchor: str
    at: datetime
    by: str
    title: str
    body: str
    changes: str


class HistoryView(ItemMixin, WagtailAdminTemplateMixin, TemplateView):
    """The current text of a post and every earlier version (the author's or a moderator's edits)."""

    template_name = "forums/admin/history.html"
    header_icon = "history"

    def get_page_title(self) -> str:
        return f"History of {self.kind}"

    def get_page_subtitle(self) -> str:
        return self.item.thread.title

    def get_context_data(self, **kwargs) -> dict:
        context = super().get_context_data(**kwargs)
        target = self.item.target
        newer_title = getattr(target, "title", "")
        newer_body = target.body
        edits = []
        for revision in target.revisions.select_related("edited_by__engagement_profile"):
            old = _as_text(revision.title, revision.body)
            new = _as_text(newer_title, newer_body)
            changes = "\n".join(difflib.unified_diff(old, new, "before", "after", lineterm="", n=2))
            edits.append(
                Edit(
                    anchor=f"edit-{revision.pk}",
                    at=revision.created_at,
                    by=person_label(revision.edited_by),
                    title=revision.title,
                    body=revision.body,
                    changes=changes,
                )
            )
            newer_title, newer_body = revision.title, revision.body
        context.update(item=self.item, edits=edits)
        return context


def _as_text(title: str, body: str) -> list[str]:
    return ([f"# {title}", ""] if title else []) + body.splitlines()


# The moderation log ---------------------------------------------------------------------------


class PersonChoiceField(django_filters.fields.ModelChoiceField):
    def label_from_instance(self, obj) -> str:
        return person_label(obj)


class PersonFilter(django_filters.ModelChoiceFilter):
    field_class = PersonChoiceField


def _scoped_log(user) -> QuerySet[ModerationAction]:
    return in_moderated(ModerationAction.objects.all(), user, "neighborhood")


class LogFilterSet(WagtailFilterSet):
    neighborhood = django_filters.ModelChoiceFilter(
        label="Neighborhood",
        queryset=lambda request: moderated_neighborhoods(request.user),
        empty_label="All",
    )
    action = django_filters.ChoiceFilter(
        label="Action", choices=list(ACTION_LABELS.items()), empty_label="All"
    )
    actor = PersonFilter(
        label="By",
        queryset=lambda request: (
            get_user_model()
            .objects.filter(pk__in=_scoped_log(request.user).values("actor_id"))
            .select_related("engagement_profile")
            .order_by("pk")
        ),
        empty_label="Anyone",
    )
    created_at = django_filters.DateFromToRangeFilter(label="Date", widget=DateRangePickerWidget)

    class Meta:
        model = ModerationAction
        fields: list[str] = []


def _describe(entry: ModerationAction) -> ModerationAction:
    """Attach what the log page and its export show of an entry."""
    entry.action_label = ACTION_LABELS.get(entry.action, entry.action)
    if entry.actor_id is None and entry.action == "auto_hide":
        entry.actor_label = "Flags reached the threshold"
    else:
        entry.actor_label = person_label(entry.actor)
    entry.details = "; ".join(f"{key}: {value}" for key, value in sorted(entry.data.items()))
    return entry


class LogView(ModerationReportView):
    """Who did what to which post, when and why; the neighborhoods the person moderates."""

    page_title = "Moderation log"
    header_icon = "history"
    template_name = "forums/admin/log.html"
    results_template_name = "forums/admin/log_results.html"
    index_url_name = f"{LOG_NAMESPACE}:index"
    index_results_url_name = f"{LOG_NAMESPACE}:results"
    filterset_class = LogFilterSet
    verbose_name_plural = "moderation actions"
    paginate_by = 50
    list_export = [
        "created_at",
        "actor_label",
        "action",
        "neighborhood.name",
        "thread_id",
        "reply_id",
        "subject_label",
        "reason",
        "details",
    ]
    export_headings = {
        "created_at": "When",
        "actor_label": "By",
        "action": "Action",
        "neighborhood.name": "Neighborhood",
        "thread_id": "Thread",
        "reply_id": "Reply",
        "subject_label": "Member concerned",
        "reason": "Reason",
        "details": "Details",
    }

    def get_filename(self) -> str:
        return f"moderation-log-{timezone.localdate():%Y-%m-%d}"

    def get_filtered_queryset(self) -> QuerySet[ModerationAction]:
        log = _scoped_log(self.request.user).select_related(
            "actor__engagement_profile",
            "subject__engagement_profile",
            "neighborhood",
            "thread",
            "reply",
        )
        return self.filter_queryset(_light(log, "neighborhood")).order_by("-created_at", "-id")

    def decorate_paginated_queryset(self, object_list) -> list[ModerationAction]:
        entries = [_describe(entry) for entry in object_list]
        for entry in entries:
            entry.subject_label = person_label(entry.subject) if entry.subject_id else ""
            if entry.reply_id:
                entry.review_url = reverse(f"{QUEUE_NAMESPACE}:reply", args=[entry.reply_id])
            elif entry.thread_id:
                entry.review_url = reverse(f"{QUEUE_NAMESPACE}:thread", args=[entry.thread_id])
        return entries


# Suspensions ----------------------------------------------------------------------------------


class SuspensionFilterSet(WagtailFilterSet):
    neighborhood = django_filters.ModelChoiceFilter(
        label="Neighborhood",
        queryset=lambda request: moderated_neighborhoods(request.user),
        empty_label="All",
    )

    class Meta:
        model = Suspension
        fields: list[str] = []


def _current_suspensions(user) -> QuerySet[Suspension]:
    suspensions = in_moderated(
        Suspension.objects.filter(until__gt=timezone.now()), user, "neighborhood"
    ).select_related("user__engagement_profile", "neighborhood", "by__engagement_profile")
    return _light(suspensions, "neighborhood")


class SuspensionsView(ModerationReportView):
    """Members suspended now, soonest back first; each can be lifted."""

    page_title = "Suspensions"
    header_icon = "lock"
    template_name = "forums/admin/suspensions.html"
    results_template_name = "forums/admin/suspensions_results.html"
    index_url_name = f"{SUSPENSIONS_NAMESPACE}:index"
    index_results_url_name = f"{SUSPENSIONS_NAMESPACE}:results"
    filterset_class = SuspensionFilterSet
    verbose_name_plural = "current suspensions"
    paginate_by = 50

    def get_filtered_queryset(self) -> QuerySet[Suspension]:
        return self.filter_queryset(_current_suspensions(self.request.user)).order_by("until", "id")

    def decorate_paginated_queryset(self, object_list) -> list[Suspension]:
        suspensions = list(object_list)
        for suspension in suspensions:
            suspension.member_label = person_label(suspension.user)
            suspension.by_label = person_label(suspension.by)
        return suspensions


class LiftSuspensionView(ModerationAccessMixin, View):
    """POST: end a suspension now (the services check the person moderates its neighborhood)."""

    http_method_names = ["post"]

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        suspension = get_object_or_404(_current_suspensions(request.user), pk=pk)
        form = LiftForm(request.POST)
        reason = form.cleaned_data["reason"] if form.is_valid() else ""
        try:
            services.lift_suspension(request.user, suspension, reason=reason)
        except PermissionDenied as exc:
            messages.error(request, str(exc) or "You may not do this.")
        else:
            messages.success(
                request,
                f"{person_label(suspension.user)} may take part in "
                f"{suspension.neighborhood.name} again.",
            )
        return redirect(
            get_valid_next_url_from_request(request) or reverse(f"{SUSPENSIONS_NAMESPACE}:index")
        )


# Forum categories -----------------------------------------------------------------------------


class ForumCategoryDeleteView(DeleteView):
    """A category that holds threads stays (threads need one): say so instead of failing."""

    @cached_property
    def thread_count(self) -> int:
        return self.object.threads.count()

    @property
    def confirmation_message(self) -> str:
        if self.thread_count:
            return (
                f"{self.thread_count} thread{'s are' if self.thread_count != 1 else ' is'} in "
                f"this category, so it cannot be deleted. Rename it instead."
            )
        return super().confirmation_message

    def form_valid(self, form) -> HttpResponse:
        if self.thread_count:
            messages.error(self.request, self.confirmation_message)
            return redirect(self.get_success_url())
        return super().form_valid(form)
