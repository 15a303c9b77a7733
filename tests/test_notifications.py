"""Personal notifications: preferences, quiet hours, channels, retries, digests, unsubscribe,
the inbox and its badge."""

from __future__ import annotations

import io
from datetime import datetime, timedelta
from urllib.parse import urlparse
from zoneinfo import ZoneInfo

import pytest
from django.core import mail
from django.core.management import call_command
from django.db import connection, transaction
from django.db.models import F
from django.template import Context, Template
from django.test import Client, RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django_tasks import task_backends

from alerts import notify, tasks
from alerts.backends import (
    PermanentDeliveryError,
    RecordingBackend,
    TemporaryDeliveryError,
)
from alerts.models import Alert, Delivery, Event, Notification, RecordedMessage, Severity
from alerts.notify import Preferences, plan_for
from neighborhoods.forms import NotificationPreferencesForm
from neighborhoods.models import Profile
from tests.factories import (
    CityStaffFactory,
    MembershipFactory,
    NeighborhoodFactory,
    VerifiedUserFactory,
    official_notice,
    resident_report,
)

pytestmark = pytest.mark.django_db

TZ = ZoneInfo("America/New_York")
DUMMY_TASKS = {"default": {"BACKEND": "django_tasks.backends.dummy.DummyBackend"}}


# Helpers --------------------------------------------------------------------------------------


class FailingBackend(RecordingBackend):
    """Fails every send with a temporary error; counts the attempts."""

    calls = 0

    def send(self, message) -> None:
        type(self).calls += 1
        raise TemporaryDeliveryError("gateway timeout")


class RefusingBackend(RecordingBackend):
    def send(self, message) -> None:
        raise PermanentDeliveryError("address refused")


class BrokenBackend(RecordingBackend):
    """A bug in a backend: an unexpected exception."""

    def send(self, message) -> None:
        raise RuntimeError("boom")


class PhoneRecordingBackend(RecordingBackend):
    """Records SMS for people whose (site-specific) phone number is known."""

    def recipient_for(self, user) -> str | None:
        return "+12155550100"


def backends(**channels: str) -> dict:
    paths = {
        "email": "alerts.backends.EmailBackend",
        "sms": "alerts.backends.RecordingBackend",
        "push": "alerts.backends.RecordingBackend",
    }
    paths.update(channels)
    return paths


def set_prefs(user, **fields) -> dict:
    """Save preferences exactly as the profile form does."""
    data = {
        "inapp_min_severity": "info",
        "email_enabled": "on",
        "email_min_severity": "warning",
        "email_digest": "daily",
    }
    data.update(fields)
    data = {k: v for k, v in data.items() if v is not None}
    form = NotificationPreferencesForm(data)
    assert form.is_valid(), form.errors
    prefs = form.to_preferences()
    Profile.objects.update_or_create(user=user, defaults={"notification_preferences": prefs})
    return prefs


def local(*args) -> datetime:
    return datetime(*args, tzinfo=TZ)


def quiet_around_now(minutes: int = 60) -> tuple[str, str]:
    """Quiet hours from an hour ago to an hour from now, local time (may span midnight)."""
    now = timezone.localtime(timezone.now(), TZ)
    start = (now - timedelta(minutes=minutes)).strftime("%H:%M")
    end = (now + timedelta(minutes=minutes)).strftime("%H:%M")
    return start, end


def warn(user, key: str = "k1", **kwargs) -> Notification | None:
    kwargs.setdefault("severity", Severity.WARNING)
    return notify.notify(
        user, kind="test", title="Boil water", key=key, url="/alerts/1/", body="Details", **kwargs
    )


def deliveries(user, channel: str = "email"):
    return Delivery.objects.filter(notification__user=user, channel=channel)


def queued(backend) -> list:
    """What the alerts app enqueued (Wagtail enqueues its own tasks too)."""
    return [r for r in backend.results if r.task.func.__module__.startswith("alerts.")]


@pytest.fixture
def commit(django_capture_on_commit_callbacks):
    """Run on-commit callbacks (and the immediate tasks they enqueue) as a commit would."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def dummy_tasks(settings):
    """A task queue that records what is enqueued and runs nothing (and can defer)."""
    settings.TASKS = DUMMY_TASKS
    backend = task_backends["default"]
    backend.clear()
    return backend


# Preferences ----------------------------------------------------------------------------------


def test_defaults_for_someone_who_never_saved_preferences():
    prefs = Preferences.from_json({})
    assert prefs == Preferences()
    assert prefs.inapp_min == Severity.INFO
    assert prefs.email_enabled and prefs.email_min == Severity.WARNING and prefs.email_digest
    assert not prefs.sms_enabled and not prefs.push_enabled
    assert prefs.quiet_until(timezone.now()) is None

    now = timezone.now()
    for severity in (Severity.WARNING, Severity.EMERGENCY):
        plan = plan_for(prefs, severity, now=now)
        assert plan.inapp
        assert plan.deliveries == [("email", "pending", None)]
    for severity in (Severity.INFO, Severity.ADVISORY):
        plan = plan_for(prefs, severity, now=now)
        assert plan.inapp
        assert plan.deliveries == [("email", "digest", None)]


def test_saved_preferences_choose_channels_and_minimum_severities():
    prefs = Preferences.from_json(
        {
            "inapp": {"min_severity": "advisory"},
            "email": {"enabled": True, "min_severity": "emergency", "digest": "never"},
            "sms": {"enabled": True},
            "push": {"enabled": True},
        }
    )
    now = timezone.now()
    assert plan_for(prefs, Severity.INFO, now=now).empty
    advisory = plan_for(prefs, Severity.ADVISORY, now=now)
    assert advisory.inapp and advisory.deliveries == [("push", "pending", None)]
    emergency = plan_for(prefs, Severity.EMERGENCY, now=now)
    assert sorted(c for c, _, _ in emergency.deliveries) == ["email", "push", "sms"]


def test_unreadable_preferences_fall_back_to_defaults():
    prefs = Preferences.from_json(
        {"inapp": "loud", "email": {"min_severity": "purple"}, "quiet_hours": {"start": "25:99"}}
    )
    assert prefs == Preferences()


def test_email_switched_off_means_no_mail_at_all():
    user = VerifiedUserFactory()
    set_prefs(user, email_enabled=None)
    note = warn(user, severity=Severity.EMERGENCY)
    assert note is not None and note.read_at is None
    assert not Delivery.objects.exists()


def test_below_inapp_minimum_but_wanted_by_email_is_kept_as_read(commit):
    user = VerifiedUserFactory()
    set_prefs(user, inapp_min_severity="emergency", email_min_severity="warning")
    with commit():
        note = warn(user)
    assert note.read_at is not None  # not in the unread count, no live event
    assert not Event.objects.filter(topic=f"user:{user.pk}").exists()
    assert len(mail.outbox) == 1


def test_nothing_at_all_when_no_channel_wants_it():
    user = VerifiedUserFactory()
    set_prefs(user, inapp_min_severity="warning", email_digest="never")
    assert warn(user, severity=Severity.INFO) is None
    assert not Notification.objects.exists()


# Quiet hours ----------------------------------------------------------------------------------


def test_quiet_hours_within_one_day():
    prefs = Preferences.from_json({"quiet_hours": {"start": "13:00", "end": "15:30"}})
    assert prefs.quiet_until(local(2026, 6, 1, 12, 59)) is None
    assert prefs.quiet_until(local(2026, 6, 1, 13, 0)) == local(2026, 6, 1, 15, 30)
    assert prefs.quiet_until(local(2026, 6, 1, 15, 29)) == local(2026, 6, 1, 15, 30)
    assert prefs.quiet_until(local(2026, 6, 1, 15, 30)) is None


def test_quiet_hours_spanning_midnight_end_next_morning():
    prefs = Preferences.from_json({"quiet_hours": {"start": "22:00", "end": "07:00"}})
    assert prefs.quiet_until(local(2026, 6, 1, 21, 59)) is None
    assert prefs.quiet_until(local(2026, 6, 1, 23, 30)) == local(2026, 6, 2, 7, 0)
    assert prefs.quiet_until(local(2026, 6, 2, 6, 0)) == local(2026, 6, 2, 7, 0)
    assert prefs.quiet_until(local(2026, 6, 2, 7, 0)) is None
    # Given in UTC: 03:30 UTC is 23:30 in Philadelphia the evening before (EDT).
    utc = datetime(2026, 6, 2, 3, 30, tzinfo=ZoneInfo("UTC"))
    assert prefs.quiet_until(utc) == local(2026, 6, 2, 7, 0)


def test_only_emergencies_break_quiet_hours():
    prefs = Preferences.from_json(
        {"quiet_hours": {"start": "22:00", "end": "07:00"}, "sms": {"enabled": True}}
    )
    night = local(2026, 6, 1, 23, 0)
    warning = plan_for(prefs, Severity.WARNING, now=night)
    assert warning.deliveries == [("email", "pending", local(2026, 6, 2, 7, 0))]
    emergency = plan_for(prefs, Severity.EMERGENCY, now=night)
    assert emergency.deliveries == [("email", "pending", None), ("sms", "pending", None)]


def test_mail_held_in_quiet_hours_goes_out_when_they_end(commit, monkeypatch):
    user = VerifiedUserFactory()
    start, end = quiet_around_now()
    set_prefs(user, quiet_hours_start=start, quiet_hours_end=end)
    with commit():
        warn(user)
    delivery = deliveries(user).get()
    assert delivery.status == Delivery.Status.PENDING
    assert delivery.not_before > timezone.now()
    assert mail.outbox == []  # held, not dropped

    with commit():
        assert tasks.send_due_deliveries(now=timezone.now()) == 0
    assert mail.outbox == []
    later = delivery.not_before + timedelta(seconds=1)
    monkeypatch.setattr(timezone, "now", lambda: later)  # the worker's clock, too
    with commit():
        assert tasks.send_due_deliveries() == 1
    assert len(mail.outbox) == 1
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.SENT


def test_emergency_mail_goes_out_during_quiet_hours(commit):
    user = VerifiedUserFactory()
    start, end = quiet_around_now()
    set_prefs(user, quiet_hours_start=start, quiet_hours_end=end)
    with commit():
        warn(user, severity=Severity.EMERGENCY)
    assert len(mail.outbox) == 1
    assert deliveries(user).get().status == Delivery.Status.SENT


def test_held_mail_is_enqueued_for_the_end_of_quiet_hours_when_the_queue_can_defer(
    commit, dummy_tasks
):
    user = VerifiedUserFactory()
    start, end = quiet_around_now()
    set_prefs(user, quiet_hours_start=start, quiet_hours_end=end)
    with commit():
        warn(user)
    delivery = deliveries(user).get()
    [result] = queued(dummy_tasks)
    assert result.task.func.__name__ == "send_delivery_task"
    assert result.args == [delivery.pk]
    assert result.task.run_after == delivery.not_before


# Immediate and digest -------------------------------------------------------------------------


def test_immediate_mail_has_text_html_and_one_click_unsubscribe_headers(commit):
    user = VerifiedUserFactory()
    with commit():
        note = warn(user)
    [message] = mail.outbox
    assert message.to == [user.email]
    assert message.subject == "Warning: Boil water"
    assert "Details" in message.body and "/alerts/1/" in message.body
    [(html, mimetype)] = message.alternatives
    assert mimetype == "text/html" and "Boil water" in html
    assert message.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    header = message.extra_headers["List-Unsubscribe"]
    assert header.startswith("<http") and "/notifications/unsubscribe/" in header
    assert header.strip("<>") in message.body and header.strip("<>") in html
    delivery = note.deliveries.get()
    assert delivery.status == Delivery.Status.SENT and delivery.attempts == 1
    assert delivery.sent_at is not None


def test_lower_severity_waits_for_the_digest(commit):
    user = VerifiedUserFactory()
    with commit():
        warn(user, key="a", severity=Severity.INFO)
        warn(user, key="b", severity=Severity.ADVISORY)
    assert mail.outbox == []
    assert set(deliveries(user).values_list("status", flat=True)) == {Delivery.Status.DIGEST}


def test_digest_is_one_mail_per_person_and_never_sent_twice(commit):
    alice, bob = VerifiedUserFactory(), VerifiedUserFactory()
    with commit():
        warn(alice, key="a", severity=Severity.INFO)
        notify.notify(alice, kind="t", title="Street fair", key="b", severity=Severity.ADVISORY)
        warn(bob, key="a", severity=Severity.INFO)
    assert tasks.send_digests() == 2
    assert sorted(m.to[0] for m in mail.outbox) == sorted([alice.email, bob.email])
    alices = next(m for m in mail.outbox if m.to == [alice.email])
    assert "2 updates" in alices.subject
    assert "Boil water" in alices.body and "Street fair" in alices.body
    assert alices.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert set(Delivery.objects.values_list("status", flat=True)) == {Delivery.Status.SENT}

    assert tasks.send_digests() == 0
    call_command("send_digests", stdout=io.StringIO())
    assert len(mail.outbox) == 2


def test_digest_respects_a_later_opt_out(commit):
    user = VerifiedUserFactory()
    with commit():
        warn(user, severity=Severity.INFO)
    set_prefs(user, email_digest="never")
    assert tasks.send_digests() == 0
    assert mail.outbox == []
    delivery = deliveries(user).get()
    assert delivery.status == Delivery.Status.SKIPPED and delivery.last_error


def test_digest_failure_keeps_the_items_for_the_next_run(commit, settings):
    user = VerifiedUserFactory()
    with commit():
        warn(user, severity=Severity.INFO)
    settings.ENGAGEMENT = {"NOTIFICATION_BACKENDS": backends(email=f"{__name__}.FailingBackend")}
    assert tasks.send_digests() == 0
    delivery = deliveries(user).get()
    assert delivery.status == Delivery.Status.DIGEST
    assert delivery.attempts == 1 and "gateway timeout" in delivery.last_error
    settings.ENGAGEMENT = {}
    assert tasks.send_digests() == 1
    assert len(mail.outbox) == 1


def test_send_digests_command_reports_the_count(commit, capsys):
    user = VerifiedUserFactory()
    with commit():
        warn(user, severity=Severity.INFO)
    call_command("send_digests")
    assert "Sent 1 digest." in capsys.readouterr().out


# Retries and failures -------------------------------------------------------------------------


def test_temporary_failures_are_retried_with_backoff_then_fail(commit, settings):
    settings.ENGAGEMENT = {
        "NOTIFICATION_BACKENDS": backends(email=f"{__name__}.FailingBackend"),
        "NOTIFICATION_MAX_ATTEMPTS": 3,
        "NOTIFICATION_RETRY_SECONDS": 60,
    }
    FailingBackend.calls = 0
    user = VerifiedUserFactory()
    with commit():
        note = warn(user)  # the first attempt runs at once and fails; nothing is raised
    assert note is not None
    delivery = note.deliveries.get()
    assert delivery.status == Delivery.Status.PENDING
    assert delivery.attempts == 1 and "gateway timeout" in delivery.last_error
    first_retry = delivery.not_before
    assert first_retry - timezone.now() > timedelta(seconds=50)

    # Not due yet: nothing happens.
    assert tasks.send_delivery(delivery.pk, now=first_retry - timedelta(seconds=1)) == "pending"
    assert FailingBackend.calls == 1

    assert tasks.send_delivery(delivery.pk, now=first_retry) == "pending"
    delivery.refresh_from_db()
    assert delivery.attempts == 2
    assert delivery.not_before - first_retry == timedelta(seconds=120)  # doubled

    assert tasks.send_delivery(delivery.pk, now=delivery.not_before) == "failed"
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.FAILED and delivery.attempts == 3
    assert FailingBackend.calls == 3
    assert tasks.send_delivery(delivery.pk, now=delivery.not_before + timedelta(days=1)) == "failed"
    assert FailingBackend.calls == 3


def test_retry_is_reenqueued_with_run_after_when_the_queue_can_defer(settings, dummy_tasks):
    settings.ENGAGEMENT = {"NOTIFICATION_BACKENDS": backends(email=f"{__name__}.FailingBackend")}
    user = VerifiedUserFactory()
    note = warn(user)
    delivery = note.deliveries.get()
    dummy_tasks.clear()
    assert tasks.send_delivery(delivery.pk) == "pending"
    delivery.refresh_from_db()
    [result] = queued(dummy_tasks)
    assert result.args == [delivery.pk]
    assert result.task.run_after == delivery.not_before


def test_permanent_failure_is_not_retried(commit, settings):
    settings.ENGAGEMENT = {"NOTIFICATION_BACKENDS": backends(email=f"{__name__}.RefusingBackend")}
    user = VerifiedUserFactory()
    with commit():
        note = warn(user)
    delivery = note.deliveries.get()
    assert delivery.status == Delivery.Status.FAILED and delivery.attempts == 1
    assert delivery.last_error == "address refused"


def test_a_broken_backend_never_raises_into_the_request(commit, settings, client):
    settings.ENGAGEMENT = {"NOTIFICATION_BACKENDS": backends(email=f"{__name__}.BrokenBackend")}
    neighborhood = NeighborhoodFactory()
    member = MembershipFactory(neighborhood=neighborhood).user
    with commit():
        alert = official_notice(neighborhood)
    assert alert.pk
    delivery = deliveries(member).get()
    assert delivery.status == Delivery.Status.PENDING
    assert delivery.last_error == "RuntimeError: boom"


def test_a_sent_delivery_is_never_sent_twice(commit):
    user = VerifiedUserFactory()
    with commit():
        note = warn(user)
    delivery = note.deliveries.get()
    assert tasks.send_delivery(delivery.pk) == "sent"
    with commit():
        tasks.send_delivery_task.enqueue(delivery.pk)
        tasks.send_due_deliveries(now=timezone.now() + timedelta(hours=1))
    assert len(mail.outbox) == 1
    delivery.refresh_from_db()
    assert delivery.attempts == 1


def test_a_lost_task_is_picked_up_by_the_sweep(dummy_tasks, settings):
    user = VerifiedUserFactory()
    note = warn(user)  # on-commit callbacks never run here: the task is "lost"
    delivery = note.deliveries.get()
    assert queued(dummy_tasks) == []
    assert tasks.send_due_deliveries(now=timezone.now()) == 0  # too fresh to be lost
    assert tasks.send_due_deliveries(now=timezone.now() + timedelta(minutes=6)) == 1
    assert queued(dummy_tasks)[0].args == [delivery.pk]


# SMS and push --------------------------------------------------------------------------------


def test_sms_without_a_phone_number_is_skipped_with_a_reason(commit):
    user = VerifiedUserFactory()
    set_prefs(user, sms_enabled="on")
    with commit():
        warn(user, severity=Severity.EMERGENCY)
    sms = deliveries(user, "sms").get()
    assert sms.status == Delivery.Status.SKIPPED
    assert sms.last_error == "no phone number"
    assert not RecordedMessage.objects.exists()


def test_sms_and_push_are_recorded_by_the_recording_backend(commit, settings):
    settings.ENGAGEMENT = {
        "NOTIFICATION_BACKENDS": backends(
            sms=f"{__name__}.PhoneRecordingBackend", push=f"{__name__}.PhoneRecordingBackend"
        )
    }
    user = VerifiedUserFactory()
    set_prefs(user, sms_enabled="on", push_enabled="on")
    with commit():
        warn(user, key="e", severity=Severity.EMERGENCY)
        warn(user, key="w", severity=Severity.WARNING)  # push only: SMS is for emergencies
    sms = RecordedMessage.objects.get(channel="sms")
    assert sms.recipient == "+12155550100" and sms.user == user
    assert sms.body.startswith("EMERGENCY: Boil water") and "/alerts/1/" in sms.body
    pushes = RecordedMessage.objects.filter(channel="push")
    assert pushes.count() == 2
    assert pushes.first().data["title"] == "Boil water"
    assert set(Delivery.objects.exclude(channel="email").values_list("status", flat=True)) == {
        Delivery.Status.SENT
    }


# In-app and live events -----------------------------------------------------------------------


def test_notify_publishes_a_live_event_with_the_unread_count():
    user = VerifiedUserFactory()
    first = warn(user, key="a")
    second = warn(user, key="b")
    events = list(Event.objects.filter(topic=f"user:{user.pk}").order_by("id"))
    assert [e.type for e in events] == ["notification", "notification"]
    assert events[0].data["id"] == first.pk and events[0].data["unread"] == 1
    assert events[1].data["id"] == second.pk and events[1].data["unread"] == 2
    assert events[1].data["severity"] == "warning" and events[1].data["title"] == "Boil water"


def test_the_same_key_is_notified_once():
    user = VerifiedUserFactory()
    assert warn(user) is not None
    assert warn(user) is None
    assert Notification.objects.count() == 1
    assert Event.objects.filter(topic=f"user:{user.pk}").count() == 1


def test_notify_many_does_not_query_per_person():
    few = [VerifiedUserFactory() for _ in range(3)]
    many = [VerifiedUserFactory() for _ in range(30)]
    for user in many[:10]:
        set_prefs(user, sms_enabled="on")

    def count(users, key):
        with CaptureQueriesContext(connection) as queries:
            created = notify.notify_many(users, kind="t", title="Hi", key=key)
        assert len(created) == len(users)
        return len(queries)

    assert count(few, "few") == count(many, "many")
    assert Event.objects.filter(type="notification").count() == 33


def test_marking_read_publishes_the_new_count():
    user = VerifiedUserFactory()
    a, b = warn(user, key="a"), warn(user, key="b")
    assert notify.mark_read(user, [a.pk]) == 1
    event = Event.objects.filter(topic=f"user:{user.pk}").latest("id")
    assert event.type == "notification.read"
    assert event.data == {"ids": [a.pk], "unread": 1}
    assert notify.mark_read(user) == 1
    event = Event.objects.filter(topic=f"user:{user.pk}").latest("id")
    assert event.data == {"ids": "all", "unread": 0}
    assert notify.mark_read(user) == 0  # nothing changed, nothing published
    assert Event.objects.filter(type="notification.read").count() == 2
    b.refresh_from_db()
    assert b.read_at is not None


# Alerts ---------------------------------------------------------------------------------------


def test_official_notice_notifies_members_after_commit_only(commit):
    neighborhood = NeighborhoodFactory()
    members = [MembershipFactory(neighborhood=neighborhood).user for _ in range(3)]
    outsider = MembershipFactory().user
    staff = CityStaffFactory().user
    MembershipFactory(neighborhood=neighborhood, user=staff)
    with commit():
        alert = official_notice(neighborhood, staff=staff)
    notified = set(Notification.objects.filter(alert=alert).values_list("user_id", flat=True))
    assert notified == {m.pk for m in members}
    assert outsider.pk not in notified and staff.pk not in notified
    assert sorted(m.to[0] for m in mail.outbox) == sorted(m.email for m in members)
    note = Notification.objects.filter(alert=alert).first()
    assert note.kind == "alert.created" and note.url == alert.get_absolute_url()


def test_notify_alert_enqueues_one_task_and_does_no_fan_out_in_the_request(commit, dummy_tasks):
    neighborhood = NeighborhoodFactory()
    for _ in range(5):
        MembershipFactory(neighborhood=neighborhood)
    with commit():
        alert = official_notice(neighborhood)
    assert [(r.task.func.__name__, r.args) for r in queued(dummy_tasks)] == [
        ("notify_alert_task", [alert.pk, "created"])
    ]
    assert not Notification.objects.exists()
    # The worker then does the fan-out.
    assert notify.deliver_alert(alert.pk, "created") == 5


def test_nothing_is_notified_for_a_rolled_back_transaction(commit):
    neighborhood = NeighborhoodFactory()
    MembershipFactory(neighborhood=neighborhood)
    with commit():
        try:
            with transaction.atomic():
                official_notice(neighborhood)
                raise RuntimeError("rolled back")
        except RuntimeError:
            pass
    assert not Notification.objects.exists()
    assert mail.outbox == []


def test_resident_reports_notify_on_corroboration_and_verification_not_creation(commit):
    neighborhood = NeighborhoodFactory()
    member = MembershipFactory(neighborhood=neighborhood).user
    with commit():
        report = resident_report(neighborhood)
    assert not Notification.objects.exists()
    with commit():
        notify.notify_alert(report, "corroborated")
    note = Notification.objects.get(user=member)
    assert note.title.startswith("Corroborated: ")
    assert not Notification.objects.filter(user=report.author).exists()


def change(alert: Alert, **fields) -> Alert:
    """What ``edit_alert`` / ``retract_alert`` store: new fields and a new version."""
    Alert.objects.filter(pk=alert.pk).update(version=F("version") + 1, **fields)
    alert.refresh_from_db()
    return alert


def test_retraction_reaches_everyone_told_even_below_their_minimum(commit):
    neighborhood = NeighborhoodFactory()
    plain = MembershipFactory(neighborhood=neighborhood).user
    picky = MembershipFactory(neighborhood=neighborhood).user
    set_prefs(picky, inapp_min_severity="emergency", email_min_severity="emergency")
    staff = CityStaffFactory().user
    with commit():
        alert = official_notice(neighborhood, staff=staff, severity=Severity.EMERGENCY)
    late = MembershipFactory(neighborhood=neighborhood).user  # joined after: was never told
    assert len(mail.outbox) == 2

    with commit():
        alert = change(alert, severity=Severity.ADVISORY, status_note="Smaller area")
        notify.notify_alert(alert, "updated")
    # The update goes by preferences: the picky member does not get an advisory.
    assert Notification.objects.filter(user=picky, kind="alert.updated", read_at=None).count() == 0
    assert Notification.objects.filter(user=plain, kind="alert.updated").exists()

    mail.outbox.clear()
    with commit():
        alert = change(alert, status=Alert.Status.RETRACTED, status_note="Issued in error")
        notify.notify_alert(alert, "retracted")
    for person in (plain, picky):
        note = Notification.objects.get(user=person, kind="alert.retracted")
        assert note.read_at is None and note.body == "Issued in error"
        assert note.title == f"Retracted: {alert.title}"
    assert not Notification.objects.filter(user=late).exists()
    # Both were e-mailed the emergency, so both are e-mailed the retraction at once.
    assert sorted(m.to[0] for m in mail.outbox) == sorted([plain.email, picky.email])


# Unsubscribe ----------------------------------------------------------------------------------


def email_enabled(user) -> bool:
    return notify.preferences_for(user).email_enabled


def test_unsubscribe_link_asks_once_then_unsubscribes_and_offers_resubscribe(commit):
    user = VerifiedUserFactory()
    with commit():
        warn(user)
    path = urlparse(mail.outbox[0].extra_headers["List-Unsubscribe"].strip("<>")).path
    client = Client(enforce_csrf_checks=True)
    response = client.get(path)
    assert response.status_code == 200
    assert email_enabled(user), "a link scanner's GET must not unsubscribe anyone"
    assert 'type="submit">Unsubscribe</button>' in response.content.decode()
    response = client.post(path)  # the page's one button (no session needed)
    assert response.status_code == 200
    assert not email_enabled(user)
    page = response.content.decode()
    assert "You are unsubscribed" in page and "Resubscribe" in page
    token = path.rstrip("/").split("/")[-1]
    assert reverse("alerts:resubscribe", args=[token]) in page

    response = client.post(reverse("alerts:resubscribe", args=[token]))
    assert response.status_code == 403  # the resubscribe form is CSRF-protected
    client = Client()
    response = client.post(reverse("alerts:resubscribe", args=[token]))
    assert response.status_code == 200
    assert email_enabled(user)


def test_one_click_post_unsubscribes_without_csrf_or_login(client):
    user = VerifiedUserFactory()
    set_prefs(user, sms_enabled="on")
    token = notify.unsubscribe_token(user, "email")
    response = Client(enforce_csrf_checks=True).post(
        reverse("alerts:unsubscribe", args=[token]),
        data="List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200
    prefs = notify.preferences_for(user)
    assert not prefs.email_enabled
    assert prefs.sms_enabled and prefs.email_min == Severity.WARNING  # nothing else changed


def test_unsubscribed_person_gets_no_more_mail_even_if_already_queued(commit, dummy_tasks):
    user = VerifiedUserFactory()
    note = warn(user)
    notify.set_channel_enabled(user, "email", False)
    assert tasks.send_delivery(note.deliveries.get().pk) == "skipped"
    assert mail.outbox == []


@pytest.mark.parametrize("method", ["get", "post"])
def test_tampered_unsubscribe_token_gets_a_clear_400(method):
    user = VerifiedUserFactory()
    token = notify.unsubscribe_token(user, "email")
    bad = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    response = getattr(Client(), method)(reverse("alerts:unsubscribe", args=[bad]))
    assert response.status_code == 400
    assert "not valid" in response.content.decode()
    assert email_enabled(user)


def test_a_token_signed_for_another_purpose_is_refused():
    from django.core import signing

    user = VerifiedUserFactory()
    other = signing.dumps({"u": user.pk, "c": "email"}, salt="some.other.purpose")
    assert Client().get(reverse("alerts:unsubscribe", args=[other])).status_code == 400


# The inbox page -------------------------------------------------------------------------------


def test_inbox_requires_sign_in(client):
    response = client.get(reverse("alerts:inbox"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))
    response = client.post(reverse("alerts:read_all"))
    assert response.status_code == 302 and "login" in response["Location"]


def test_inbox_lists_only_ones_own_notifications_newest_first(client):
    me, other = VerifiedUserFactory(), VerifiedUserFactory()
    warn(me, key="old")
    Notification.objects.filter(user=me).update(created_at=timezone.now() - timedelta(hours=1))
    notify.notify(me, kind="t", title="Newest thing", key="new")
    notify.notify(other, kind="t", title="Someone else's secret", key="x")
    client.force_login(me)
    response = client.get(reverse("alerts:inbox"))
    page = response.content.decode()
    assert response.status_code == 200
    assert "Someone else" not in page
    assert page.index("Newest thing") < page.index("Boil water")
    assert "Mark all read" in page and "Mark read" in page
    assert reverse("neighborhoods:profile") in page
    assert 'class="item-row notification unread"' in page


def test_mark_read_only_own_and_only_by_post(client):
    me, other = VerifiedUserFactory(), VerifiedUserFactory()
    mine, theirs = warn(me), warn(other)
    client.force_login(me)
    assert client.get(reverse("alerts:read", args=[mine.pk])).status_code == 405
    assert client.post(reverse("alerts:read", args=[theirs.pk])).status_code == 404
    theirs.refresh_from_db()
    assert theirs.read_at is None
    response = client.post(reverse("alerts:read", args=[mine.pk]), {"next": "/notifications/"})
    assert response.status_code == 302 and response["Location"] == "/notifications/"
    mine.refresh_from_db()
    assert mine.read_at is not None
    response = client.post(reverse("alerts:read", args=[mine.pk]), {"next": "https://evil.test/"})
    assert response["Location"] == reverse("alerts:inbox")


def test_mark_all_read_touches_only_ones_own(client):
    me, other = VerifiedUserFactory(), VerifiedUserFactory()
    warn(me, key="a"), warn(me, key="b"), warn(other)
    client.force_login(me)
    response = client.post(reverse("alerts:read_all"), follow=True)
    assert response.status_code == 200
    assert not Notification.objects.filter(user=me, read_at=None).exists()
    assert Notification.objects.filter(user=other, read_at=None).count() == 1


def test_inbox_forms_are_csrf_protected():
    me = VerifiedUserFactory()
    note = warn(me)
    client = Client(enforce_csrf_checks=True)
    client.force_login(me)
    assert client.post(reverse("alerts:read_all")).status_code == 403
    assert client.post(reverse("alerts:read", args=[note.pk])).status_code == 403
    note.refresh_from_db()
    assert note.read_at is None


def test_inbox_query_count_stays_constant_and_pages(client):
    me = VerifiedUserFactory()
    client.force_login(me)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(reverse("alerts:inbox")).status_code == 200
        return len(captured)

    notify.notify_many([me], kind="t", title="First", key="first")
    few = queries()
    for i in range(40):
        notify.notify(me, kind="t", title=f"Item {i}", key=f"item-{i}")
    assert queries() == few
    page2 = client.get(reverse("alerts:inbox") + "?page=2").content.decode()
    assert "Page 2 of 2" in page2 and "First" in page2


# The badge tag --------------------------------------------------------------------------------


def render_badge(user) -> tuple[str, int]:
    request = RequestFactory().get("/")
    request.user = user
    template = Template("{% load engagement_live %}{% unread_badge %}")
    with CaptureQueriesContext(connection) as captured:
        html = template.render(Context({"request": request, "user": user}))
    return html, len(captured)


def test_unread_badge_shows_the_count_in_one_query():
    from django.contrib.auth.models import AnonymousUser

    me = VerifiedUserFactory()
    warn(me, key="a"), warn(me, key="b")
    html, count = render_badge(me)
    assert count == 1
    assert f'href="{reverse("alerts:inbox")}"' in html
    assert 'data-unread-badge data-count="2">2</span>' in html

    notify.mark_read(me)
    html, _ = render_badge(me)
    assert 'data-count="0" hidden>0</span>' in html

    html, count = render_badge(AnonymousUser())
    assert html.strip() == "" and count == 0


# Periodic jobs --------------------------------------------------------------------------------


def test_run_periodic_once_enqueues_every_job_and_tolerates_missing_ingestion(
    dummy_tasks, monkeypatch, capsys
):
    from alerts.management.commands import run_periodic

    monkeypatch.setattr(run_periodic, "ingest_task", lambda: None)
    call_command("run_periodic", "--once")
    names = sorted(r.task.func.__name__ for r in queued(dummy_tasks))
    assert names == [
        "expire_alerts_task",
        "prune_events_task",
        "send_digests_task",
        "send_due_deliveries_task",
    ]
    assert "Enqueued:" in capsys.readouterr().out


def test_run_periodic_enqueues_the_real_feed_ingestion(dummy_tasks):
    from alerts.ingest import ingest_alert_feeds

    call_command("run_periodic", "--once", "--no-digests", stdout=io.StringIO())
    names = [r.task.func.__name__ for r in queued(dummy_tasks)]
    assert ingest_alert_feeds.func.__name__ in names
    assert "send_digests_task" not in names


def test_run_periodic_jobs_really_run(commit, capsys):
    user = VerifiedUserFactory()
    with commit():
        warn(user, severity=Severity.INFO)
    from alerts.management.commands import run_periodic

    original = run_periodic.ingest_task
    run_periodic.ingest_task = lambda: None
    try:
        call_command("run_periodic", "--once")
    finally:
        run_periodic.ingest_task = original
    assert len(mail.outbox) == 1  # the digest went out through the immediate queue


def test_digest_is_due_from_the_digest_hour_local_time(settings):
    settings.ENGAGEMENT = {"DIGEST_HOUR": 7}
    assert not tasks.digest_due(local(2026, 6, 1, 6, 59))
    assert tasks.digest_due(local(2026, 6, 1, 7, 0))
