"""Pages for neighborhoods, organizations and the profile. Every rule lives in ``services``."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Count, Max, Prefetch
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from . import services
from .conf import app_settings
from .context import neighborhood_context
from .forms import (
    HomeLocationForm,
    JoinRequestForm,
    NotificationPreferencesForm,
    OrganizationForm,
    ProfileForm,
    ResidencyCodeForm,
)
from .geometry import GeometryError
from .http import safe_next
from .models import (
    Membership,
    Neighborhood,
    Organization,
    OrganizationJoinRequest,
    OrganizationMembership,
)
from .panels import render_panels
from .permissions import can, membership_of, org_role
from .ratelimit import RateLimited


def _fail(request: HttpRequest, exc: Exception) -> None:
    text = " ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
    messages.error(request, text or "You are not allowed to do this.")


@require_GET
def neighborhood_list(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "").strip()[:100]
    neighborhoods = (
        Neighborhood.objects.annotate(member_count=Count("memberships"))
        .defer("boundary", "source_properties")
        .order_by("name")
    )
    if query:
        neighborhoods = neighborhoods.filter(name__icontains=query)
    page = Paginator(neighborhoods, app_settings.PAGE_SIZE).get_page(request.GET.get("page"))
    mine: set[int] = set()
    if request.user.is_authenticated:
        mine = set(
            Membership.objects.filter(user=request.user).values_list("neighborhood_id", flat=True)
        )
    return render(
        request,
        "neighborhoods/neighborhood_list.html",
        {"page": page, "query": query, "mine": mine},
    )


@require_GET
def city_map(request: HttpRequest) -> HttpResponse:
    neighborhoods = Neighborhood.objects.only("name", "slug").order_by("name")
    return render(request, "neighborhoods/city_map.html", {"neighborhoods": neighborhoods})


@require_GET
def boundaries_geojson(request: HttpRequest) -> HttpResponse:
    """All boundaries as one FeatureCollection, for the city map."""
    version = Neighborhood.objects.aggregate(v=Max("updated_at"), n=Count("pk"))
    etag = f'"{version["n"]}-{version["v"].timestamp() if version["v"] else 0}"'
    if request.headers.get("If-None-Match") == etag:
        return HttpResponse(status=304)
    features = [
        {
            "type": "Feature",
            "id": n["slug"],
            "properties": {
                "name": n["name"],
                "slug": n["slug"],
                "url": reverse("neighborhoods:detail", args=[n["slug"]]),
            },
            "geometry": n["boundary"],
        }
        for n in Neighborhood.objects.order_by("name").values("name", "slug", "boundary")
    ]
    body = {
        "type": "FeatureCollection",
        "attribution": app_settings.BOUNDARY_ATTRIBUTION,
        "features": features,
    }
    response = JsonResponse(body)
    response["ETag"] = etag
    response["Cache-Control"] = "public, max-age=300"
    return response


@require_GET
def neighborhood_detail(request: HttpRequest, slug: str) -> HttpResponse:
    neighborhood = get_object_or_404(
        Neighborhood.objects.annotate(member_count=Count("memberships")), slug=slug
    )
    context = neighborhood_context(request.user, neighborhood)
    context["panels"] = render_panels(request, neighborhood)
    if context["can_verify"]:
        context["awaiting_verification"] = (
            Membership.objects.filter(
                neighborhood=neighborhood,
                verified_at__isnull=True,
                user__engagement_profile__home_neighborhood=neighborhood,
            )
            .select_related("user__engagement_profile")
            .order_by("joined_at")[:50]
        )
    return render(request, "neighborhoods/neighborhood_detail.html", context)


@login_required
@require_POST
def join(request: HttpRequest, slug: str) -> HttpResponse:
    neighborhood = get_object_or_404(Neighborhood, slug=slug)
    try:
        services.join_neighborhood(user=request.user, neighborhood=neighborhood)
        messages.success(request, f"You joined {neighborhood.name}.")
    except PermissionDenied as exc:
        _fail(request, exc)
    return redirect(safe_next(request, neighborhood.get_absolute_url()))


@login_required
@require_POST
def leave(request: HttpRequest, slug: str) -> HttpResponse:
    neighborhood = get_object_or_404(Neighborhood, slug=slug)
    if services.leave_neighborhood(user=request.user, neighborhood=neighborhood):
        messages.success(request, f"You left {neighborhood.name}.")
    return redirect(safe_next(request, neighborhood.get_absolute_url()))


@login_required
@require_POST
def verify_member(request: HttpRequest, slug: str, membership_id: int) -> HttpResponse:
    membership = get_object_or_404(
        Membership.objects.select_related("neighborhood", "user"),
        pk=membership_id,
        neighborhood__slug=slug,
    )
    try:
        services.verify_resident(actor=request.user, membership=membership)
        name = services.get_profile(membership.user).public_name
        messages.success(request, f"{name} is now a verified resident.")
    except (PermissionDenied, ValidationError) as exc:
        _fail(request, exc)
    return redirect(membership.neighborhood.get_absolute_url())


@login_required
@require_POST
def issue_code(request: HttpRequest, slug: str, membership_id: int) -> HttpResponse:
    membership = get_object_or_404(
        Membership.objects.select_related("neighborhood", "user"),
        pk=membership_id,
        neighborhood__slug=slug,
    )
    try:
        code = services.issue_residency_code(
            actor=request.user, user=membership.user, neighborhood=membership.neighborhood
        )
        name = services.get_profile(membership.user).public_name
        messages.success(
            request, f"Code for {name}: {code}. Mail it to their home; it is shown once."
        )
    except (PermissionDenied, ValidationError) as exc:
        _fail(request, exc)
    return redirect(membership.neighborhood.get_absolute_url())


@login_required
def profile(request: HttpRequest) -> HttpResponse:
    user = request.user
    profile = services.get_profile(user)
    profile_form = ProfileForm(initial={"display_name": profile.display_name})
    prefs_form = NotificationPreferencesForm(
        initial=NotificationPreferencesForm.initial_from(profile.notification_preferences)
    )
    if request.method == "POST":
        if "save_profile" in request.POST:
            profile_form = ProfileForm(request.POST)
            if profile_form.is_valid():
                services.update_profile(
                    user=user, display_name=profile_form.cleaned_data["display_name"]
                )
                messages.success(request, "Your profile is saved.")
                return redirect("neighborhoods:profile")
        elif "save_preferences" in request.POST:
            prefs_form = NotificationPreferencesForm(request.POST)
            if prefs_form.is_valid():
                services.update_profile(
                    user=user,
                    display_name=profile.display_name,
                    notification_preferences=prefs_form.to_preferences(),
                )
                messages.success(request, "Your notification preferences are saved.")
                return redirect("neighborhoods:profile")
    memberships = (
        Membership.objects.filter(user=user).select_related("neighborhood").order_by("joined_at")
    )
    organizations = OrganizationMembership.objects.filter(user=user).select_related("organization")
    return render(
        request,
        "neighborhoods/profile.html",
        {
            "profile": profile,
            "profile_form": profile_form,
            "prefs_form": prefs_form,
            "memberships": memberships,
            "organization_memberships": organizations,
            "code_form": ResidencyCodeForm(),
            "home_membership": next(
                (m for m in memberships if m.neighborhood_id == profile.home_neighborhood_id), None
            ),
        },
    )


@login_required
def home_location(request: HttpRequest) -> HttpResponse:
    profile = services.get_profile(request.user)
    form = HomeLocationForm(
        request.POST or None,
        initial={"lat": profile.home_lat, "lon": profile.home_lon} if profile.has_home else None,
    )
    if request.method == "POST":
        if "clear" in request.POST:
            services.clear_home_location(user=request.user)
            messages.success(request, "Your home location is removed.")
            return redirect("neighborhoods:profile")
        if form.is_valid():
            try:
                found = services.set_home_location(
                    user=request.user, lat=form.cleaned_data["lat"], lon=form.cleaned_data["lon"]
                )
            except GeometryError as exc:
                form.add_error(None, str(exc))
            else:
                if found is None:
                    messages.warning(
                        request,
                        "Your home location is saved, but it is outside every neighborhood we know.",
                    )
                else:
                    messages.success(request, f"Your home is in {found.name}.")
                return redirect("neighborhoods:home_location")
    profile.refresh_from_db()
    offered = profile.home_neighborhood
    return render(
        request,
        "neighborhoods/home_location.html",
        {
            "form": form,
            "profile": profile,
            "offered": offered,
            "offered_membership": membership_of(request.user, offered) if offered else None,
        },
    )


@login_required
@require_POST
def redeem_code(request: HttpRequest) -> HttpResponse:
    form = ResidencyCodeForm(request.POST)
    if form.is_valid():
        try:
            membership = services.redeem_residency_code(
                user=request.user, code=form.cleaned_data["code"]
            )
            messages.success(
                request,
                f"Thank you: you are a verified resident of {membership.neighborhood.name}.",
            )
        except (ValidationError, RateLimited) as exc:
            _fail(request, exc)
    else:
        messages.error(request, "Enter the code from your postcard.")
    return redirect("neighborhoods:profile")


@require_GET
def organization_list(request: HttpRequest) -> HttpResponse:
    organizations = (
        Organization.objects.annotate(member_count=Count("memberships"))
        .prefetch_related(Prefetch("neighborhoods", Neighborhood.objects.only("name", "slug")))
        .order_by("-verified", "name")
    )
    page = Paginator(organizations, app_settings.PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "neighborhoods/organization_list.html",
        {"page": page, "can_create": can(request.user, "create_organization")},
    )


@require_GET
def organization_detail(request: HttpRequest, slug: str) -> HttpResponse:
    organization = get_object_or_404(Organization, slug=slug)
    user = request.user
    role = org_role(user, organization)
    can_manage = can(user, "manage_organization", organization)
    context = {
        "organization": organization,
        "neighborhoods": organization.neighborhoods.only("name", "slug"),
        "role": role,
        "can_manage": can_manage,
        "can_request": can(user, "request_to_join_organization", organization),
        "can_verify": can(user, "verify_organization", organization),
        "join_form": JoinRequestForm(),
        "members": organization.memberships.select_related("user__engagement_profile").order_by(
            "role", "joined_at"
        ),
    }
    if user.is_authenticated:
        context["my_request"] = organization.join_requests.filter(
            user=user, status=OrganizationJoinRequest.Status.PENDING
        ).first()
    if can_manage:
        context["pending"] = organization.join_requests.filter(
            status=OrganizationJoinRequest.Status.PENDING
        ).select_related("user__engagement_profile")
    return render(request, "neighborhoods/organization_detail.html", context)


@login_required
def organization_create(request: HttpRequest) -> HttpResponse:
    if not can(request.user, "create_organization"):
        messages.error(request, "Verify your e-mail address before starting an organization.")
        return redirect("neighborhoods:organizations")
    form = OrganizationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        organization = services.create_organization(
            actor=request.user,
            name=form.cleaned_data["name"],
            description=form.cleaned_data["description"],
            website=form.cleaned_data["website"],
            neighborhoods=list(form.cleaned_data["neighborhoods"]),
        )
        messages.success(
            request, f"{organization.name} is created. City staff will review it for verification."
        )
        return redirect(organization.get_absolute_url())
    return render(request, "neighborhoods/organization_form.html", {"form": form})


@login_required
@require_POST
def organization_request(request: HttpRequest, slug: str) -> HttpResponse:
    organization = get_object_or_404(Organization, slug=slug)
    form = JoinRequestForm(request.POST)
    if form.is_valid():
        try:
            services.request_to_join_organization(
                user=request.user, organization=organization, message=form.cleaned_data["message"]
            )
            messages.success(request, "Your request is sent to the organization's admins.")
        except (PermissionDenied, RateLimited) as exc:
            _fail(request, exc)
    return redirect(organization.get_absolute_url())


@login_required
@require_POST
def organization_decide(request: HttpRequest, slug: str, request_id: int) -> HttpResponse:
    organization = get_object_or_404(Organization, slug=slug)
    join_request = get_object_or_404(
        OrganizationJoinRequest.objects.select_related("organization"),
        pk=request_id,
        organization=organization,
    )
    approve = request.POST.get("decision") == "approve"
    try:
        services.decide_join_request(actor=request.user, join_request=join_request, approve=approve)
        messages.success(request, "Approved." if approve else "Declined.")
    except (PermissionDenied, ValidationError) as exc:
        _fail(request, exc)
    return redirect(organization.get_absolute_url())


@login_required
@require_POST
def organization_leave(request: HttpRequest, slug: str) -> HttpResponse:
    organization = get_object_or_404(Organization, slug=slug)
    try:
        if services.leave_organization(user=request.user, organization=organization):
            messages.success(request, f"You left {organization.name}.")
    except ValidationError as exc:
        _fail(request, exc)
    return redirect(organization.get_absolute_url())


@login_required
@require_POST
def organization_verify(request: HttpRequest, slug: str) -> HttpResponse:
    organization = get_object_or_404(Organization, slug=slug)
    verified = request.POST.get("verified") == "1"
    try:
        services.set_organization_verified(
            actor=request.user, organization=organization, verified=verified
        )
        messages.success(request, "Marked as verified." if verified else "Verification removed.")
    except PermissionDenied as exc:
        _fail(request, exc)
    return redirect(organization.get_absolute_url())
