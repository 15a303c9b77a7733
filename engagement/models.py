"""The city's side: the service catalogue, 311 cases and their history, surveys, Open311 keys and
the forwarding outbox."""

from __future__ import annotations

import hashlib
import uuid

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from modelcluster.fields import ParentalKey
from modelcluster.models import ClusterableModel
from wagtail.models import Orderable

from forums.models import ForumCategory, Thread
from neighborhoods.models import Department, Neighborhood

CODE_VALIDATOR = RegexValidator(
    r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$",
    "Use letters, digits, dots, dashes and underscores (up to 40).",
)


class Holiday(models.Model):
    """A day the city does not work: service levels count working days around it."""

    date = models.DateField(unique=True)
    name = models.CharField(max_length=120)

    class Meta:
        ordering = ["date"]

    def __str__(self) -> str:
        return f"{self.name} ({self.date:%Y-%m-%d})"


class ServiceType(ClusterableModel):
    """What a resident can ask the city for (an Open311 service)."""

    code = models.CharField(
        max_length=40,
        unique=True,
        validators=[CODE_VALIDATOR],
        help_text="The Open311 service_code; keep it stable once published.",
    )
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    group = models.CharField(max_length=80, blank=True, help_text="Open311 group, e.g. Streets.")
    keywords = models.CharField(
        max_length=300, blank=True, help_text="Comma-separated words residents might use."
    )
    department = models.ForeignKey(
        Department, on_delete=models.PROTECT, related_name="service_types"
    )
    sla_working_days = models.PositiveSmallIntegerField(
        default=5,
        validators=[MinValueValidator(1), MaxValueValidator(365)],
        help_text="Working days to close a case (weekends and holidays do not count).",
    )
    forum_category = models.ForeignKey(
        ForumCategory,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Threads in this category suggest this type when escalated.",
    )
    forum_tags = models.CharField(
        max_length=300,
        blank=True,
        help_text="Comma-separated thread tags that suggest this type (e.g. potholes).",
    )
    is_active = models.BooleanField(default=True)
    sort_order = models.PositiveSmallIntegerField(default=100)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["sort_order", "name"]

    def __str__(self) -> str:
        return self.name

    @property
    def keyword_list(self) -> list[str]:
        return [k.strip() for k in self.keywords.split(",") if k.strip()]

    @property
    def tag_list(self) -> list[str]:
        return [t.strip().lower() for t in self.forum_tags.split(",") if t.strip()]


class ServiceQuestion(Orderable):
    """A question asked when filing a case (an Open311 attribute)."""

    class Datatype(models.TextChoices):
        STRING = "string", "Short text"
        NUMBER = "number", "Number"
        DATETIME = "datetime", "Date and time"
        TEXT = "text", "Long text"
        SINGLE = "singlevaluelist", "Pick one"
        MULTI = "multivaluelist", "Pick several"

    service_type = ParentalKey(ServiceType, on_delete=models.CASCADE, related_name="questions")
    code = models.CharField(max_length=40, validators=[CODE_VALIDATOR])
    prompt = models.CharField(max_length=300, help_text="The question as residents see it.")
    datatype = models.CharField(max_length=16, choices=Datatype.choices, default=Datatype.STRING)
    datatype_description = models.CharField(max_length=200, blank=True)
    required = models.BooleanField(default=False)
    variable = models.BooleanField(
        default=True, help_text="Untick for text that is only shown, never answered."
    )
    values = models.TextField(
        blank=True,
        help_text="For pick-one and pick-several: one choice per line as key|label.",
    )

    class Meta(Orderable.Meta):
        constraints = [
            models.UniqueConstraint(fields=["service_type", "code"], name="one_question_per_code")
        ]

    def __str__(self) -> str:
        return self.prompt

    @property
    def is_list(self) -> bool:
        return self.datatype in (self.Datatype.SINGLE, self.Datatype.MULTI)

    def value_list(self) -> list[tuple[str, str]]:
        """The choices as ``(key, name)``."""
        choices = []
        for line in self.values.splitlines():
            if not line.strip():
                continue
            key, _, name = line.partition("|")
            key = key.strip()
            choices.append((key, name.strip() or key))
        return choices


class TrackingCounter(models.Model):
    """The last tracking number issued in a year (``26-000123``)."""

    year = models.PositiveSmallIntegerField(primary_key=True)
    last = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.year}: {self.last}"


class Case(models.Model):
    """A formal 311 service request."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        ACKNOWLEDGED = "acknowledged", "Acknowledged"
        IN_PROGRESS = "in_progress", "In progress"
        SCHEDULED = "scheduled", "Scheduled"
        CLOSED = "closed", "Closed"

    class Resolution(models.TextChoices):
        FIXED = "fixed", "Fixed"
        NOT_FIXED = "not_fixed", "Not fixed"
        DUPLICATE = "duplicate", "Duplicate"
        NOT_CITY = "not_city", "Not the city's responsibility"
        UNABLE_TO_LOCATE = "unable_to_locate", "Unable to locate"

    class Channel(models.TextChoices):
        WEB = "web", "Web"
        API = "api", "API"
        PHONE = "phone", "Phone (call taker)"
        LIAISON = "liaison", "Neighborhood liaison"
        FIELD = "field", "City staff in the field"
        OPEN311 = "open311", "Open311 client"

    tracking_number = models.CharField(max_length=16, unique=True)
    service_type = models.ForeignKey(ServiceType, on_delete=models.PROTECT, related_name="cases")
    department = models.ForeignKey(Department, on_delete=models.PROTECT, related_name="cases")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    resolution = models.CharField(max_length=20, choices=Resolution.choices, blank=True)
    resolution_note = models.TextField(blank=True)
    duplicate_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="duplicates"
    )
    responsible_party = models.CharField(
        max_length=200, blank=True, help_text="Whose responsibility it is, when not the city's."
    )
    description = models.TextField(max_length=4000)
    answers = models.JSONField(default=dict, blank=True)
    # Where.
    lat = models.FloatField(null=True, blank=True)
    lon = models.FloatField(null=True, blank=True)
    address = models.CharField(max_length=250, blank=True)
    neighborhood = models.ForeignKey(
        Neighborhood, null=True, blank=True, on_delete=models.SET_NULL, related_name="cases"
    )
    # Who: never shown to anyone but staff.
    reporter = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="reported_cases",
    )
    contact_name = models.CharField(max_length=120, blank=True)
    contact_email = models.EmailField(blank=True)
    contact_phone = models.CharField(max_length=40, blank=True)
    channel = models.CharField(max_length=10, choices=Channel.choices, default=Channel.WEB)
    filed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The call taker or liaison who filed it on someone's behalf.",
    )
    api_client = models.CharField(max_length=120, blank=True)
    thread = models.ForeignKey(
        Thread,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="cases",
        help_text="The discussion this case was escalated from.",
    )
    threads = models.ManyToManyField(
        Thread,
        blank=True,
        related_name="linked_cases",
        help_text="Every discussion about it (the escalated one, and those of merged duplicates).",
    )
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="assigned_cases",
    )
    supporter_count = models.PositiveIntegerField(default=0)
    verified_supporter_count = models.PositiveIntegerField(default=0)
    # Time.
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now, db_index=True)
    expected_at = models.DateTimeField(null=True, blank=True)
    scheduled_for = models.DateField(null=True, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    reopened_count = models.PositiveSmallIntegerField(default=0)
    contested_count = models.PositiveSmallIntegerField(default=0)
    # Identity for clients and the city's own system.
    token = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    idempotency_key = models.CharField(max_length=100, blank=True)
    external_id = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["thread"],
                condition=Q(thread__isnull=False) & ~Q(status="closed"),
                name="one_open_case_per_thread",
            ),
            models.UniqueConstraint(
                fields=["idempotency_key"],
                condition=~Q(idempotency_key=""),
                name="one_case_per_idempotency_key",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "-created_at"]),
            models.Index(fields=["neighborhood", "status"]),
            models.Index(fields=["service_type", "status"]),
            models.Index(fields=["service_type", "-created_at"]),
            models.Index(fields=["department", "status"]),
            models.Index(fields=["-created_at", "-id"]),
            models.Index(fields=["lat", "lon"]),
        ]

    def __str__(self) -> str:
        return f"{self.tracking_number} {self.service_type}"

    def get_absolute_url(self) -> str:
        return reverse("engagement:case", args=[self.tracking_number])

    @property
    def is_open(self) -> bool:
        return self.status != self.Status.CLOSED

    @property
    def is_overdue(self) -> bool:
        return bool(self.is_open and self.expected_at and self.expected_at < timezone.now())


class CasePhoto(models.Model):
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="photos")
    image = models.ImageField(upload_to="cases/%Y/%m/", blank=True)
    url = models.URLField(blank=True, help_text="A photo given by address (Open311 media_url).")
    width = models.PositiveIntegerField(default=0)
    height = models.PositiveIntegerField(default=0)
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return self.image.name or self.url


class CaseSupport(models.Model):
    """A neighbour who has the same problem ("me too")."""

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="supports")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["case", "user"], name="one_support_per_person")
        ]

    def __str__(self) -> str:
        return f"{self.user_id} supports {self.case_id}"


class CaseFollow(models.Model):
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="follows")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["case", "user"], name="one_case_follow_per_person")
        ]

    def __str__(self) -> str:
        return f"{self.user_id} follows {self.case_id}"


class CaseNote(models.Model):
    """The case's timeline: status changes and notes, public or internal."""

    class Kind(models.TextChoices):
        CREATED = "created", "Filed"
        STATUS = "status", "Status change"
        NOTE = "note", "Note"
        ASSIGNED = "assigned", "Assigned"
        REOPENED = "reopened", "Reopened"
        CONTESTED = "contested", "Closure contested"
        MERGED = "merged", "Merged"
        FORWARDED = "forwarded", "Forwarded"

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="notes")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.NOTE)
    text = models.TextField(blank=True, max_length=4000)
    is_public = models.BooleanField(default=True)
    status_from = models.CharField(max_length=16, blank=True)
    status_to = models.CharField(max_length=16, blank=True)
    photo = models.ImageField(upload_to="cases/%Y/%m/", blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["case", "created_at"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} on {self.case_id}"


class SurveyResponse(models.Model):
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="survey_responses")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    fixed = models.BooleanField()
    satisfaction = models.PositiveSmallIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(5)]
    )
    comment = models.TextField(blank=True, max_length=2000)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["case", "user"], name="one_survey_answer_per_person"),
            models.CheckConstraint(
                condition=Q(satisfaction__gte=1, satisfaction__lte=5),
                name="satisfaction_one_to_five",
            ),
        ]

    def __str__(self) -> str:
        return f"Survey of {self.case_id} by {self.user_id}"


class CaseAudit(models.Model):
    """Who did what to a case, when and why (staff actions, channels, forwarding)."""

    case = models.ForeignKey(
        Case, null=True, blank=True, on_delete=models.SET_NULL, related_name="audit"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    action = models.CharField(max_length=32)
    reason = models.CharField(max_length=500, blank=True)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.action} on {self.case_id}"


class Open311Key(models.Model):
    """A key for an Open311 client that files requests; only its hash is stored."""

    name = models.CharField(max_length=120, unique=True)
    prefix = models.CharField(max_length=8, editable=False)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    is_active = models.BooleanField(default=True)
    requests_per_minute = models.PositiveIntegerField(default=30)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "Open311 API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @staticmethod
    def hash(key: str) -> str:
        return hashlib.sha256(key.encode()).hexdigest()


class OutboxMessage(models.Model):
    """A case waiting to be forwarded to the city's own system (or already sent)."""

    class State(models.TextChoices):
        PENDING = "pending", "Waiting"
        SENDING = "sending", "Being sent"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    case = models.OneToOneField(Case, on_delete=models.CASCADE, related_name="outbox")
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now, db_index=True)
    last_error = models.TextField(blank=True)
    remote_id = models.CharField(max_length=100, blank=True)
    remote_token = models.CharField(max_length=100, blank=True)
    remote_status = models.CharField(max_length=32, blank=True)
    last_polled_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["state", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"{self.case_id} {self.state}"
