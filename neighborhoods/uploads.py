"""Files survive a form that comes back with an error.

A browser cannot put a chosen file back into a file input, so when a form with photos is refused
for another reason (a missing title, a pin outside the neighborhood, a rate limit) the files that
came with it are kept on the server, private to the person, and the form lists them with a
checkbox each (``held-<field>``, checked). The next submission brings them back as uploads of
the field, alongside any newly chosen files; unticking one lets it go. A view does three things::

    files = uploads.with_held(request, "photos")      # request.FILES plus the kept files
    form = ThreadForm(request.POST, files)
    ...                                               # on success:
    uploads.release(files, "photos")
    ...                                               # when the form comes back:
    context["held"] = uploads.hold(request, form, files, "photos")

and its template includes ``neighborhoods/includes/held_uploads.html`` beside the file input.
Files the field itself refused (not a photo, too many) are not kept: the person chooses again.
Kept files are the bytes as uploaded; they are checked and re-encoded only when finally used,
exactly as if they had been chosen again. They expire after ``HELD_UPLOAD_HOURS``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from django import forms
from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import HttpRequest
from django.utils import timezone
from django.utils.datastructures import MultiValueDict

from .conf import app_settings
from .models import HeldUpload

PREFIX = "held-"


@dataclass(frozen=True)
class Held:
    """A kept file, as the form lists it."""

    key: str
    name: str
    size: int


def _owner(request: HttpRequest):
    user = getattr(request, "user", None)
    return user if user is not None and user.is_authenticated else None


def _cutoff():
    return timezone.now() - timedelta(hours=app_settings.HELD_UPLOAD_HOURS)


def _keys(request: HttpRequest, field: str) -> list[uuid.UUID]:
    keys = []
    for value in request.POST.getlist(PREFIX + field)[: app_settings.HELD_UPLOADS_PER_PERSON]:
        try:
            keys.append(uuid.UUID(value))
        except ValueError:
            continue
    return keys


def with_held(request: HttpRequest, *fields: str) -> MultiValueDict:
    """The request's files, with the kept files its POST names added to their fields (kept files
    first, in the order they were first chosen). Only the owner's own, unexpired files count."""
    files = request.FILES.copy()
    owner = _owner(request)
    if owner is None or request.method != "POST":
        return files
    for field in fields:
        keys = _keys(request, field)
        if not keys:
            continue
        kept = HeldUpload.objects.filter(
            owner=owner, field=field, key__in=keys, created_at__gte=_cutoff()
        ).order_by("created_at", "pk")
        restored = []
        for row in kept:
            upload = SimpleUploadedFile(row.name, bytes(row.data), row.content_type or None)
            upload.held_key = str(row.key)
            restored.append(upload)
        files.setlist(field, restored + files.getlist(field))
    return files


def release(files: MultiValueDict, *fields: str) -> None:
    """Forget the kept files among ``files`` (the form they came back to has been accepted)."""
    keys = [
        upload.held_key
        for field in fields
        for upload in files.getlist(field)
        if getattr(upload, "held_key", None)
    ]
    if keys:
        HeldUpload.objects.filter(key__in=keys).delete()


def _read(upload) -> bytes:
    upload.seek(0)
    data = upload.read()
    upload.seek(0)
    return data


def hold(
    request: HttpRequest, form: forms.Form, files: MultiValueDict, *fields: str
) -> dict[str, list[Held]]:
    """Keep the files of ``fields`` that came with a refused ``form``; return them by field for
    the template. A field with errors of its own keeps nothing (its files were the problem)."""
    owner = _owner(request)
    if owner is None:
        return {}
    HeldUpload.objects.filter(created_at__lt=_cutoff()).delete()
    shown: dict[str, list[Held]] = {}
    for field in fields:
        uploads = files.getlist(field)
        if form.errors.get(field):
            release(files, field)
            continue
        widget = form.fields[field].widget if field in form.fields else None
        if uploads and not getattr(widget, "allow_multiple_selected", False):
            # One file per field: the form used the last one (a new choice replaces a kept one).
            release(MultiValueDict({field: uploads[:-1]}), field)
            uploads = uploads[-1:]
        kept: list[Held] = []
        for upload in uploads:
            key = getattr(upload, "held_key", None)
            if key is None:
                data = _read(upload)
                if not data or len(data) > app_settings.HELD_UPLOAD_MAX_BYTES:
                    continue
                row = HeldUpload.objects.create(
                    owner=owner,
                    field=field,
                    name=(upload.name or "photo")[-255:],
                    content_type=(getattr(upload, "content_type", "") or "")[:100],
                    size=len(data),
                    data=data,
                )
                key = str(row.key)
            kept.append(Held(key=key, name=upload.name or "photo", size=upload.size or 0))
        shown[field] = kept
    _trim(owner)
    return shown


def _trim(owner) -> None:
    """At most ``HELD_UPLOADS_PER_PERSON`` kept files per person: the oldest go first."""
    limit = app_settings.HELD_UPLOADS_PER_PERSON
    extra = list(
        HeldUpload.objects.filter(owner=owner)
        .order_by("-created_at", "-pk")
        .values_list("pk", flat=True)[limit : limit + 100]
    )
    if extra:
        HeldUpload.objects.filter(pk__in=extra).delete()
