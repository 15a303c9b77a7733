"""API keys of Open311 clients: issued once, stored as a prefix and a SHA-256 hash.

The full key is shown to whoever issues it and never stored; a lost key is replaced, not
recovered. Each key has its own limit of requests per minute.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from neighborhoods.ratelimit import check_rate

from ..models import Open311Key

PREFIX_LENGTH = 8
# last_used_at is written at most this often per key, so busy clients do not write on every call.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class KeyNameTaken(ValueError):
    """A key with this name exists; replace it or choose another name."""


def _new_secret() -> str:
    while True:
        key = secrets.token_urlsafe(32)
        if key[0] not in "-_":  # easier to copy and paste from a terminal
            return key


def issue_key(
    name: str,
    *,
    requests_per_minute: int | None = None,
    created_by=None,
    replace: bool = False,
) -> tuple[Open311Key, str]:
    """Create a key called ``name`` and return it with the key itself (shown this once only).

    With ``replace`` an existing key of that name gets a new secret (the old one stops working)
    and is active again; otherwise an existing name raises :class:`KeyNameTaken`.
    """
    name = " ".join((name or "").split())
    if not name:
        raise ValueError("Give the key a name (the client or organisation using it).")
    secret = _new_secret()
    fields = {"prefix": secret[:PREFIX_LENGTH], "key_hash": Open311Key.hash(secret)}
    if requests_per_minute is not None:
        if requests_per_minute < 1:
            raise ValueError("The rate must be at least one request a minute.")
        fields["requests_per_minute"] = requests_per_minute
    with transaction.atomic():
        existing = Open311Key.objects.select_for_update().filter(name=name).first()
        if existing is not None:
            if not replace:
                raise KeyNameTaken(f"A key named “{name}” exists.")
            for field, value in fields.items():
                setattr(existing, field, value)
            existing.is_active = True
            existing.save()
            return existing, secret
        try:
            with transaction.atomic():
                key = Open311Key.objects.create(name=name, created_by=created_by, **fields)
        except IntegrityError:
            raise KeyNameTaken(f"A key named “{name}” exists.") from None
    return key, secret


def revoke_key(name: str) -> bool:
    """Stop a key working; ``False`` when no active key has that name."""
    return bool(Open311Key.objects.filter(name=name, is_active=True).update(is_active=False))


def authenticate(secret: str) -> Open311Key | None:
    """The active key matching ``secret``, or ``None``; records when it was last used."""
    secret = (secret or "").strip()
    if not secret or len(secret) > 200:
        return None
    key = Open311Key.objects.filter(key_hash=Open311Key.hash(secret), is_active=True).first()
    if key is None:
        return None
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION:
        Open311Key.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
    return key


def check_key_rate(key: Open311Key) -> None:
    """Count one request by ``key``; raises ``RateLimited`` past its requests per minute."""
    check_rate("open311", f"key{key.pk}", limit=key.requests_per_minute, period=60)
