"""Wagtail admin: neighborhoods (with their boundary on a map), organizations and city staff."""

from __future__ import annotations

from django import forms
from django.utils import timezone
from wagtail import hooks
from wagtail.admin.viewsets.base import ViewSetGroup
from wagtail.admin.viewsets.model import ModelViewSet

from .forms import NeighborhoodBoundaryForm, website_field
from .models import CityStaff, Department, Neighborhood, Organization


class NeighborhoodViewSet(ModelViewSet):
    model = Neighborhood
    icon = "site"
    list_display = ["name", "slug", "required_level", "updated_at"]
    list_filter = ["required_level"]
    search_fields = ["name", "description"]
    ordering = ["name"]
    inspect_view_enabled = True
    inspect_view_fields = ["name", "slug", "description", "required_level", "updated_at"]

    def get_form_class(self, for_update: bool = False) -> type[forms.ModelForm]:
        return NeighborhoodBoundaryForm


class OrganizationAdminForm(forms.ModelForm):
    website = website_field()

    class Meta:
        model = Organization
        fields = ["name", "description", "website", "verified", "neighborhoods"]
        widgets = {"neighborhoods": forms.CheckboxSelectMultiple}

    def save(self, commit: bool = True) -> Organization:
        organization = super().save(commit=False)
        if organization.verified and not organization.verified_at:
            organization.verified_at = timezone.now()
        elif not organization.verified:
            organization.verified_at = None
        if commit:
            organization.save()
            self.save_m2m()
        return organization


class OrganizationViewSet(ModelViewSet):
    model = Organization
    icon = "group"
    list_display = ["name", "verified", "website", "created_at"]
    list_filter = ["verified"]
    search_fields = ["name", "description"]
    ordering = ["name"]

    def get_form_class(self, for_update: bool = False) -> type[forms.ModelForm]:
        return OrganizationAdminForm


class DepartmentViewSet(ModelViewSet):
    model = Department
    icon = "folder-open-inverse"
    form_fields = ["name", "slug", "description", "email", "phone"]
    list_display = ["name", "email", "phone"]
    search_fields = ["name"]


class CityStaffViewSet(ModelViewSet):
    model = CityStaff
    icon = "user"
    form_fields = ["user", "department", "title", "is_supervisor"]
    list_display = ["user", "department", "title", "is_supervisor"]
    list_filter = ["department", "is_supervisor"]


class CommunityViewSetGroup(ViewSetGroup):
    menu_label = "Community"
    menu_icon = "group"
    menu_order = 250
    items = (
        NeighborhoodViewSet("engagement_neighborhoods", url_prefix="neighborhoods"),
        OrganizationViewSet("engagement_organizations", url_prefix="organizations"),
        DepartmentViewSet("engagement_departments", url_prefix="departments"),
        CityStaffViewSet("engagement_city_staff", url_prefix="city-staff"),
    )


@hooks.register("register_admin_viewset")
def register_community_viewsets() -> ViewSetGroup:
    return CommunityViewSetGroup()
