"""Forms of the discussion pages. They only type the input; the rules live in ``services``.

Every form works without JavaScript: the map fills the latitude and longitude inputs, which
people may also type.
"""

from __future__ import annotations

from django import forms

from .conf import app_settings
from .models import Flag, ForumCategory
from .services import BODY_MAX, REPLY_MAX, SORTS, TITLE_MAX

SORT_LABELS = {
    "hot": "Hot",
    "top": "Top",
    "new": "New",
    "discussed": "Most discussed",
    "unanswered": "Unanswered",
}
PERIOD_LABELS = {"day": "Today", "week": "This week", "month": "This month", "all": "All time"}
HONEYPOT_FIELD = "website"
MODERATION_CHOICES = [
    ("approve", "Approve (show it again)"),
    ("hide", "Hide"),
    ("delete", "Delete"),
    ("lock", "Lock (no new replies)"),
    ("unlock", "Unlock"),
    ("pin", "Pin to the top of the neighborhood"),
    ("unpin", "Unpin"),
    ("move", "Move to another neighborhood"),
    ("merge", "Merge into another thread"),
]
REPLY_MODERATION_CHOICES = MODERATION_CHOICES[:3]


class HoneypotMixin(forms.Form):
    """A field people never see (hidden by CSS and from assistive technology); robots fill it."""

    website = forms.CharField(
        required=False,
        label="Leave this field empty",
        widget=forms.TextInput(attrs={"tabindex": "-1", "autocomplete": "off"}),
    )


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultiplePhotoField(forms.FileField):
    """Several files from one input; each is checked and re-encoded by the service."""

    widget = MultipleFileInput

    def clean(self, data, initial=None):
        files = data if isinstance(data, (list, tuple)) else ([data] if data else [])
        files = [super(MultiplePhotoField, self).clean(f, initial) for f in files if f]
        limit = app_settings.FORUM_MAX_PHOTOS
        if len(files) > limit:
            raise forms.ValidationError(f"Add at most {limit} photos.")
        return files


def _category_field() -> forms.ModelChoiceField:
    return forms.ModelChoiceField(
        queryset=ForumCategory.objects.all(),
        empty_label="Choose a category",
        required=False,
    )


def _pin_fields() -> tuple[forms.FloatField, forms.FloatField]:
    attrs = {"step": "any", "inputmode": "decimal"}
    return (
        forms.FloatField(label="Latitude", required=False, widget=forms.NumberInput(attrs=attrs)),
        forms.FloatField(label="Longitude", required=False, widget=forms.NumberInput(attrs=attrs)),
    )


class ThreadForm(HoneypotMixin):
    # Title, body and category are checked by the service, which reports every problem at once.
    title = forms.CharField(
        required=False,
        max_length=TITLE_MAX,
        widget=forms.TextInput(attrs={"required": True, "autocomplete": "off"}),
        help_text="One line your neighbours can scan, e.g. “Streetlight out on 5th and Pine”.",
    )
    body = forms.CharField(
        required=False,
        max_length=BODY_MAX,
        widget=forms.Textarea(attrs={"rows": 8, "required": True}),
        help_text="Markdown works: **bold**, *italic*, lists, > quotes and links. "
        "Mention a neighbour with @name.",
    )
    category = _category_field()
    tags = forms.CharField(
        required=False,
        max_length=200,
        help_text="Up to five words, separated by commas or spaces, e.g. “lighting, safety”.",
    )
    lat, lon = _pin_fields()
    photos = MultiplePhotoField(
        required=False,
        widget=MultipleFileInput(attrs={"accept": "image/jpeg,image/png,image/webp"}),
        help_text="Optional: up to {n} photos (JPEG, PNG or WebP). Location data in the files is "
        "removed; if a photo knows where it was taken, you will be asked whether to use that as "
        "the pin.",
    )
    field_order = ["title", "body", "category", "tags", "lat", "lon", "photos", "website"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["photos"].help_text = self.fields["photos"].help_text.format(
            n=app_settings.FORUM_MAX_PHOTOS
        )


class ThreadEditForm(forms.Form):
    title = forms.CharField(max_length=TITLE_MAX)
    body = forms.CharField(
        max_length=BODY_MAX,
        widget=forms.Textarea(attrs={"rows": 10}),
        help_text="Markdown. The earlier text is kept for moderators; the thread is marked edited.",
    )
    category = _category_field()
    tags = forms.CharField(required=False, max_length=200, help_text="Separated by commas.")
    lat, lon = _pin_fields()
    clear_pin = forms.BooleanField(required=False, label="Remove the pin")


class ReplyForm(HoneypotMixin):
    body = forms.CharField(
        label="Your reply",
        required=False,
        max_length=REPLY_MAX,
        widget=forms.Textarea(attrs={"rows": 5, "required": True}),
        help_text="Markdown works. Mention a neighbour with @name.",
    )
    quote = forms.IntegerField(required=False, widget=forms.HiddenInput)


class ReplyEditForm(forms.Form):
    body = forms.CharField(
        label="Edit your reply",
        required=False,
        max_length=REPLY_MAX,
        widget=forms.Textarea(attrs={"rows": 5, "required": True}),
    )

    def __init__(self, *args, **kwargs):
        # Its ids must not clash with the reply form's on the same page.
        kwargs.setdefault("auto_id", "edit-reply-%s")
        super().__init__(*args, **kwargs)


class FlagForm(forms.Form):
    reason = forms.ChoiceField(choices=Flag.Reason.choices, widget=forms.RadioSelect)
    note = forms.CharField(required=False, max_length=500, label="Anything moderators should know")


class AppealForm(forms.Form):
    text = forms.CharField(
        label="Why should it be shown again?",
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )


class FeedFilterForm(forms.Form):
    sort = forms.ChoiceField(required=False, choices=[(s, SORT_LABELS[s]) for s in SORTS])
    period = forms.ChoiceField(required=False, choices=list(PERIOD_LABELS.items()))
    tag = forms.SlugField(required=False, max_length=31)

    def __init__(self, data=None, *args, **kwargs):
        if data is not None and data.get("tag", "").startswith("#"):
            data = data.copy()
            data["tag"] = data["tag"][1:]
        super().__init__(data, *args, **kwargs)

    category = forms.ModelChoiceField(
        required=False,
        queryset=ForumCategory.objects.all(),
        to_field_name="slug",
        empty_label="All categories",
    )

    def clean_tag(self) -> str:
        return self.cleaned_data.get("tag", "").lower()

    def choices(self) -> dict:
        """The chosen sort, period, tag and category slug (defaults for anything invalid)."""
        self.is_valid()
        data = getattr(self, "cleaned_data", {})
        category = data.get("category")
        return {
            "sort": data.get("sort") or "hot",
            "period": data.get("period") or "week",
            "tag": data.get("tag") or "",
            "category": category.slug if category else "",
        }
