"""Forms of the moderation screens in the Wagtail admin.

They only collect what a moderator chose; the rules (who may, which reasons are required, how
many days) live in :mod:`forums.services`, whose ``ValidationError`` lands on these forms through
:func:`neighborhoods.admin_actions.add_service_errors`.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.urls import Resolver404, resolve

from neighborhoods.models import Neighborhood

from . import services
from .models import Thread

# The URL namespace of the moderation queue's admin pages (its thread pages name threads too).
QUEUE_NAMESPACE = "forum_moderation"
REASON_HELP = "Goes into the moderation log; the author is told when content is hidden."


def reason_field(action: str, *, label: str = "Reason") -> forms.CharField:
    """A reason, required exactly where the services require one for ``action``."""
    return forms.CharField(
        label=label,
        required=action in services.REASON_REQUIRED,
        max_length=500,
        help_text=REASON_HELP,
        widget=forms.Textarea(attrs={"rows": 2}),
    )


class DecisionForm(forms.Form):
    """One of the actions that need nothing but a reason (the button pressed names it)."""

    THREAD_ACTIONS = ("approve", "hide", "delete", "lock", "unlock", "pin", "unpin")
    REPLY_ACTIONS = ("approve", "hide", "delete")

    action = forms.ChoiceField(choices=[])
    reason = forms.CharField(
        label="Reason",
        required=False,
        max_length=500,
        help_text="Required to hide, delete or lock. " + REASON_HELP,
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def __init__(self, *args, kind: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        actions = self.THREAD_ACTIONS if kind == "thread" else self.REPLY_ACTIONS
        self.fields["action"].choices = [(action, action) for action in actions]


class MoveForm(forms.Form):
    neighborhood = forms.ModelChoiceField(
        label="Move to", queryset=Neighborhood.objects.none(), empty_label="Choose…"
    )
    reason = reason_field("move")

    def __init__(self, *args, neighborhoods: QuerySet[Neighborhood], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["neighborhood"].queryset = neighborhoods


def thread_id_from(text: str) -> int | None:
    """The thread a moderator means by ``text``: ``123``, ``#123`` or the thread's address."""
    text = (text or "").strip()
    if text.lstrip("#").isdigit():
        return int(text.lstrip("#"))
    path = urlsplit(text).path
    if not path:
        return None
    try:
        match = resolve(path if path.endswith("/") else path + "/")
    except Resolver404:
        return None
    public = match.namespace == "forums"
    admin = match.namespace == QUEUE_NAMESPACE and (match.url_name or "").startswith("thread")
    pk = match.kwargs.get("pk")
    return int(pk) if (public or admin) and pk is not None else None


class MergeForm(forms.Form):
    original = forms.CharField(
        label="Merge into thread",
        max_length=500,
        help_text="The original thread's number or its address. Votes, followers and replies "
        "move there; this thread's address leads to it.",
    )
    reason = reason_field("merge")

    def clean_original(self) -> Thread:
        pk = thread_id_from(self.cleaned_data["original"])
        if pk is None:
            raise ValidationError("Give the thread's number or paste its address.")
        thread = Thread.objects.select_related("neighborhood").filter(pk=pk).first()
        if thread is None:
            raise ValidationError(f"There is no thread number {pk}.")
        return thread


class SuspendForm(forms.Form):
    days = forms.IntegerField(label="Days", min_value=1, max_value=3650, initial=7)
    reason = reason_field("suspend")


class LiftForm(forms.Form):
    reason = forms.CharField(label="Reason", required=False, max_length=500)
