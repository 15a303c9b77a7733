"""How cases reach the city's system: a backend chosen by ``CASE_FORWARDING_BACKEND``.

- :class:`LocalDesk` (default): the city works cases in this site's case desk; nothing to send.
- ``engagement.open311_client.Open311Forwarder``: each case is put in a persistent outbox
  (:class:`~engagement.models.OutboxMessage`) in the transaction that files it, then sent to the
  city's Open311 endpoint by a background task, with retries; statuses are polled back.
"""

from __future__ import annotations

from django.utils.module_loading import import_string

from .conf import app_settings
from .models import Case


class ForwardingBackend:
    """The interface: called inside the transaction that files a case."""

    name = "base"

    def case_filed(self, case: Case) -> None:  # pragma: no cover - interface
        raise NotImplementedError


class LocalDesk(ForwardingBackend):
    """Cases stay here: staff work them in the case desk."""

    name = "local"

    def case_filed(self, case: Case) -> None:
        return None


def backend() -> ForwardingBackend:
    return import_string(app_settings.CASE_FORWARDING_BACKEND)()
