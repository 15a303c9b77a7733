"""Pages of alerts: feeds (city, neighborhood, mine), the alert page, posting and acting on alerts."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from neighborhoods import uploads
from neighborhoods.models import Membership, Neighborhood
from neighborhoods.permissions import can, is_city_staff
from neighborhoods.ratelimit import RateLimited

from . import live, services
from .forms import AlertEditForm, FeedFilterForm, OfficialNoticeForm, ResidentReportForm
from .models import Alert, AlertConfirmation

FEED_PAGE_SIZE = 30
PANEL_SIZE = 8


def _fail(request: HttpRequest, exc: Exception) -> None:
    text = " ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
    messages.error(request, text or "You are not allowed to do this.")


def _form_errors(form, exc: ValidationError) -> None:
    """Put a service's ValidationError on the form's fields (or on the form)."""
    if hasattr(exc, "error_dict"):
        for field, errors in exc.error_dict.items():
            target = field if field in form.fields else None
            for error in errors:
                form.add_error(target, error)
    else:
        for message in exc.messages:
            form.add_error(None, message)


def _feed_page(request: HttpRequest, alerts, *, template: str, context: dict) -> HttpResponse:
    live.mark_cursor(request)
    filters = FeedFilterForm(request.GET or None)
    kind = category = None
    if filters.is_valid():
        kind = filters.cleaned_data.get("kind") or None
        chosen = filters.cleaned_data.get("category")
        category = chosen.slug if chosen else None
    alerts = alerts(kind=kind, category=category)
    page = Paginator(alerts, FEED_PAGE_SIZE).get_page(request.GET.get("page"))
    services.with_neighborhood_slugs(list(page.object_list))
    context.update(
        {
            "filters": filters,
            "page": page,
            "alerts": page.object_list,
            "map_alerts": [services.alert_payload(a) for a in page.object_list],
            "can_post_official": can(request.user, "post_official_notice"),
        }
    )
    return render(request, template, context)


@require_GET
def city_feed(request: HttpRequest) -> HttpResponse:
    return _feed_page(
        request,
        lambda **f: services.feed(**f),
        template="alerts/feed.html",
        context={"heading": "Alerts across the city", "topics": [], "scope": "city"},
    )


@require_GET
def neighborhood_feed(request: HttpRequest, slug: str) -> HttpResponse:
    neighborhood = get_object_or_404(Neighborhood.objects.only("id", "name", "slug"), slug=slug)
    return _feed_page(
        request,
        lambda **f: services.feed(neighborhoods=[neighborhood], **f),
        template="alerts/feed.html",
        context={
            "heading": f"Alerts in {neighborhood.name}",
            "neighborhood": neighborhood,
            "topics": [f"neighborhood:{neighborhood.slug}"],
            "scope": "neighborhood",
        },
    )


@login_required
@require_GET
def my_feed(request: HttpRequest) -> HttpResponse:
    mine = services.my_neighborhoods(request.user)
    return _feed_page(
        request,
        lambda **f: services.feed(neighborhoods=mine, **f),
        template="alerts/feed.html",
        context={
            "heading": "Alerts in my neighborhoods",
            "my_neighborhoods": mine,
            "topics": [f"neighborhood:{n.slug}" for n in mine],
            "scope": "mine",
        },
    )


def _alert_or_404(request: HttpRequest, pk: int) -> Alert:
    alert = get_object_or_404(Alert.objects.select_related("category", "department"), pk=pk)
    if not services.visible_to(request.user, alert):
        raise Http404("No such alert.")
    return alert


@require_GET
def alert_detail(request: HttpRequest, pk: int) -> HttpResponse:
    live.mark_cursor(request)
    alert = _alert_or_404(request, pk)
    neighborhoods = list(alert.neighborhoods.order_by("name").only("id", "name", "slug"))
    alert._neighborhood_slugs = [n.slug for n in neighborhoods]
    user = request.user
    community = alert.kind == Alert.Kind.COMMUNITY
    is_member = (
        community
        and user.is_authenticated
        and Membership.objects.filter(user=user, neighborhood__in=neighborhoods).exists()
    )
    my_answer = None
    if user.is_authenticated:
        my_answer = AlertConfirmation.objects.filter(alert=alert, user=user).first()
    can_manage = services.can_manage(user, alert)
    context = {
        "alert": alert,
        "neighborhoods": neighborhoods,
        "payload": services.alert_payload(alert),
        "revisions": list(alert.revisions.select_related("edited_by")),
        "my_answer": my_answer,
        "can_confirm": community and alert.is_active() and is_member and alert.author_id != user.pk,
        "can_manage": can_manage,
        "can_resolve": alert.status == Alert.Status.ACTIVE
        and (can_manage or (user.is_authenticated and alert.author_id == user.pk)),
        "can_verify": can_manage and community and not alert.verified_at,
        "can_dismiss": can_manage and community and alert.status == Alert.Status.ACTIVE,
        "can_edit": can_manage
        and alert.kind == Alert.Kind.OFFICIAL
        and alert.status in (Alert.Status.ACTIVE, Alert.Status.EXPIRED),
        "can_retract": can_manage
        and alert.kind == Alert.Kind.OFFICIAL
        and alert.status != Alert.Status.RETRACTED,
    }
    return render(request, "alerts/alert_detail.html", context)


def _categories_json() -> list[dict]:
    from .models import AlertCategory

    return [
        {"id": c.pk, "slug": c.slug, "radius": c.default_radius_m}
        for c in AlertCategory.objects.all()
    ]


@login_required
@require_http_methods(["GET", "POST"])
def report_new(request: HttpRequest) -> HttpResponse:
    initial = {}
    for key in ("lat", "lon"):
        if request.GET.get(key):
            initial[key] = request.GET[key]
    files = uploads.with_held(request, "photo")
    form = ResidentReportForm(request.POST or None, files or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            alert = services.create_resident_report(
                author=request.user,
                category=data["category"],
                title=data["title"],
                body=data["body"],
                severity=data["severity"],
                lat=data["lat"],
                lon=data["lon"],
                photo=data.get("photo"),
            )
        except ValidationError as exc:
            _form_errors(form, exc)
        except (PermissionDenied, RateLimited) as exc:
            form.add_error(None, str(exc))
        else:
            uploads.release(files, "photo")
            messages.success(request, "Thank you. Your report is on the map for your neighbours.")
            return redirect(alert)
    memberships = services.my_neighborhoods(request.user)
    held = uploads.hold(request, form, files, "photo") if form.is_bound else {}
    return render(
        request,
        "alerts/report_form.html",
        {
            "form": form,
            "my_neighborhoods": memberships,
            "categories": _categories_json(),
            "held": held,
        },
        status=400 if form.errors else 200,
    )


@login_required
@require_http_methods(["GET", "POST"])
def official_new(request: HttpRequest) -> HttpResponse:
    if not can(request.user, "post_official_notice"):
        raise PermissionDenied("Only city staff post official notices.")
    files = uploads.with_held(request, "photo")
    form = OfficialNoticeForm(request.POST or None, files or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            alert = services.create_official_notice(
                author=request.user,
                category=data["category"],
                severity=data["severity"],
                title=data["title"],
                body=data["body"],
                neighborhoods=data["neighborhoods"] or (),
                area=data.get("area"),
                lat=data.get("lat"),
                lon=data.get("lon"),
                radius_m=data.get("radius_m"),
                starts_at=data.get("starts_at"),
                expires_at=data.get("expires_at"),
                photo=data.get("photo"),
            )
        except ValidationError as exc:
            _form_errors(form, exc)
        except PermissionDenied as exc:
            form.add_error(None, str(exc))
        else:
            uploads.release(files, "photo")
            count = alert.neighborhoods.count()
            messages.success(
                request, f"Notice published to {count} neighborhood{'s' if count != 1 else ''}."
            )
            return redirect(alert)
    held = uploads.hold(request, form, files, "photo") if form.is_bound else {}
    return render(
        request,
        "alerts/official_form.html",
        {"form": form, "held": held},
        status=400 if form.errors else 200,
    )


@login_required
@require_http_methods(["GET", "POST"])
def alert_edit(request: HttpRequest, pk: int) -> HttpResponse:
    alert = _alert_or_404(request, pk)
    if not services.can_manage(request.user, alert) or alert.kind != Alert.Kind.OFFICIAL:
        raise PermissionDenied("Only staff of the issuing department correct this notice.")
    form = AlertEditForm.for_alert(alert, request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.edit_alert(
                alert,
                user=request.user,
                note=data["note"],
                title=data["title"],
                body=data["body"],
                severity=data["severity"],
                expires_at=data.get("expires_at"),
            )
        except ValidationError as exc:
            _form_errors(form, exc)
        else:
            messages.success(request, "The correction is published; everyone notified is told.")
            return redirect(alert)
    return render(
        request,
        "alerts/alert_edit.html",
        {"form": form, "alert": alert},
        status=400 if form.errors else 200,
    )


ACTIONS = {
    "confirm": "Thanks: your confirmation is counted.",
    "gone": "Thanks: you said it is gone.",
    "verify": "The report is marked verified by the city.",
    "resolve": "The alert is resolved.",
    "dismiss": "The report is dismissed and removed from the feeds.",
    "retract": "The notice is retracted; everyone who received it is told.",
}


@login_required
@require_POST
def alert_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    if action not in ACTIONS:
        raise Http404("No such action.")
    alert = _alert_or_404(request, pk)
    note = request.POST.get("note", "").strip()[:500]
    try:
        if action == "confirm":
            services.confirm_alert(alert, user=request.user, still_there=True)
        elif action == "gone":
            services.confirm_alert(alert, user=request.user, still_there=False)
        elif action == "verify":
            services.verify_alert(alert, user=request.user)
        elif action == "resolve":
            services.resolve_alert(alert, user=request.user, note=note)
        elif action == "dismiss":
            services.dismiss_alert(alert, user=request.user, note=note)
        elif action == "retract":
            services.retract_alert(alert, user=request.user, reason=note)
    except (ValidationError, PermissionDenied, RateLimited) as exc:
        _fail(request, exc)
    else:
        messages.success(request, ACTIONS[action])
    if action == "dismiss" and not is_city_staff(request.user):
        return redirect(reverse("alerts:city"))
    return redirect(alert)


def neighborhood_panel(request: HttpRequest, neighborhood: Neighborhood) -> str:
    """The live alerts panel on the neighborhood page (a fixed number of queries)."""
    live.mark_cursor(request)
    alerts = list(services.feed(neighborhoods=[neighborhood])[: PANEL_SIZE + 1])
    more = len(alerts) > PANEL_SIZE
    alerts = alerts[:PANEL_SIZE]
    services.with_neighborhood_slugs(alerts)
    return render_to_string(
        "alerts/includes/neighborhood_panel.html",
        {
            "neighborhood": neighborhood,
            "alerts": alerts,
            "more": more,
            "live_topics": [f"neighborhood:{neighborhood.slug}"],
            "map_alerts": [services.alert_payload(a) for a in alerts],
            "can_report": can(request.user, "participate", neighborhood),
            "can_post_official": can(request.user, "post_official_notice"),
        },
        request=request,
    )
