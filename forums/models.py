"""Neighborhood discussion: threads, replies, support (votes), following, moderation."""

from __future__ import annotations

import math

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from taggit.managers import TaggableManager
from wagtail.search import index

from neighborhoods.models import Department, Neighborhood, Organization

# The "hot" order: log10 of support plus time, so a thread needs ten times the support to stay
# level with one 12.5 hours newer (see docs/forums.md).
HOT_EPOCH = 1_735_689_600  # 2025-01-01T00:00:00Z
HOT_HALF_LIFE_SECONDS = 45_000


def hot_score(votes: int, replies: int, created_at) -> float:
    """``log10(max(1, votes + replies / 2)) + (created - 2025-01-01) / 45,000 s``."""
    weight = max(1.0, votes + replies / 2)
    return round(
        math.log10(weight) + (created_at.timestamp() - HOT_EPOCH) / HOT_HALF_LIFE_SECONDS, 7
    )


class Visibility(models.TextChoices):
    VISIBLE = "visible", "Visible"
    PENDING = "pending", "Hidden pending review"
    HIDDEN = "hidden", "Hidden by a moderator"


class ForumCategory(models.Model):
    slug = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=80)
    description = models.CharField(max_length=240, blank=True)
    sort_order = models.PositiveSmallIntegerField(default=100)

    class Meta:
        ordering = ["sort_order", "name"]
        verbose_name_plural = "forum categories"

    def __str__(self) -> str:
        return self.name


# What feeds show: visible, not deleted, not merged away.
LISTED = Q(visibility="visible", deleted_at__isnull=True, merged_into__isnull=True)


class ThreadQuerySet(models.QuerySet):
    def listed(self) -> ThreadQuerySet:
        """What feeds show: visible, not deleted, not merged away."""
        return self.filter(LISTED)


class Thread(index.Indexed, models.Model):
    neighborhood = models.ForeignKey(Neighborhood, on_delete=models.CASCADE, related_name="threads")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="threads"
    )
    category = models.ForeignKey(ForumCategory, on_delete=models.PROTECT, related_name="threads")
    title = models.CharField(max_length=140)
    body = models.TextField(help_text="Markdown.")
    body_html = models.TextField(editable=False)
    tags = TaggableManager(blank=True)
    lat = models.FloatField(null=True, blank=True)
    lon = models.FloatField(null=True, blank=True)
    # Support and activity, kept on the row and changed atomically.
    vote_count = models.IntegerField(default=0)
    reply_count = models.IntegerField(default=0)
    hot = models.FloatField(default=0, db_index=True)
    last_activity_at = models.DateTimeField(default=timezone.now)
    answer = models.ForeignKey(
        "Reply", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    has_official_reply = models.BooleanField(default=False)
    cosigned_by = models.ManyToManyField(
        Organization, through="Cosign", related_name="cosigned_threads", blank=True
    )
    # Moderation.
    visibility = models.CharField(
        max_length=12, choices=Visibility.choices, default=Visibility.VISIBLE
    )
    moderation_note = models.CharField(max_length=500, blank=True)
    is_locked = models.BooleanField(default=False)
    is_pinned = models.BooleanField(default=False)
    merged_into = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="merged_threads"
    )
    created_at = models.DateTimeField(default=timezone.now)
    edited_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    objects = ThreadQuerySet.as_manager()

    search_fields = [
        index.SearchField("title", boost=3),
        index.SearchField("body"),
        index.RelatedFields("tags", [index.SearchField("name", boost=2)]),
        index.FilterField("neighborhood_id"),
        index.FilterField("visibility"),
        index.FilterField("deleted_at"),
        index.FilterField("merged_into_id"),
    ]

    class Meta:
        # One partial index per feed order, covering exactly the listed threads, so a page of a
        # neighborhood's feed is read in order from the index (no sort of all its threads).
        indexes = [
            models.Index(
                fields=["neighborhood", "-is_pinned", f"-{field}", *(f"-{f}" for f in then), "-id"],
                condition=LISTED,
                name=f"thread_feed_{name}",
            )
            for name, field, then in (
                ("hot", "hot", ()),
                ("new", "created_at", ()),
                ("top", "vote_count", ("created_at",)),
                ("talk", "reply_count", ("last_activity_at",)),
            )
        ] + [
            models.Index(fields=["-hot", "-id"], condition=LISTED, name="thread_feed_all_hot"),
            models.Index(
                fields=["-created_at", "-id"], condition=LISTED, name="thread_feed_all_new"
            ),
            # "Top this week": the few recent threads by date, then sorted by support.
            models.Index(
                fields=["neighborhood", "created_at"], condition=LISTED, name="thread_recent"
            ),
        ]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("forums:thread", args=[self.neighborhood.slug, self.pk])

    @property
    def is_listed(self) -> bool:
        return (
            self.visibility == Visibility.VISIBLE
            and self.deleted_at is None
            and self.merged_into_id is None
        )

    def refresh_hot(self) -> None:
        self.hot = hot_score(self.vote_count, self.reply_count, self.created_at)


class ThreadPhoto(models.Model):
    thread = models.ForeignKey(Thread, on_delete=models.CASCADE, related_name="photos")
    image = models.ImageField(upload_to="forums/%Y/%m/")
    width = models.PositiveIntegerField(default=0)
    height = models.PositiveIntegerField(default=0)
    alt = models.CharField(max_length=200, blank=True)
    position = models.PositiveSmallIntegerField(default=0)
    # A position found in the photo's metadata: offered to the author as the pin, never shown.
    offered_lat = models.FloatField(null=True, blank=True, editable=False)
    offered_lon = models.FloatField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return self.image.name


class Reply(models.Model):
    thread = models.ForeignKey(Thread, on_delete=models.CASCADE, related_name="replies")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="replies"
    )
    body = models.TextField()
    body_html = models.TextField(editable=False)
    quote = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="quoted_by"
    )
    # City staff answer in an official voice, with their department.
    is_official = models.BooleanField(default=False)
    department = models.ForeignKey(
        Department, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    vote_count = models.IntegerField(default=0)
    visibility = models.CharField(
        max_length=12, choices=Visibility.choices, default=Visibility.VISIBLE
    )
    moderation_note = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    edited_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["thread", "created_at"])]
        verbose_name_plural = "replies"

    def __str__(self) -> str:
        return f"Reply {self.pk} in {self.thread_id}"

    def get_absolute_url(self) -> str:
        return f"{self.thread.get_absolute_url()}#reply-{self.pk}"


class Revision(models.Model):
    """The text of a thread or reply before an edit: moderators can read the history."""

    thread = models.ForeignKey(
        Thread, null=True, blank=True, on_delete=models.CASCADE, related_name="revisions"
    )
    reply = models.ForeignKey(
        Reply, null=True, blank=True, on_delete=models.CASCADE, related_name="revisions"
    )
    title = models.CharField(max_length=140, blank=True)
    body = models.TextField()
    edited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Revision {self.pk}"


class Vote(models.Model):
    """One person's support for one thread or one reply."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    thread = models.ForeignKey(
        Thread, null=True, blank=True, on_delete=models.CASCADE, related_name="votes"
    )
    reply = models.ForeignKey(
        Reply, null=True, blank=True, on_delete=models.CASCADE, related_name="votes"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "thread"],
                condition=Q(reply__isnull=True),
                name="one_vote_per_person_per_thread",
            ),
            models.UniqueConstraint(
                fields=["user", "reply"],
                condition=Q(reply__isnull=False),
                name="one_vote_per_person_per_reply",
            ),
            models.CheckConstraint(
                condition=Q(thread__isnull=False, reply__isnull=True)
                | Q(thread__isnull=True, reply__isnull=False),
                name="vote_for_a_thread_or_a_reply",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} supports {self.thread_id or self.reply_id}"


class Follow(models.Model):
    """Following a thread (notified of replies), or muting it (never notified)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="thread_follows"
    )
    thread = models.ForeignKey(Thread, on_delete=models.CASCADE, related_name="follows")
    muted = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "thread"], name="one_follow_per_person")
        ]

    def __str__(self) -> str:
        return f"{self.user_id} {'mutes' if self.muted else 'follows'} {self.thread_id}"


class Cosign(models.Model):
    """An organization putting its name to a thread."""

    thread = models.ForeignKey(Thread, on_delete=models.CASCADE, related_name="cosigns")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    signed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["thread", "organization"], name="one_cosign_per_org")
        ]

    def __str__(self) -> str:
        return f"{self.organization} co-signs {self.thread_id}"


class Flag(models.Model):
    class Reason(models.TextChoices):
        SPAM = "spam", "Spam or advertising"
        ABUSE = "abuse", "Harassment or hate"
        PRIVACY = "privacy", "Shares someone's private information"
        OFF_TOPIC = "off_topic", "Off topic for this neighborhood"
        OTHER = "other", "Something else"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    thread = models.ForeignKey(
        Thread, null=True, blank=True, on_delete=models.CASCADE, related_name="flags"
    )
    reply = models.ForeignKey(
        Reply, null=True, blank=True, on_delete=models.CASCADE, related_name="flags"
    )
    reason = models.CharField(max_length=16, choices=Reason.choices)
    note = models.CharField(max_length=500, blank=True)
    weight = models.PositiveSmallIntegerField(default=1)
    created_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "thread"],
                condition=Q(reply__isnull=True),
                name="one_flag_per_person_per_thread",
            ),
            models.UniqueConstraint(
                fields=["user", "reply"],
                condition=Q(reply__isnull=False),
                name="one_flag_per_person_per_reply",
            ),
        ]

    def __str__(self) -> str:
        return f"Flag {self.pk} ({self.reason})"


class Appeal(models.Model):
    """An author's one appeal against hidden content."""

    thread = models.ForeignKey(
        Thread, null=True, blank=True, on_delete=models.CASCADE, related_name="appeals"
    )
    reply = models.ForeignKey(
        Reply, null=True, blank=True, on_delete=models.CASCADE, related_name="appeals"
    )
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    text = models.TextField(max_length=2000)
    created_at = models.DateTimeField(default=timezone.now)
    decided_at = models.DateTimeField(null=True, blank=True)
    upheld = models.BooleanField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["thread"], condition=Q(reply__isnull=True), name="one_appeal_per_thread"
            ),
            models.UniqueConstraint(
                fields=["reply"], condition=Q(reply__isnull=False), name="one_appeal_per_reply"
            ),
        ]

    def __str__(self) -> str:
        return f"Appeal {self.pk}"


class Suspension(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="forum_suspensions"
    )
    neighborhood = models.ForeignKey(Neighborhood, on_delete=models.CASCADE, related_name="+")
    until = models.DateTimeField()
    reason = models.CharField(max_length=500)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["user", "neighborhood", "until"])]

    def __str__(self) -> str:
        return f"{self.user_id} suspended in {self.neighborhood_id} until {self.until}"


class ModerationAction(models.Model):
    """The audit log: who did what to which content, when and why."""

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    action = models.CharField(max_length=24)
    neighborhood = models.ForeignKey(
        Neighborhood, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    thread = models.ForeignKey(
        Thread, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reply = models.ForeignKey(
        Reply, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    subject = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reason = models.CharField(max_length=500, blank=True)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.action} by {self.actor_id}"
