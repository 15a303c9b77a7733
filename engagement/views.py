"""Public pages of 311 cases: the tracker, the case page, "my requests", reporting by every
channel, escalating a discussion, and the panels on thread and neighborhood pages.

Every form works without JavaScript; ``cases.js`` adds maps, live updates, the questions of a
newly chosen type and the open requests nearby. The views only translate: ``services`` decides
who may do what and raises ``ValidationError`` (with field names), ``PermissionDenied`` (the
reason, shown on a 403 page) or ``RateLimited`` (when to retry).

A reporter's identity, contact details and home are shown to city staff only.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from alerts import live
from forums import services as forums
from forums.models import Thread
from neighborhoods import uploads
from neighborhoods.geometry import GeometryError, validate_point
from neighborhoods.http import safe_next as _next_url
from neighborhoods.models import Neighborhood
from neighborhoods.permissions import has_verified_email, is_authenticated, is_city_staff
from neighborhoods.ratelimit import RateLimited, client_ip

from . import services
from .forms import (
    CaseForm,
    EscalationForm,
    OnBehalfForm,
    PhoneForm,
    ReopenForm,
    ReportForm,
    StatusForm,
    SurveyForm,
    TrackerFilterForm,
    active_service_types,
    initial_from,
    neighborhood_choices,
)
from .models import Case, CaseFollow, CaseSupport, ServiceType, SurveyResponse

PAGE_SIZE = 25
PANEL_SIZE = 5
HEAVY_NEIGHBORHOOD_FIELDS = ("neighborhood__boundary", "neighborhood__source_properties")
# Buttons that re-render a form without filing: new questions for another type, nearby requests.
STEPS = {"questions", "check"}


# Helpers ------------------------------------------------------------------------------------


def _denied(request: HttpRequest, reason: str, *, back: str = "") -> HttpResponse:
    return render(
        request,
        "engagement/denied.html",
        {"reason": reason or "You are not allowed to do this.", "back": back},
        status=403,
    )


def _form_errors(form: CaseForm | ReopenForm | SurveyForm, exc: ValidationError) -> None:
    """Put a service's ValidationError on the form's fields (or on the form)."""
    if not hasattr(exc, "error_dict"):
        for message in exc.messages:
            form.add_error(None, message)
        return
    for field, errors in exc.error_dict.items():
        target = form.field_for(field) if hasattr(form, "field_for") else field
        if target not in form.fields:
            target = None
        for error in errors:
            form.add_error(target, error)


def _message_of(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return " ".join(exc.messages)
    return str(exc) or "You are not allowed to do this."


def _case_or_404(tracking_number: str) -> Case:
    case = services.find_case(tracking_number)
    if case is None:
        raise Http404("No such request.")
    return case


def desk_url(case: Case) -> str:
    """Where staff work the case: its page in the case desk, or the admin's home."""
    try:
        return reverse("case_desk:case", args=[case.tracking_number])
    except NoReverseMatch:
        return "/admin/"


def _types_by_code(types: list[ServiceType]) -> dict[str, ServiceType]:
    return {kind.code: kind for kind in types}


def _point(data) -> tuple[float, float] | None:
    try:
        return validate_point(data.get("lat"), data.get("lon"))
    except (GeometryError, TypeError, ValueError):
        return None


def _nearby(service_type: ServiceType | None, data) -> list[tuple[Case, float]] | None:
    """Open requests of the type near the pin; ``None`` when there is nothing to look around."""
    point = _point(data)
    if service_type is None or point is None:
        return None
    return services.nearby_open_cases(service_type, *point)


def _idempotency_key(channel: str, user, form: CaseForm) -> str:
    token = (form.cleaned_data.get("idempotency_key") or "").strip()
    return f"{channel}:{user.pk}:{token}"[:100] if token else ""


# The tracker --------------------------------------------------------------------------------


def _case_rows(cases) -> list[Case]:
    return list(cases.defer(*HEAVY_NEIGHBORHOOD_FIELDS))


def map_points(cases: list[Case]) -> list[dict]:
    """What the tracker's map shows of each case (public data only)."""
    return [
        {
            "tracking_number": c.tracking_number,
            "url": c.get_absolute_url(),
            "lat": c.lat,
            "lon": c.lon,
            "status": c.status,
            "status_label": c.get_status_display(),
            "service_name": c.service_type.name,
            "is_overdue": c.is_overdue,
        }
        for c in cases
        if c.lat is not None
    ]


@require_GET
def case_list(request: HttpRequest) -> HttpResponse:
    types = list(ServiceType.objects.order_by("name"))
    filters = TrackerFilterForm(
        request.GET or None, types=types, neighborhoods=neighborhood_choices()
    )
    chosen = filters.filters()
    cases = services.filter_cases(services.public_cases(), **chosen)
    page = Paginator(cases.defer(*HEAVY_NEIGHBORHOOD_FIELDS), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    rows = list(page.object_list)
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "engagement/case_list.html",
        {
            "filters": filters,
            "chosen": chosen,
            "page": page,
            "cases": rows,
            "map_cases": map_points(rows),
            "query": query.urlencode(),
            "filtered": any(chosen.values()),
        },
    )


@login_required
@require_GET
def my_requests(request: HttpRequest) -> HttpResponse:
    cases = services.my_cases(request.user).defer(*HEAVY_NEIGHBORHOOD_FIELDS)
    page = Paginator(cases, PAGE_SIZE).get_page(request.GET.get("page"))
    rows = list(page.object_list)
    reported = {c.pk for c in rows if c.reporter_id == request.user.pk}
    return render(
        request,
        "engagement/my_requests.html",
        {"page": page, "cases": rows, "reported": reported, "map_cases": map_points(rows)},
    )


# The case page ------------------------------------------------------------------------------


def _linked_threads(case: Case) -> list[Thread]:
    return list(
        Thread.objects.listed()
        .filter(Q(pk=case.thread_id) | Q(linked_cases=case))
        .select_related("neighborhood")
        .defer(*HEAVY_NEIGHBORHOOD_FIELDS)
        .distinct()
        .order_by("created_at")
    )


def _case_context(request: HttpRequest, case: Case, **forms_) -> dict:
    user = request.user
    role = services.case_viewer_role(user, case)
    staff = role == "staff"
    signed_in = is_authenticated(user)
    me_too = signed_in and CaseSupport.objects.filter(case=case, user=user).exists()
    following = signed_in and CaseFollow.objects.filter(case=case, user=user).exists()
    survey_answer = None
    asked = case.status == Case.Status.CLOSED and role in ("reporter", "supporter")
    if asked:
        survey_answer = SurveyResponse.objects.filter(case=case, user=user).first()
    can_work = services.can_work(user, case)
    context = {
        "case": case,
        "role": role,
        "staff": staff,
        "can_work": can_work,
        "timeline": list(services.timeline(case, staff=staff)),
        "answers": services.answer_labels(case),
        "photos": list(case.photos.all()),
        "threads": _linked_threads(case),
        "me_too": me_too,
        "following": following,
        "can_reopen": services.can_reopen(user, case),
        "contest_days": services.app_settings.CASE_CONTEST_DAYS,
        "survey_asked": asked,
        "survey_answer": survey_answer,
        "survey_form": forms_.get("survey_form") or SurveyForm(),
        "reopen_form": forms_.get("reopen_form") or ReopenForm(),
        "held": forms_.get("held") or {},
        "status_form": forms_.get("status_form") or (StatusForm() if can_work else None),
        "topic": f"case:{case.tracking_number}",
        "payload": services.case_payload(case),
    }
    if staff:
        context["desk_url"] = desk_url(case)
        context["reporter"] = case.reporter
        context["filed_by"] = case.filed_by
    return context


def _render_case(request: HttpRequest, case: Case, *, status: int = 200, **forms_) -> HttpResponse:
    live.mark_cursor(request)
    return render(
        request,
        "engagement/case_detail.html",
        _case_context(request, case, **forms_),
        status=status,
    )


@require_GET
def case_detail(request: HttpRequest, tracking_number: str) -> HttpResponse:
    live.mark_cursor(request)
    return _render_case(request, _case_or_404(tracking_number))


CASE_ACTIONS = {"support", "withdraw", "follow", "unfollow", "reopen", "survey", "status"}


@require_POST
def case_action(request: HttpRequest, tracking_number: str, action: str) -> HttpResponse:
    if action not in CASE_ACTIONS:
        raise Http404("No such action.")
    case = _case_or_404(tracking_number)
    url = case.get_absolute_url()
    if not is_authenticated(request.user):
        return redirect(f"{reverse('account_login')}?next={url}")
    if action == "reopen":
        return _reopen(request, case)
    if action == "survey":
        return _survey(request, case)
    if action == "status":
        return _change_status(request, case)
    back = _next_url(request, url)
    try:
        message = _simple_action(request, case, action)
    except PermissionDenied as exc:
        return _denied(request, str(exc), back=url)
    except (ValidationError, RateLimited) as exc:
        messages.error(request, _message_of(exc))
    else:
        messages.success(request, message)
        if action == "support":
            back = url
    return redirect(back)


def _simple_action(request: HttpRequest, case: Case, action: str) -> str:
    user = request.user
    if action == "support":
        already = CaseSupport.objects.filter(case=case, user=user).exists()
        services.support(case, user=user, ip=client_ip(request))
        if already:  # the reporter, or a second "me too"
            mine = "You reported it" if case.reporter_id == user.pk else "You said “me too” before"
            return f"{mine}: request {case.tracking_number} counts you already."
        return (
            f"Thank you: your “me too” counts on request {case.tracking_number}, and you will "
            "hear how it goes."
        )
    if action == "withdraw":
        services.withdraw_support(case, user=user)
        return "Your “me too” is withdrawn."
    if action == "follow":
        CaseFollow.objects.get_or_create(case=case, user=user)
        return "You follow this request: updates reach your inbox."
    CaseFollow.objects.filter(case=case, user=user).delete()
    return "You no longer follow this request."


def _reopen(request: HttpRequest, case: Case) -> HttpResponse:
    files = uploads.with_held(request, "photo")
    form = ReopenForm(request.POST, files)
    if form.is_valid():
        try:
            services.reopen(
                case,
                user=request.user,
                comment=form.cleaned_data["comment"],
                photo=form.cleaned_data.get("photo"),
            )
        except PermissionDenied as exc:
            return _denied(request, str(exc), back=case.get_absolute_url())
        except ValidationError as exc:
            _form_errors(form, exc)
        else:
            uploads.release(files, "photo")
            messages.success(request, "The request is open again and back with the department.")
            return redirect(case)
    held = uploads.hold(request, form, files, "photo")
    return _render_case(request, case, reopen_form=form, held=held, status=400)


def _survey(request: HttpRequest, case: Case) -> HttpResponse:
    form = SurveyForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            services.answer_survey(
                case,
                user=request.user,
                fixed=data["fixed"],
                satisfaction=data["satisfaction"],
                comment=data["comment"],
            )
        except PermissionDenied as exc:
            return _denied(request, str(exc), back=case.get_absolute_url())
        except ValidationError as exc:
            if SurveyResponse.objects.filter(case=case, user=request.user).exists():
                messages.info(request, _message_of(exc))
                return redirect(case.get_absolute_url() + "#survey")
            _form_errors(form, exc)
        else:
            messages.success(request, "Thank you for answering: it helps the city do better.")
            return redirect(case.get_absolute_url() + "#survey")
    return _render_case(request, case, survey_form=form, status=400)


def _change_status(request: HttpRequest, case: Case) -> HttpResponse:
    form = StatusForm(request.POST)
    if not services.can_work(request.user, case):
        return _denied(
            request,
            f"Only staff of {case.department.name} (or a supervisor) can work this case.",
            back=case.get_absolute_url(),
        )
    if form.is_valid():
        data = form.cleaned_data
        try:
            services.change_status(
                case,
                user=request.user,
                status=data["status"],
                note=data["note"],
                resolution=data["resolution"],
                duplicate_of=data["duplicate_of"].strip() or None,
                responsible_party=data["responsible_party"],
                scheduled_for=data["scheduled_for"],
                public=data["public"],
            )
        except PermissionDenied as exc:
            return _denied(request, str(exc), back=case.get_absolute_url())
        except ValidationError as exc:
            _form_errors(form, exc)
        else:
            messages.success(request, "The status is updated; everyone following is told.")
            return redirect(case)
    case = services.find_case(case.tracking_number)
    return _render_case(request, case, status_form=form, status=400)


# Filing -------------------------------------------------------------------------------------

CHANNEL_PAGES = {
    Case.Channel.WEB: {
        "form": ReportForm,
        "url": "engagement:report",
        "template": "engagement/report_form.html",
        "title": "Report a problem to 311",
        "submit": "Send the request",
    },
    Case.Channel.PHONE: {
        "form": PhoneForm,
        "url": "engagement:report-phone",
        "template": "engagement/report_form.html",
        "title": "Record a call",
        "submit": "Record the request",
    },
    Case.Channel.LIAISON: {
        "form": OnBehalfForm,
        "url": "engagement:report-on-behalf",
        "template": "engagement/report_form.html",
        "title": "Report for a neighbour",
        "submit": "Send the request for them",
    },
}


def _filing_page(request: HttpRequest, channel: str) -> HttpResponse:
    """The form of a channel: choose a type, answer its questions, place it, describe it."""
    page = CHANNEL_PAGES[channel]
    form_class = page["form"]
    types = active_service_types()
    by_code = _types_by_code(types)
    post = request.method == "POST"
    data = request.POST if post else request.GET
    chosen = by_code.get(data.get("service_type", ""))
    step = data.get("step", "")
    status = 200
    nearby = None
    held: dict = {}
    if post and step not in STEPS:
        files = uploads.with_held(request, "photos")
        form = form_class(request.POST, files, service_type=chosen, types=types)
        if form.is_valid():
            if chosen is None:
                form.add_error("service_type", "Choose the kind of problem.")
            else:
                try:
                    filed = _file(request, channel, form, chosen)
                except ValidationError as exc:
                    _form_errors(form, exc)
                except RateLimited as exc:
                    form.add_error(None, str(exc))
                    status = 429
                except PermissionDenied as exc:
                    return _denied(request, str(exc), back=reverse(page["url"]))
                else:
                    uploads.release(files, "photos")
                    return _filed(request, filed)
        status = status if status != 200 else 400
        held = uploads.hold(request, form, files, "photos")
    else:
        form = form_class(initial=initial_from(data, form_class), service_type=chosen, types=types)
        if post:  # a step of a posted form (phone, liaison): its files stay with it
            held = uploads.hold(request, form, uploads.with_held(request, "photos"), "photos")
        if step == "check":
            nearby = _nearby(chosen, data)
    return render(
        request,
        page["template"],
        {
            "form": form,
            "page": page,
            "channel": channel,
            "action": reverse(page["url"]),
            "service_type": chosen,
            "types": types,
            "nearby": nearby,
            "checked": nearby is not None,
            "nearby_url": reverse("api-cases-nearby"),
            "step_method": "get" if channel == Case.Channel.WEB else "post",
            "held": held,
            # A resident's map opens on their own neighborhood rather than the whole city.
            "home_boundary": _home_boundary(request.user) if channel == Case.Channel.WEB else None,
        },
        status=status,
    )


def _home_boundary(user) -> dict | None:
    profile = getattr(user, "engagement_profile", None) if is_authenticated(user) else None
    home = profile.home_neighborhood if profile and profile.home_neighborhood_id else None
    return home.boundary if home else None


def _file(request: HttpRequest, channel: str, form: CaseForm, service_type: ServiceType):
    data = form.cleaned_data
    user = request.user
    on_behalf = channel != Case.Channel.WEB
    return services.file_case(
        service_type=service_type,
        description=data["description"],
        lat=data["lat"],
        lon=data["lon"],
        address=data["address"],
        answers=form.answers(),
        photos=data.get("photos") or [],
        reporter=None if on_behalf else user,
        channel=channel,
        filed_by=user if on_behalf else None,
        contact_name=data.get("contact_name", ""),
        contact_email=data.get("contact_email", ""),
        contact_phone=data.get("contact_phone", ""),
        idempotency_key=_idempotency_key(channel, user, form),
        ip=client_ip(request),
    )


def _filed(request: HttpRequest, filed: services.Filed) -> HttpResponse:
    number = filed.case.tracking_number
    if filed.created:
        messages.success(
            request,
            f"Your request is filed. Its tracking number is {number}; "
            "you will hear about every step.",
        )
    else:
        messages.info(request, f"This request was already filed as {number}.")
    return redirect(filed.case)


@login_required
@require_http_methods(["GET", "POST"])
def report(request: HttpRequest) -> HttpResponse:
    if not has_verified_email(request.user):
        return _denied(
            request,
            "Verify your e-mail address before reporting a problem: follow the link we sent you.",
            back=reverse("engagement:cases"),
        )
    return _filing_page(request, Case.Channel.WEB)


@login_required
@require_http_methods(["GET", "POST"])
def report_phone(request: HttpRequest) -> HttpResponse:
    if not is_city_staff(request.user):
        return _denied(request, "Only city staff record requests taken by phone.")
    return _filing_page(request, Case.Channel.PHONE)


@login_required
@require_http_methods(["GET", "POST"])
def report_on_behalf(request: HttpRequest) -> HttpResponse:
    if not services.is_liaison_for(request.user, None):
        return _denied(
            request,
            "Only neighborhood liaisons of a verified organization file for a neighbour. "
            "Ask the city's 311 office to designate you.",
        )
    return _filing_page(request, Case.Channel.LIAISON)


# Escalation from a discussion ---------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def escalate(request: HttpRequest, thread_id: int) -> HttpResponse:
    thread = get_object_or_404(
        Thread.objects.select_related("neighborhood", "category"), pk=thread_id
    )
    if not forums.can_read_thread(request.user, thread):
        raise Http404("No such discussion.")
    existing = services.open_case_for_thread(thread)
    if existing is not None:
        messages.info(
            request, f"This discussion is already 311 request {existing.tracking_number}."
        )
        return redirect(existing)
    if not services.can_escalate(request.user, thread):
        return _denied(
            request,
            "The discussion's author, an organizer of the neighborhood or city staff can send "
            "it to 311.",
            back=thread.get_absolute_url(),
        )
    draft = services.escalation_draft(thread)
    types = active_service_types()
    by_code = _types_by_code(types)
    post = request.method == "POST"
    data = request.POST if post else request.GET
    chosen = by_code.get(data.get("service_type", "")) if "service_type" in data else None
    if chosen is None and "service_type" not in data:
        chosen = draft["service_type"] if draft["service_type"] in types else None
    step = data.get("step", "")
    status = 200
    if post and step not in STEPS:
        form = EscalationForm(request.POST, service_type=chosen, types=types)
        if form.is_valid():
            if chosen is None:
                form.add_error("service_type", "Choose the kind of problem.")
            else:
                values = form.cleaned_data
                try:
                    filed = services.escalate_thread(
                        thread,
                        user=request.user,
                        service_type=chosen,
                        description=values["description"],
                        answers=form.answers(),
                        lat=values["lat"],
                        lon=values["lon"],
                        address=values["address"],
                        idempotency_key=_idempotency_key("escalate", request.user, form),
                    )
                except ValidationError as exc:
                    _form_errors(form, exc)
                except RateLimited as exc:
                    form.add_error(None, str(exc))
                    status = 429
                except PermissionDenied as exc:
                    return _denied(request, str(exc), back=thread.get_absolute_url())
                else:
                    if filed.created:
                        messages.success(
                            request,
                            f"The discussion is now 311 request {filed.case.tracking_number}. "
                            "Everyone who supports it will hear how it goes.",
                        )
                    else:
                        messages.info(
                            request,
                            f"This discussion is already 311 request {filed.case.tracking_number}.",
                        )
                    return redirect(filed.case)
        status = status if status != 200 else 400
    elif step in STEPS or data:
        form = EscalationForm(
            initial=initial_from(data, EscalationForm), service_type=chosen, types=types
        )
    else:
        form = EscalationForm(
            initial={
                "description": draft["description"],
                "lat": draft["lat"],
                "lon": draft["lon"],
            },
            service_type=chosen,
            types=types,
        )
    return render(
        request,
        "engagement/escalate_form.html",
        {
            "form": form,
            "thread": thread,
            "neighborhood": thread.neighborhood,
            "draft": draft,
            "suggested": draft["service_type"],
            "service_type": chosen,
            "action": reverse("engagement:escalate", args=[thread.pk]),
        },
        status=status,
    )


# Panels on other apps' pages ----------------------------------------------------------------


def _thread_case(thread: Thread) -> Case | None:
    """The thread's open case, or else its latest closed one."""
    case = services.open_case_for_thread(thread)
    if case is None:
        case = (
            Case.objects.filter(Q(thread=thread) | Q(threads=thread))
            .order_by("-created_at", "-id")
            .first()
        )
    if case is None:
        return None
    return services.find_case(case.tracking_number)


def thread_panel(request: HttpRequest, thread: Thread) -> str:
    """On a thread page: the case's badge and public timeline (live), or the way to 311."""
    case = _thread_case(thread)
    context = {"thread": thread, "case": case}
    if case is not None:
        context["timeline"] = list(services.timeline(case))
        context["survey_link"] = not case.is_open and services.is_supporter(case, request.user)
    else:
        if not thread.is_listed:
            return ""
        context["can_escalate"] = services.can_escalate(request.user, thread)
        context["suggested"] = forums.suggests_escalation(thread)
        if context["suggested"]:
            context["verified_supporters"] = forums.verified_supporter_count(thread)
        if not context["can_escalate"] and not context["suggested"]:
            context["quiet"] = True
    return render_to_string("engagement/includes/thread_panel.html", context, request=request)


def neighborhood_panel(request: HttpRequest, neighborhood: Neighborhood) -> str:
    """The "311 requests" panel on the neighborhood page (a fixed number of queries)."""
    cases = services.filter_cases(
        services.public_cases(), status="open", neighborhood=neighborhood.slug
    ).defer(*HEAVY_NEIGHBORHOOD_FIELDS)
    rows = list(cases[: PANEL_SIZE + 1])
    return render_to_string(
        "engagement/includes/neighborhood_panel.html",
        {
            "neighborhood": neighborhood,
            "cases": rows[:PANEL_SIZE],
            "more": len(rows) > PANEL_SIZE,
        },
        request=request,
    )
