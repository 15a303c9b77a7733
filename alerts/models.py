"""Alerts (official notices and resident reports), the live event log and personal notifications."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from neighborhoods.models import Department, Neighborhood


class Severity(models.IntegerChoices):
    INFO = 1, "Info"
    ADVISORY = 2, "Advisory"
    WARNING = 3, "Warning"
    EMERGENCY = 4, "Emergency"

    @classmethod
    def from_name(cls, name: str) -> Severity:
        """``"warning"`` → ``Severity.WARNING``; raises ``ValueError`` for an unknown name."""
        try:
            return cls[str(name).strip().upper()]
        except KeyError:
            names = ", ".join(s.name.lower() for s in cls)
            raise ValueError(f"unknown severity {name!r}; use one of {names}") from None

    @property
    def slug(self) -> str:
        return self.name.lower()


class AlertCategory(models.Model):
    """What an alert is about; editors manage the list in the Wagtail admin."""

    slug = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=80)
    description = models.CharField(max_length=240, blank=True)
    default_lifetime_hours = models.PositiveIntegerField(
        default=24, help_text="A resident report expires this long after its last confirmation."
    )
    default_radius_m = models.PositiveIntegerField(
        default=150, help_text="Radius drawn around a resident's pin."
    )
    residents_may_report = models.BooleanField(default=True)
    sort_order = models.PositiveSmallIntegerField(default=100)

    class Meta:
        ordering = ["sort_order", "name"]
        verbose_name_plural = "alert categories"

    def __str__(self) -> str:
        return self.name


class AlertQuerySet(models.QuerySet):
    def active(self, now=None) -> AlertQuerySet:
        now = now or timezone.now()
        return self.filter(status=Alert.Status.ACTIVE, starts_at__lte=now).filter(
            Q(expires_at__isnull=True) | Q(expires_at__gt=now)
        )

    def public(self) -> AlertQuerySet:
        """Alerts anyone may open: everything but dismissed reports."""
        return self.exclude(status=Alert.Status.DISMISSED)

    def feed_order(self) -> AlertQuerySet:
        return self.order_by("-severity", "-starts_at", "-id")


class Alert(models.Model):
    class Kind(models.TextChoices):
        OFFICIAL = "official", "Official notice"
        COMMUNITY = "community", "Resident report"

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        RESOLVED = "resolved", "Resolved"
        DISMISSED = "dismissed", "Dismissed"
        RETRACTED = "retracted", "Retracted"
        EXPIRED = "expired", "Expired"

    class Source(models.TextChoices):
        WEB = "web", "Web form"
        API = "api", "API"
        FEED = "feed", "Official feed"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    category = models.ForeignKey(AlertCategory, on_delete=models.PROTECT, related_name="alerts")
    severity = models.PositiveSmallIntegerField(choices=Severity.choices, default=Severity.INFO)
    title = models.CharField(max_length=140)
    body = models.TextField(blank=True, help_text="Markdown.")
    body_html = models.TextField(blank=True, editable=False)
    # The area: always a GeoJSON polygon; for a pin with a radius also the centre and radius.
    area = models.JSONField()
    lat = models.FloatField(null=True, blank=True)
    lon = models.FloatField(null=True, blank=True)
    radius_m = models.PositiveIntegerField(null=True, blank=True)
    min_lon = models.FloatField(editable=False)
    min_lat = models.FloatField(editable=False)
    max_lon = models.FloatField(editable=False)
    max_lat = models.FloatField(editable=False)
    neighborhoods = models.ManyToManyField(Neighborhood, related_name="alerts", blank=True)
    starts_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    photo = models.ImageField(upload_to="alerts/%Y/%m/", blank=True)
    # Provenance.
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="alerts",
    )
    department = models.ForeignKey(
        Department, null=True, blank=True, on_delete=models.PROTECT, related_name="alerts"
    )
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.WEB)
    source_name = models.CharField(max_length=120, blank=True, help_text="Feed or system name.")
    source_url = models.URLField(max_length=500, blank=True)
    external_id = models.CharField(
        max_length=255, null=True, blank=True, unique=True, help_text="CAP identifier of a feed."
    )
    # Life of the alert.
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    confirmations = models.PositiveIntegerField(default=0)
    gone_reports = models.PositiveIntegerField(default=0)
    corroborated_at = models.DateTimeField(null=True, blank=True)
    last_confirmed_at = models.DateTimeField(null=True, blank=True)
    verified_at = models.DateTimeField(null=True, blank=True)
    verified_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status_note = models.CharField(max_length=500, blank=True)
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = AlertQuerySet.as_manager()

    class Meta:
        indexes = [
            models.Index(fields=["status", "expires_at"]),
            models.Index(fields=["-severity", "-starts_at"]),
            models.Index(fields=["min_lon", "max_lon", "min_lat", "max_lat"]),
        ]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("alerts:detail", args=[self.pk])

    @property
    def is_official(self) -> bool:
        return self.kind == self.Kind.OFFICIAL

    @property
    def severity_slug(self) -> str:
        return Severity(self.severity).slug

    @property
    def is_corroborated(self) -> bool:
        return self.corroborated_at is not None

    def is_active(self, now=None) -> bool:
        now = now or timezone.now()
        return (
            self.status == self.Status.ACTIVE
            and self.starts_at <= now
            and (self.expires_at is None or self.expires_at > now)
        )

    @property
    def provenance(self) -> str:
        """The label always shown with the alert: who says so."""
        if self.is_official:
            name = self.department.name if self.department_id else (self.source_name or "City")
            return f"Official · {name}"
        if self.verified_at:
            return "Resident report · verified by the city"
        if self.is_corroborated:
            n = self.confirmations
            return f"Corroborated by {n} neighbour{'s' if n != 1 else ''}"
        return "Resident report"


class AlertRevision(models.Model):
    """What an alert said before each edit or retraction, so the original stays visible."""

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="revisions")
    version = models.PositiveIntegerField()
    title = models.CharField(max_length=140)
    body = models.TextField(blank=True)
    severity = models.PositiveSmallIntegerField(choices=Severity.choices)
    expires_at = models.DateTimeField(null=True, blank=True)
    edited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    note = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-version"]
        constraints = [
            models.UniqueConstraint(fields=["alert", "version"], name="one_revision_per_version")
        ]

    def __str__(self) -> str:
        return f"{self.alert_id} v{self.version}"


class AlertConfirmation(models.Model):
    """A member's word on a resident report: still there, or gone. One per person per alert."""

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="confirmations_set")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    still_there = models.BooleanField(default=True)
    verified_member = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["alert", "user"], name="one_confirmation_per_person")
        ]

    def __str__(self) -> str:
        return f"{self.user_id} on {self.alert_id}: {'there' if self.still_there else 'gone'}"


class Event(models.Model):
    """The live layer's log: every event gets its id here before anyone is sent it.

    Ids follow commit order (publishing takes a transaction-scoped lock on PostgreSQL), so a
    client that resumes with ``since`` gets exactly the events after the last one it saw.
    """

    id = models.BigAutoField(primary_key=True)
    topic = models.CharField(max_length=120)
    type = models.CharField(max_length=40)
    data = models.JSONField(default=dict)
    # "" for everyone who may follow the topic; "staff" for city staff only.
    audience = models.CharField(max_length=16, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        indexes = [models.Index(fields=["topic", "id"])]

    def __str__(self) -> str:
        return f"#{self.pk} {self.topic} {self.type}"


class EventLogMark(models.Model):
    """One row: the highest event id pruning has deleted. A client resuming from below it has
    missed events for good and is told to reload."""

    pruned_upto = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"events pruned up to #{self.pruned_upto}"


class Notification(models.Model):
    """One item in a person's inbox; deliveries to other channels hang off it."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="engagement_notifications"
    )
    kind = models.CharField(max_length=40)
    severity = models.PositiveSmallIntegerField(choices=Severity.choices, default=Severity.INFO)
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    url = models.CharField(max_length=500, blank=True)
    alert = models.ForeignKey(
        Alert, null=True, blank=True, on_delete=models.CASCADE, related_name="notifications"
    )
    # Identifies what the notification is about, so the same thing is never notified twice.
    key = models.CharField(max_length=120)
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="one_notification_per_key")
        ]
        indexes = [models.Index(fields=["user", "read_at"])]

    def __str__(self) -> str:
        return f"{self.user_id}: {self.title}"


class Delivery(models.Model):
    """A notification sent (or to be sent) through one channel: e-mail, SMS or push."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DIGEST = "digest", "Waiting for the daily digest"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Skipped"

    notification = models.ForeignKey(
        Notification, on_delete=models.CASCADE, related_name="deliveries"
    )
    channel = models.CharField(max_length=16)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)
    not_before = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "deliveries"
        constraints = [
            models.UniqueConstraint(
                fields=["notification", "channel"], name="one_delivery_per_channel"
            )
        ]
        indexes = [models.Index(fields=["channel", "status"])]

    def __str__(self) -> str:
        return f"{self.channel} {self.status} for {self.notification_id}"


class RecordedMessage(models.Model):
    """What a recording backend (SMS, web push) would have sent, for inspection and tests."""

    channel = models.CharField(max_length=16)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    recipient = models.CharField(max_length=255, blank=True)
    subject = models.CharField(max_length=255, blank=True)
    body = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.channel} to {self.recipient}: {self.subject}"
