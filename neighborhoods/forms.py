from __future__ import annotations

from django import forms

from .geometry import GeometryError, parse_area, validate_point
from .models import Neighborhood, Organization
from .widgets import BoundaryWidget

SEVERITIES = [
    ("info", "Everything (info and up)"),
    ("advisory", "Advisories and up"),
    ("warning", "Warnings and emergencies"),
    ("emergency", "Emergencies only"),
]
CHANNELS = [("email", "E-mail"), ("sms", "Text message (SMS)"), ("push", "Browser push")]


class ProfileForm(forms.Form):
    display_name = forms.CharField(
        max_length=60,
        required=False,
        help_text="Shown with your posts. Leave empty to appear as “Neighbor” and a number.",
    )


class NotificationPreferencesForm(forms.Form):
    """Stored on the profile; the alerts app delivers by these preferences."""

    inapp_min_severity = forms.ChoiceField(label="In-app inbox", choices=SEVERITIES, initial="info")
    email_enabled = forms.BooleanField(label="Send me e-mail", required=False, initial=True)
    email_min_severity = forms.ChoiceField(
        label="E-mail me about", choices=SEVERITIES, initial="warning"
    )
    email_digest = forms.ChoiceField(
        label="Everything else by e-mail",
        choices=[("daily", "In a daily digest"), ("never", "Never")],
        initial="daily",
    )
    sms_enabled = forms.BooleanField(label="Text me emergencies (SMS)", required=False)
    push_enabled = forms.BooleanField(label="Browser push notifications", required=False)
    quiet_hours_start = forms.TimeField(
        label="Quiet hours from",
        required=False,
        widget=forms.TimeInput(attrs={"type": "time"}),
        help_text="Only emergencies break quiet hours.",
    )
    quiet_hours_end = forms.TimeField(
        label="Quiet hours until", required=False, widget=forms.TimeInput(attrs={"type": "time"})
    )

    def clean(self):
        data = super().clean()
        start, end = data.get("quiet_hours_start"), data.get("quiet_hours_end")
        if bool(start) != bool(end):
            raise forms.ValidationError("Give both ends of the quiet hours, or neither.")
        return data

    def to_preferences(self) -> dict:
        data = self.cleaned_data
        return {
            "inapp": {"min_severity": data["inapp_min_severity"]},
            "email": {
                "enabled": data["email_enabled"],
                "min_severity": data["email_min_severity"],
                "digest": data["email_digest"],
            },
            "sms": {"enabled": data["sms_enabled"]},
            "push": {"enabled": data["push_enabled"]},
            "quiet_hours": (
                {
                    "start": data["quiet_hours_start"].strftime("%H:%M"),
                    "end": data["quiet_hours_end"].strftime("%H:%M"),
                }
                if data.get("quiet_hours_start")
                else None
            ),
        }

    @classmethod
    def initial_from(cls, preferences: dict) -> dict:
        preferences = preferences or {}
        email = preferences.get("email", {})
        quiet = preferences.get("quiet_hours") or {}
        return {
            "inapp_min_severity": preferences.get("inapp", {}).get("min_severity", "info"),
            "email_enabled": email.get("enabled", True),
            "email_min_severity": email.get("min_severity", "warning"),
            "email_digest": email.get("digest", "daily"),
            "sms_enabled": preferences.get("sms", {}).get("enabled", False),
            "push_enabled": preferences.get("push", {}).get("enabled", False),
            "quiet_hours_start": quiet.get("start"),
            "quiet_hours_end": quiet.get("end"),
        }


class HomeLocationForm(forms.Form):
    """A point; the map fills these fields in, and they can be typed without JavaScript."""

    lat = forms.FloatField(label="Latitude", widget=forms.TextInput(attrs={"inputmode": "decimal"}))
    lon = forms.FloatField(
        label="Longitude", widget=forms.TextInput(attrs={"inputmode": "decimal"})
    )

    def clean(self):
        data = super().clean()
        if "lat" in data and "lon" in data:
            try:
                data["lat"], data["lon"] = validate_point(data["lat"], data["lon"])
            except GeometryError as exc:
                raise forms.ValidationError(str(exc)) from exc
        return data


class ResidencyCodeForm(forms.Form):
    code = forms.CharField(
        label="Code from your postcard",
        max_length=20,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "placeholder": "ABCD-EFGH"}),
    )


def website_field() -> forms.URLField:
    """A website typed without a scheme is taken as https:// (Django 6's default)."""
    return forms.URLField(required=False, assume_scheme="https", max_length=200)


class OrganizationForm(forms.ModelForm):
    website = website_field()

    class Meta:
        model = Organization
        fields = ["name", "description", "website", "neighborhoods"]
        widgets = {"neighborhoods": forms.SelectMultiple(attrs={"size": 8})}
        help_texts = {"neighborhoods": "The neighborhoods your organization serves."}


class JoinRequestForm(forms.Form):
    message = forms.CharField(
        required=False,
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 3}),
        label="Message to the organization's admins (optional)",
    )


class BoundaryField(forms.JSONField):
    """A GeoJSON (Multi)Polygon validated with shapely (no GDAL)."""

    def clean(self, value):
        value = super().clean(value)
        try:
            return parse_area(value)
        except GeometryError as exc:
            raise forms.ValidationError(f"Boundary: {exc}") from exc


class NeighborhoodBoundaryForm(forms.ModelForm):
    boundary = BoundaryField(
        widget=BoundaryWidget,
        help_text="GeoJSON Polygon or MultiPolygon in longitude/latitude; the map shows it.",
    )

    class Meta:
        model = Neighborhood
        fields = ["name", "description", "boundary", "required_level"]

    def save(self, commit: bool = True):
        instance = super().save(commit=False)
        instance.set_boundary(self.cleaned_data["boundary"])
        if commit:
            instance.save()
        return instance
