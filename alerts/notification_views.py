"""Pages of personal notifications: the inbox, marking read, one-click unsubscribe."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from neighborhoods.http import safe_next

from . import notify
from .models import Notification

INBOX_PAGE_SIZE = 25
CHANNEL_NAMES = {"email": "e-mail", "sms": "text messages", "push": "browser push"}


def _back(request: HttpRequest) -> str:
    return safe_next(request, reverse("alerts:inbox"))


@login_required
@require_GET
def inbox(request: HttpRequest) -> HttpResponse:
    notes = notify.inbox(request.user).only(
        "id", "kind", "severity", "title", "body", "url", "created_at", "read_at"
    )
    page = Paginator(notes, INBOX_PAGE_SIZE).get_page(request.GET.get("page"))
    unread = notify.unread_count(request.user)
    return render(
        request,
        "alerts/notifications/inbox.html",
        {"page": page, "unread": unread, "next": request.get_full_path()},
    )


@login_required
@require_POST
def mark_read(request: HttpRequest, pk: int) -> HttpResponse:
    if not Notification.objects.filter(pk=pk, user=request.user).exists():
        raise Http404("No such notification.")
    notify.mark_read(request.user, [pk])
    return redirect(_back(request))


@login_required
@require_POST
def mark_all_read(request: HttpRequest) -> HttpResponse:
    changed = notify.mark_read(request.user)
    if changed:
        messages.success(
            request, f"Marked {changed} notification{'s' if changed != 1 else ''} as read."
        )
    return redirect(_back(request))


def _bad_token(request: HttpRequest) -> HttpResponse:
    return render(request, "alerts/notifications/bad_token.html", status=400)


@csrf_exempt
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """Unsubscribe from the channel the signed token names.

    GET (the link in the mail) shows one button; its POST unsubscribes. Mail security scanners
    follow links, so a GET alone never turns anything off. POST is also RFC 8058's one-click
    (``List-Unsubscribe=One-Click``, sent by mail providers without cookies or a CSRF token):
    the token is the authorisation, so no session is needed.
    """
    try:
        user, channel = notify.read_unsubscribe_token(token)
    except notify.BadToken:
        return _bad_token(request)
    state = "confirm"
    if request.method == "POST":
        notify.set_channel_enabled(user, channel, False)
        state = "unsubscribed"
    return render(
        request,
        "alerts/notifications/unsubscribe.html",
        {
            "token": token,
            "channel": CHANNEL_NAMES.get(channel, channel),
            "state": state,
            "subscribed": state != "unsubscribed",
        },
    )


@require_POST
def resubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """Undo an unsubscribe (a form on the unsubscribe page; CSRF-protected)."""
    try:
        user, channel = notify.read_unsubscribe_token(token)
    except notify.BadToken:
        return _bad_token(request)
    notify.set_channel_enabled(user, channel, True)
    return render(
        request,
        "alerts/notifications/unsubscribe.html",
        {
            "token": token,
            "channel": CHANNEL_NAMES.get(channel, channel),
            "state": "resubscribed",
            "subscribed": True,
        },
    )
