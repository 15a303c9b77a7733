"""Forms for posting alerts; both work without JavaScript (the map only fills the inputs)."""

from __future__ import annotations

from django import forms
from django.utils import timezone

from neighborhoods.geometry import GeometryError, parse_area, validate_point
from neighborhoods.models import Neighborhood

from .models import Alert, AlertCategory, Severity

RESIDENT_SEVERITIES = [
    (Severity.INFO, "Info: good to know"),
    (Severity.ADVISORY, "Advisory: take care"),
    (Severity.WARNING, "Warning: avoid the area"),
]
OFFICIAL_SEVERITIES = [
    *RESIDENT_SEVERITIES,
    (Severity.EMERGENCY, "Emergency: act now"),
]


class _PointMixin:
    def clean_point(self, required: bool) -> tuple[float, float] | None:
        data = self.cleaned_data
        lat, lon = data.get("lat"), data.get("lon")
        if lat is None and lon is None:
            if required:
                self.add_error(
                    "lat", "Place the pin on the map, or type the latitude and longitude."
                )
            return None
        try:
            return validate_point(lat, lon)
        except GeometryError as exc:
            self.add_error("lat", str(exc))
            return None


class ResidentReportForm(_PointMixin, forms.Form):
    category = forms.ModelChoiceField(
        queryset=AlertCategory.objects.filter(residents_may_report=True),
        empty_label="Choose what it is about",
    )
    title = forms.CharField(
        max_length=140,
        label="What is happening?",
        help_text="A short line neighbours can scan, e.g. “Water pouring from hydrant at 3rd & Arch”.",
    )
    body = forms.CharField(
        required=False,
        max_length=2000,
        label="Details (optional)",
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="Markdown works: **bold**, lists and links.",
    )
    severity = forms.TypedChoiceField(
        choices=RESIDENT_SEVERITIES, coerce=int, initial=Severity.ADVISORY
    )
    lat = forms.FloatField(
        label="Latitude", required=False, widget=forms.NumberInput(attrs={"step": "any"})
    )
    lon = forms.FloatField(
        label="Longitude", required=False, widget=forms.NumberInput(attrs={"step": "any"})
    )
    photo = forms.ImageField(
        required=False,
        help_text="Optional. JPEG, PNG or WebP; location data in the file is removed.",
    )

    def clean(self):
        data = super().clean()
        self.clean_point(required=True)
        return data


class OfficialNoticeForm(_PointMixin, forms.Form):
    category = forms.ModelChoiceField(
        queryset=AlertCategory.objects.all(), empty_label="Choose a category"
    )
    severity = forms.TypedChoiceField(
        choices=OFFICIAL_SEVERITIES, coerce=int, initial=Severity.ADVISORY
    )
    title = forms.CharField(max_length=140)
    body = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 6}),
        help_text="Markdown. Say what is happening, where, what to do and until when.",
    )
    neighborhoods = forms.ModelMultipleChoiceField(
        queryset=Neighborhood.objects.order_by("name").only("id", "name", "slug"),
        required=False,
        widget=forms.SelectMultiple(attrs={"size": 10}),
        help_text="Hold Ctrl (⌘ on a Mac) to choose several. Or give an area below.",
    )
    area = forms.CharField(
        required=False,
        label="Area (GeoJSON polygon)",
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
        help_text="Draw it on the map, or paste a GeoJSON Polygon. Neighborhoods it touches are "
        "found for you.",
    )
    lat = forms.FloatField(
        label="Centre latitude", required=False, widget=forms.NumberInput(attrs={"step": "any"})
    )
    lon = forms.FloatField(
        label="Centre longitude", required=False, widget=forms.NumberInput(attrs={"step": "any"})
    )
    radius_m = forms.IntegerField(
        label="Radius (metres)", required=False, min_value=10, max_value=20_000
    )
    starts_at = forms.DateTimeField(
        required=False,
        label="Starts",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text="Leave empty for now.",
    )
    expires_at = forms.DateTimeField(
        required=False,
        label="Expires",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text="Leave empty for three days.",
    )
    photo = forms.ImageField(required=False)

    def clean_area(self):
        text = self.cleaned_data.get("area", "").strip()
        if not text:
            return None
        try:
            return parse_area(text)
        except GeometryError as exc:
            raise forms.ValidationError(f"The area is not usable: {exc}.") from exc

    def clean(self):
        data = super().clean()
        point = self.clean_point(required=False)
        ways = sum(
            [bool(data.get("neighborhoods")), data.get("area") is not None, point is not None]
        )
        if ways == 0 and not self.errors:
            raise forms.ValidationError(
                "Choose neighborhoods, draw an area, or give a centre point with a radius."
            )
        if ways > 1:
            raise forms.ValidationError(
                "Use one way to say where: neighborhoods, an area, or a point with a radius."
            )
        starts, expires = data.get("starts_at"), data.get("expires_at")
        if expires and expires <= (starts or timezone.now()):
            self.add_error("expires_at", "The expiry must come after the start.")
        return data


class AlertEditForm(forms.Form):
    title = forms.CharField(max_length=140)
    body = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 6}))
    severity = forms.TypedChoiceField(choices=OFFICIAL_SEVERITIES, coerce=int)
    expires_at = forms.DateTimeField(
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    note = forms.CharField(
        max_length=500,
        label="What changed and why",
        help_text="Shown with the correction to everyone who received the notice.",
    )

    @classmethod
    def for_alert(cls, alert: Alert, data=None) -> AlertEditForm:
        return cls(
            data,
            initial={
                "title": alert.title,
                "body": alert.body,
                "severity": alert.severity,
                "expires_at": timezone.localtime(alert.expires_at) if alert.expires_at else None,
            },
        )


class FeedFilterForm(forms.Form):
    kind = forms.ChoiceField(
        required=False, choices=[("", "Official and resident"), *Alert.Kind.choices]
    )
    category = forms.ModelChoiceField(
        required=False,
        queryset=AlertCategory.objects.all(),
        to_field_name="slug",
        empty_label="All categories",
    )
