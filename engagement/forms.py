"""Forms of the 311 pages. They only type the input; the rules live in ``services``.

Every form works without JavaScript: the map fills the latitude and longitude inputs (people may
also type them, or give an address), and the questions of a service type are rendered by the
server for the type chosen.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping

from django import forms
from django.utils.datastructures import MultiValueDict

from forums.forms import HoneypotMixin, MultipleFileInput
from neighborhoods.models import Neighborhood

from .conf import app_settings
from .models import Case, ServiceQuestion, ServiceType

QUESTION_PREFIX = "q_"
STATUS_FILTERS = [("", "Any status"), ("open", "Open (not closed)"), *Case.Status.choices]
SATISFACTION_CHOICES = [
    ("5", "5 — very happy"),
    ("4", "4"),
    ("3", "3"),
    ("2", "2"),
    ("1", "1 — very unhappy"),
]


def active_service_types() -> list[ServiceType]:
    return list(
        ServiceType.objects.filter(is_active=True)
        .select_related("department")
        .order_by("group", "sort_order", "name")
    )


def grouped_type_choices(types: list[ServiceType]) -> list:
    """``[(group, [(code, name), …]), …]`` for a ``<select>`` with ``<optgroup>``s."""
    groups: dict[str, list[tuple[str, str]]] = {}
    for kind in types:
        groups.setdefault(kind.group or "Other", []).append((kind.code, kind.name))
    return [("", "Choose the kind of problem"), *groups.items()]


class ServiceTypeField(forms.ChoiceField):
    """A service type chosen by its code, among the active ones, grouped."""

    def __init__(self, *, types: list[ServiceType], **kwargs):
        self.types = {kind.code: kind for kind in types}
        kwargs.setdefault("label", "What is the problem?")
        super().__init__(choices=grouped_type_choices(types), **kwargs)

    def clean(self, value):
        code = super().clean(value)
        return self.types.get(code)


def question_field(question: ServiceQuestion) -> forms.Field:
    """The form field of one question. Answers are checked by ``services.clean_answers``, which
    reports every problem at once; ``required`` only marks the field for people and browsers."""
    Datatype = ServiceQuestion.Datatype
    attrs = {"required": True} if question.required else {}
    common = {
        "label": f"{question.prompt} (required)" if question.required else question.prompt,
        "required": False,
        "help_text": question.datatype_description,
    }
    datatype = question.datatype
    if datatype == Datatype.MULTI:
        return forms.MultipleChoiceField(
            choices=question.value_list(),
            widget=forms.CheckboxSelectMultiple,
            **common,
        )
    if datatype == Datatype.SINGLE:
        choices = question.value_list()
        if len(choices) <= 6:
            return forms.ChoiceField(
                choices=choices, widget=forms.RadioSelect(attrs=attrs), **common
            )
        return forms.ChoiceField(
            choices=[("", "Choose one"), *choices], widget=forms.Select(attrs=attrs), **common
        )
    if datatype == Datatype.TEXT:
        return forms.CharField(
            max_length=4000, widget=forms.Textarea(attrs={"rows": 3, **attrs}), **common
        )
    if datatype == Datatype.NUMBER:
        return forms.CharField(
            max_length=40,
            widget=forms.TextInput(attrs={"inputmode": "decimal", **attrs}),
            **common,
        )
    if datatype == Datatype.DATETIME:
        return forms.CharField(
            max_length=40,
            widget=forms.DateTimeInput(attrs={"type": "datetime-local", **attrs}),
            **common,
        )
    return forms.CharField(max_length=300, widget=forms.TextInput(attrs=attrs), **common)


class CaseForm(forms.Form):
    """What every channel asks: the type, its questions, where, and what is wrong.

    ``service_type`` (the chosen type, or ``None``) decides which questions are fields:
    ``q_<code>`` for each answerable question; the others are shown as text (``notes``).
    """

    description = forms.CharField(
        label="Describe the problem",
        required=False,
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 5, "required": True}),
        help_text="What is wrong, and anything that helps the crew find it.",
    )
    address = forms.CharField(
        label="Address or nearest corner",
        required=False,
        max_length=250,
        widget=forms.TextInput(attrs={"autocomplete": "street-address"}),
        help_text="If you cannot place a pin, e.g. “5th and Pine”.",
    )
    lat = forms.FloatField(
        label="Latitude",
        required=False,
        widget=forms.NumberInput(attrs={"step": "any", "inputmode": "decimal"}),
    )
    lon = forms.FloatField(
        label="Longitude",
        required=False,
        widget=forms.NumberInput(attrs={"step": "any", "inputmode": "decimal"}),
    )
    idempotency_key = forms.CharField(required=False, max_length=64, widget=forms.HiddenInput)

    def __init__(self, *args, service_type: ServiceType | None = None, types=None, **kwargs):
        kwargs.setdefault("initial", {})
        kwargs["initial"].setdefault("idempotency_key", uuid.uuid4().hex)
        super().__init__(*args, **kwargs)
        types = active_service_types() if types is None else types
        self.fields = {
            "service_type": ServiceTypeField(types=types, required=False),
            **self.fields,
        }
        self.service_type = service_type
        self.questions: list[ServiceQuestion] = []
        self.notes: list[ServiceQuestion] = []
        if service_type is not None:
            self.initial.setdefault("service_type", service_type.code)
            for question in service_type.questions.order_by("sort_order", "id"):
                if question.variable:
                    self.questions.append(question)
                    self.fields[QUESTION_PREFIX + question.code] = question_field(question)
                else:
                    self.notes.append(question)

    def question_fields(self) -> list[forms.BoundField]:
        return [self[QUESTION_PREFIX + q.code] for q in self.questions]

    def answers(self) -> dict:
        """The answers given, keyed by question code (empty ones left out)."""
        out = {}
        for question in self.questions:
            value = self.cleaned_data.get(QUESTION_PREFIX + question.code)
            if value not in (None, "", []):
                out[question.code] = value
        return out

    def field_for(self, name: str) -> str | None:
        """The form field a service error about ``name`` belongs to (``None``: the form)."""
        if name.startswith("answers."):
            name = QUESTION_PREFIX + name.removeprefix("answers.")
        name = {"location": "lat", "contact": "contact_phone"}.get(name, name)
        return name if name in self.fields else None


class PhotosField(forms.FileField):
    """Several photos from one input; each is checked and re-encoded by the service."""

    widget = MultipleFileInput

    def clean(self, data, initial=None):
        files = data if isinstance(data, list | tuple) else ([data] if data else [])
        files = [super(PhotosField, self).clean(f, initial) for f in files if f]
        if len(files) > app_settings.CASE_MAX_PHOTOS:
            raise forms.ValidationError(f"Add at most {app_settings.CASE_MAX_PHOTOS} photos.")
        return files


def _photos_field() -> PhotosField:
    return PhotosField(
        required=False,
        label="Photos",
        widget=MultipleFileInput(attrs={"accept": "image/jpeg,image/png,image/webp"}),
        help_text=f"Optional: up to {app_settings.CASE_MAX_PHOTOS} photos (JPEG, PNG or WebP). "
        "Location data in the files is removed.",
    )


class ReportForm(HoneypotMixin, CaseForm):
    """A resident's direct report."""

    photos = _photos_field()

    def clean(self):
        data = super().clean()
        if data.get("website"):
            # Only robots fill the hidden field; answer as for any invalid form.
            raise forms.ValidationError("The form could not be accepted. Please try again.")
        return data


class ContactMixin(forms.Form):
    contact_name = forms.CharField(
        label="Name",
        required=False,
        max_length=120,
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    contact_phone = forms.CharField(
        label="Phone",
        required=False,
        max_length=40,
        widget=forms.TextInput(attrs={"type": "tel", "inputmode": "tel", "autocomplete": "off"}),
    )
    contact_email = forms.EmailField(
        label="E-mail", required=False, widget=forms.EmailInput(attrs={"autocomplete": "off"})
    )


class PhoneForm(ContactMixin, CaseForm):
    """A call taker records a caller's request."""

    photos = _photos_field()


class OnBehalfForm(ContactMixin, CaseForm):
    """A neighborhood liaison files for a neighbour who is offline."""

    photos = _photos_field()


class EscalationForm(CaseForm):
    """A thread becomes a case: its photos come along, its pin and text prefill the form."""


def initial_from(data: Mapping, form_class: type[forms.Form], extra: list[str] = ()) -> dict:
    """Initial values for re-rendering a form from submitted data, without validating it
    (changing the type or checking nearby requests must not show errors)."""
    initial = {}
    names = set(form_class.base_fields) | {"service_type", *extra}
    for name in data:
        if name.startswith(QUESTION_PREFIX) or name in names:
            if isinstance(data, MultiValueDict) and len(data.getlist(name)) > 1:
                initial[name] = data.getlist(name)
            else:
                initial[name] = data.get(name)
    initial.pop("photos", None)
    initial.pop("website", None)
    return initial


class TrackerFilterForm(forms.Form):
    status = forms.ChoiceField(required=False, choices=STATUS_FILTERS)
    type = forms.ChoiceField(required=False, label="Type")
    neighborhood = forms.ChoiceField(required=False)
    overdue = forms.BooleanField(required=False, label="Overdue only")

    def __init__(self, *args, types: list[ServiceType], neighborhoods: list, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["type"].choices = [("", "Any type")] + [(t.code, t.name) for t in types]
        self.fields["neighborhood"].choices = [("", "Whole city")] + [
            (slug, name) for slug, name in neighborhoods
        ]

    def filters(self) -> dict:
        """Keyword arguments of ``services.filter_cases`` (invalid choices ignored)."""
        self.is_valid()
        data = getattr(self, "cleaned_data", {})
        return {
            "status": data.get("status") or "",
            "service_code": data.get("type") or "",
            "neighborhood": data.get("neighborhood") or "",
            "overdue": bool(data.get("overdue")),
        }


def neighborhood_choices() -> list[tuple[str, str]]:
    return list(Neighborhood.objects.order_by("name").values_list("slug", "name"))


class ReopenForm(forms.Form):
    """On a request's page beside the survey: its own ids."""

    comment = forms.CharField(
        label="What is still wrong?",
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    photo = forms.ImageField(
        required=False,
        label="Photo (optional)",
        widget=forms.ClearableFileInput(attrs={"accept": "image/jpeg,image/png,image/webp"}),
    )

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("auto_id", "reopen_%s")
        super().__init__(*args, **kwargs)


class SurveyForm(forms.Form):
    fixed = forms.TypedChoiceField(
        label="Was the problem fixed?",
        choices=[("yes", "Yes"), ("no", "No")],
        coerce=lambda value: value == "yes",
        widget=forms.RadioSelect,
    )
    satisfaction = forms.TypedChoiceField(
        label="How satisfied are you with how the city handled it?",
        choices=SATISFACTION_CHOICES,
        coerce=int,
        widget=forms.RadioSelect,
    )
    comment = forms.CharField(
        label="Anything else? (optional)",
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("auto_id", "survey_%s")
        super().__init__(*args, **kwargs)


class StatusForm(forms.Form):
    """Staff move a case along from its page (the case desk has the full set of tools)."""

    status = forms.ChoiceField(choices=Case.Status.choices, label="New status")
    resolution = forms.ChoiceField(
        required=False,
        choices=[("", "Choose (when closing)"), *Case.Resolution.choices],
        label="Resolution",
    )
    duplicate_of = forms.CharField(
        required=False, max_length=16, label="Duplicate of (tracking number)"
    )
    responsible_party = forms.CharField(
        required=False, max_length=200, label="Whose responsibility (when not the city's)"
    )
    scheduled_for = forms.DateField(
        required=False,
        label="Scheduled for",
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    note = forms.CharField(
        required=False,
        max_length=4000,
        label="Note",
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    public = forms.BooleanField(
        required=False, initial=True, label="Public (residents see the status and the note)"
    )

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("auto_id", "status_%s")
        super().__init__(*args, **kwargs)
