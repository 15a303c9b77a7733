"""Admin pages that carry several small action forms, each posted back to the page itself.

A page lists its forms in ``get_forms`` (keyed by the name its submit button posts as ``form``)
and applies one in ``perform``; the mixin binds the posted one, reports a service's
``ValidationError`` on the form, refuses with a message on ``PermissionDenied`` and, on success,
says what was done and redirects, so a reload never repeats an action.
"""

from __future__ import annotations

from django import forms
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from wagtail.admin import messages


def add_service_errors(form: forms.Form, exc: ValidationError) -> None:
    """Put a service's ``ValidationError`` on the form: on its field when the form has one."""
    if not hasattr(exc, "error_dict"):
        form.add_error(None, exc.messages)
        return
    for field, messages_ in exc.message_dict.items():
        form.add_error(field if field in form.fields else None, messages_)


class ActionFormsMixin:
    """``post`` for a ``TemplateView`` whose context takes ``forms`` (see the module's text)."""

    unavailable_message = "That action is not available here."

    def get_forms(self, bound: str | None = None) -> dict[str, forms.Form]:
        """The page's forms by name; the one named ``bound`` is bound to the POST data."""
        raise NotImplementedError

    def perform(self, name: str, form: forms.Form) -> tuple[str, str]:
        """Apply the valid form ``name``; return what to say and the address to go to."""
        raise NotImplementedError

    def add_errors(self, form: forms.Form, exc: ValidationError) -> None:
        add_service_errors(form, exc)

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        name = request.POST.get("form", "")
        forms_ = self.get_forms(bound=name)
        form = forms_.get(name)
        if form is None:
            messages.error(request, self.unavailable_message)
            return redirect(request.path)
        status = 200
        if form.is_valid():
            try:
                done, url = self.perform(name, form)
            except ValidationError as exc:
                self.add_errors(form, exc)
            except PermissionDenied as exc:
                messages.error(request, str(exc) or "You may not do this.")
                status = 403
            else:
                messages.success(request, done)
                return redirect(url)
        if form.errors:
            messages.error(request, "Nothing was changed: see the form below.")
        return self.render_to_response(  # type: ignore[attr-defined]
            self.get_context_data(forms=forms_),  # type: ignore[attr-defined]
            status=status,
        )
