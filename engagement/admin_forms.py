"""Forms of the city's screens in the Wagtail admin: the service catalogue, the case desk's actions,
the field and call-taker forms, and Open311 keys.

They type what staff chose; the rules (who may, what a closing needs, which answers are valid)
live in :mod:`engagement.services`, whose ``ValidationError`` lands on these forms through
:func:`add_service_errors`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from wagtail.admin.forms import WagtailAdminModelForm
from wagtail.admin.panels import InlinePanel, get_form_for_model

from neighborhoods.admin_actions import add_service_errors as _add_errors
from neighborhoods.models import Department

from . import services
from .metrics import DEFAULT_PERIOD_DAYS
from .models import CODE_VALIDATOR, Case, Open311Key, ServiceQuestion, ServiceType

# URL namespaces of the case desk's admin screens.
DESK_NAMESPACE = "case_desk"
FIELD_NAMESPACE = "case_field_form"
CALL_NAMESPACE = "case_call"
HISTORY_NAMESPACE = "case_location_history"
METRICS_NAMESPACE = "case_metrics"
AUDIT_NAMESPACE = "case_audit"

ANSWER_PREFIX = "answer_"
Status = Case.Status
Datatype = ServiceQuestion.Datatype


def add_service_errors(form: forms.Form, exc: ValidationError) -> None:
    """Put a service's ``ValidationError`` on the form; ``answers.<code>`` lands on the answer's
    field and ``location``/``contact`` on the form's first matching field."""
    if hasattr(exc, "error_dict"):
        aliases = {
            "location": ("lat", "address"),
            "contact": ("contact_phone", "contact_email"),
            "original": ("original",),
            "duplicate": ("original",),
        }
        renamed: dict[str, list[str]] = {}
        for field, messages in exc.message_dict.items():
            if field.startswith("answers."):
                field = ANSWER_PREFIX + field.removeprefix("answers.")
            for alias in aliases.get(field, ()):
                if alias in form.fields:
                    field = alias
                    break
            renamed.setdefault(field, []).extend(messages)
        exc = ValidationError(renamed)
    _add_errors(form, exc)


# The service catalogue --------------------------------------------------------------------------


def parse_values(text: str) -> list[tuple[str, str]]:
    """The ``key|name`` lines of a list question, checked: keys given, valid and unique."""
    choices: list[tuple[str, str]] = []
    errors: list[str] = []
    seen: set[str] = set()
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        key, bar, name = line.partition("|")
        key, name = key.strip(), name.strip()
        if not key:
            errors.append(f"Line {number}: start with a key, then | and the label.")
            continue
        try:
            CODE_VALIDATOR(key)
        except ValidationError:
            errors.append(
                f"Line {number}: the key “{key[:40]}” may use letters, digits, dots, dashes and "
                "underscores (up to 40)."
            )
            continue
        if key in seen:
            errors.append(f"Line {number}: the key “{key}” is used twice.")
        seen.add(key)
        choices.append((key, name or key))
    if errors:
        raise ValidationError(errors)
    return choices


class ServiceQuestionForm(WagtailAdminModelForm):
    """One question of a service type: list questions need choices; only they have choices."""

    def clean(self) -> dict:
        cleaned = super().clean()
        datatype = cleaned.get("datatype")
        values = cleaned.get("values", "")
        try:
            choices = parse_values(values)
        except ValidationError as exc:
            self.add_error("values", exc)
            return cleaned
        if datatype in (Datatype.SINGLE, Datatype.MULTI) and not choices:
            self.add_error("values", "List the choices, one per line as key|label.")
        elif datatype and datatype not in (Datatype.SINGLE, Datatype.MULTI) and choices:
            self.add_error(
                "values", "Only pick-one and pick-several questions have choices; clear this."
            )
        if cleaned.get("required") and cleaned.get("variable") is False:
            self.add_error("required", "A question that is only shown cannot be required.")
        return cleaned


class QuestionsPanel(InlinePanel):
    """The questions of a service type, each form checked by :class:`ServiceQuestionForm`."""

    def get_form_options(self) -> dict:
        options = super().get_form_options()
        child_options = self.child_edit_handler.get_form_options()
        options["formsets"][self.relation_name]["form"] = get_form_for_model(
            self.db_field.related_model,
            form_class=ServiceQuestionForm,
            defer_required_on_fields=child_options.get("defer_required_on_fields", []),
        )
        return options


class ServiceTypeForm(WagtailAdminModelForm):
    """A service type with its questions: question codes are unique within the type."""

    def clean(self) -> dict:
        cleaned = super().clean()
        formset = self.formsets.get("questions")
        if formset is None:
            return cleaned
        seen: set[str] = set()
        for form in formset.forms:
            if not form.is_valid() or formset._should_delete_form(form):
                continue
            code = form.cleaned_data.get("code")
            if not code:
                continue
            if code in seen:
                form.add_error("code", f"Another question of this type has the code “{code}”.")
            seen.add(code)
        return cleaned


# Open311 keys -----------------------------------------------------------------------------------


class Open311KeyCreateForm(forms.ModelForm):
    class Meta:
        model = Open311Key
        fields = ["name", "requests_per_minute"]
        help_texts = {
            "name": "Who uses it, e.g. the city's 311 app. The key itself is shown once, after "
            "saving.",
        }


class Open311KeyEditForm(forms.ModelForm):
    class Meta:
        model = Open311Key
        fields = ["name", "requests_per_minute", "is_active"]
        labels = {"is_active": "Active"}
        help_texts = {"is_active": "Untick to revoke the key: requests with it fail at once."}


# The case desk ----------------------------------------------------------------------------------


def _note_field(label: str = "Note", *, required: bool = False) -> forms.CharField:
    return forms.CharField(
        label=label,
        required=required,
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )


def _public_field() -> forms.BooleanField:
    return forms.BooleanField(
        label="Public",
        required=False,
        initial=True,
        help_text="Public notes reach the reporter, supporters and the case page; untick for an "
        "internal note that only staff see.",
    )


class StatusForm(forms.Form):
    """A status change: closing needs a resolution, scheduling a date (the services check)."""

    status = forms.ChoiceField(label="New status", choices=[("", "Choose…"), *Status.choices])
    note = _note_field()
    public = _public_field()
    resolution = forms.ChoiceField(
        label="Resolution (when closing)",
        required=False,
        choices=[("", "—")] + list(Case.Resolution.choices),
    )
    duplicate_of = forms.CharField(
        label="Duplicate of (tracking number)",
        required=False,
        max_length=16,
        help_text="With the resolution “Duplicate”. To carry supporters over, merge instead.",
    )
    responsible_party = forms.CharField(
        label="Whose responsibility",
        required=False,
        max_length=200,
        help_text="With the resolution “Not the city's responsibility”.",
    )
    scheduled_for = forms.DateField(
        label="Scheduled for",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="With the status “Scheduled”.",
    )

    def service_kwargs(self) -> dict:
        data = self.cleaned_data
        return {
            "status": data["status"],
            "note": data["note"],
            "public": data["public"],
            "resolution": data["resolution"],
            "duplicate_of": data["duplicate_of"].strip() or None,
            "responsible_party": data["responsible_party"],
            "scheduled_for": data["scheduled_for"],
        }


class BulkStatusForm(StatusForm):
    """The same change for several cases of the desk (each goes through the services)."""

    cases = forms.ModelMultipleChoiceField(queryset=Case.objects.none())

    def __init__(self, *args, cases: QuerySet[Case], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["cases"].queryset = cases
        self.fields["cases"].error_messages["required"] = "Select at least one case."


class NoteForm(forms.Form):
    text = _note_field("Note", required=True)
    public = _public_field()


class PersonChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj) -> str:
        return staff_label(obj)


def staff_label(user) -> str:
    """How the desk names a member of staff (their name, else their account name)."""
    if user is None:
        return "—"
    return user.get_full_name() or user.get_username()


class AssignForm(forms.Form):
    assignee = PersonChoiceField(
        label="Assign to",
        queryset=Case.objects.none(),
        required=False,
        empty_label="Nobody (unassign)",
    )
    reason = forms.CharField(label="Why (optional)", required=False, max_length=500)

    def __init__(self, *args, people: QuerySet, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["assignee"].queryset = people


class MergeForm(forms.Form):
    original = forms.CharField(
        label="Merge into case",
        max_length=16,
        help_text="The tracking number of the original case. Supporters, followers, threads and "
        "photos move there; this case is closed as its duplicate.",
    )
    reason = forms.CharField(
        label="Reason",
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Goes into the audit log.",
    )

    def clean_original(self) -> Case:
        number = self.cleaned_data["original"].strip()
        case = services.find_case(number)
        if case is None:
            raise ValidationError(f"There is no case {number[:16]}.")
        return case


def _decimal() -> forms.NumberInput:
    return forms.NumberInput(attrs={"step": "any", "inputmode": "decimal"})


class LocationForm(forms.Form):
    lat = forms.FloatField(label="Latitude", min_value=-90, max_value=90, widget=_decimal())
    lon = forms.FloatField(label="Longitude", min_value=-180, max_value=180, widget=_decimal())
    radius = forms.IntegerField(
        label="Within (metres)", min_value=5, max_value=2000, initial=100, required=False
    )


# Filing from the desk: in the field and for a caller --------------------------------------------


def _answer_field(question: ServiceQuestion) -> forms.Field:
    common = {
        "label": question.prompt,
        "required": question.required,
        "error_messages": {"required": f"Answer “{question.prompt}”."},
    }
    if question.datatype_description:
        common["help_text"] = question.datatype_description
    if question.datatype == Datatype.SINGLE:
        # A required question offers its answers only; an optional one also "No answer".
        blank = [] if question.required else [("", "No answer")]
        return forms.ChoiceField(
            choices=blank + question.value_list(), widget=forms.RadioSelect, **common
        )
    if question.datatype == Datatype.MULTI:
        return forms.MultipleChoiceField(
            choices=question.value_list(), widget=forms.CheckboxSelectMultiple, **common
        )
    if question.datatype == Datatype.NUMBER:
        return forms.CharField(
            max_length=40, widget=forms.TextInput(attrs={"inputmode": "decimal"}), **common
        )
    if question.datatype == Datatype.DATETIME:
        return forms.DateTimeField(
            widget=forms.DateTimeInput(attrs={"type": "datetime-local"}), **common
        )
    if question.datatype == Datatype.TEXT:
        return forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), **common)
    return forms.CharField(max_length=300, **common)


class FilingForm(forms.Form):
    """A case filed from the desk for one service type: where, what, a photo and the type's
    questions. A hidden key makes a double submission file one case."""

    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=100)
    lat = forms.FloatField(label="Latitude", required=False, widget=_decimal())
    lon = forms.FloatField(label="Longitude", required=False, widget=_decimal())
    address = forms.CharField(label="Address or landmark", required=False, max_length=250)
    description = forms.CharField(
        label="What is the problem?", max_length=4000, widget=forms.Textarea(attrs={"rows": 4})
    )
    photo = forms.ImageField(label="Photo", required=False)

    def __init__(self, *args, service_type: ServiceType, **kwargs) -> None:
        kwargs.setdefault("initial", {}).setdefault("idempotency_key", uuid.uuid4().hex)
        super().__init__(*args, **kwargs)
        self.service_type = service_type
        self.questions = services.questions_of(service_type)
        for question in self.questions:
            if question.variable:
                self.fields[ANSWER_PREFIX + question.code] = _answer_field(question)

    @property
    def answer_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.fields if name.startswith(ANSWER_PREFIX)]

    @property
    def shown_texts(self) -> list[str]:
        """Questions that are only shown, never answered."""
        return [q.prompt for q in self.questions if not q.variable]

    def answers(self) -> dict:
        answers = {}
        for question in self.questions:
            value = self.cleaned_data.get(ANSWER_PREFIX + question.code)
            if value in (None, "", []):
                continue
            if isinstance(value, datetime):
                value = value.isoformat()
            answers[question.code] = value
        return answers

    def service_kwargs(self) -> dict:
        data = self.cleaned_data
        return {
            "service_type": self.service_type,
            "description": data["description"],
            "lat": data["lat"],
            "lon": data["lon"],
            "address": data["address"],
            "answers": self.answers(),
            "photos": [data["photo"]] if data.get("photo") else [],
            "idempotency_key": data["idempotency_key"],
        }


class CallForm(FilingForm):
    """A call taker records a case for a caller, with the caller's contact details (private)."""

    contact_name = forms.CharField(label="Caller's name", required=False, max_length=120)
    contact_phone = forms.CharField(
        label="Caller's phone",
        required=False,
        max_length=40,
        widget=forms.TextInput(attrs={"type": "tel", "autocomplete": "off"}),
    )
    contact_email = forms.EmailField(label="Caller's e-mail", required=False)

    def service_kwargs(self) -> dict:
        kwargs = super().service_kwargs()
        for name in ("contact_name", "contact_phone", "contact_email"):
            kwargs[name] = self.cleaned_data[name]
        return kwargs


# Metrics ------------------------------------------------------------------------------------------

PERIOD_CHOICES = [("30", "Last 30 days"), ("90", "Last 90 days"), ("365", "Last 12 months")]


class MetricsForm(forms.Form):
    """The period (a preset, or dates) and department of the metrics page."""

    period = forms.ChoiceField(
        label="Period", choices=PERIOD_CHOICES, required=False, initial=str(DEFAULT_PERIOD_DAYS)
    )
    start = forms.DateField(
        label="From", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    end = forms.DateField(
        label="To (inclusive)", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    department = forms.ModelChoiceField(
        label="Department", queryset=Department.objects.none(), required=False, empty_label="All"
    )

    def __init__(self, *args, departments: Iterable[Department], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        departments = list(departments)
        self.fields["department"].queryset = Department.objects.filter(
            pk__in=[d.pk for d in departments]
        )
        if len(departments) <= 1:
            del self.fields["department"]

    def clean(self) -> dict:
        cleaned = super().clean()
        start, end = cleaned.get("start"), cleaned.get("end")
        if start and end and start > end:
            self.add_error("end", "End on or after the start.")
        return cleaned
