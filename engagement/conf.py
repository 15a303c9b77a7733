"""Settings of 311 cases and Open311, read from the host's ``ENGAGEMENT`` dict."""

from __future__ import annotations

from neighborhoods.conf import AppSettings

app_settings = AppSettings(
    {
        # How cases reach the city: the local case desk, or an Open311 forwarder (dotted path).
        "CASE_FORWARDING_BACKEND": "engagement.forwarding.LocalDesk",
        # The city's Open311 endpoint, for engagement.forwarding.Open311Forwarder.
        "OPEN311_FORWARD_URL": "",
        "OPEN311_FORWARD_API_KEY": "",
        "OPEN311_FORWARD_JURISDICTION": "",
        "OPEN311_FORWARD_FORMAT": "",  # "json" or "xml"; empty: as the city's discovery says
        "OPEN311_FORWARD_MAX_ATTEMPTS": 8,
        "OPEN311_FORWARD_RETRY_SECONDS": 30,
        "OPEN311_POLL_BATCH": 50,
        # The city's endpoint returns the request already filed for a repeated Idempotency-Key
        # (or device_id) instead of filing it again: a send whose outcome is unknown may then be
        # repeated even when the city's request list cannot show whether it arrived.
        "OPEN311_FORWARD_IDEMPOTENT": False,
        # This site's Open311 server.
        "OPEN311_JURISDICTION": "",
        "OPEN311_CONTACT": "311 — call or use the web site",
        "OPEN311_KEY_SERVICE": "Ask the city's 311 office for a key.",
        "OPEN311_PAGE_SIZE": 50,
        "OPEN311_MAX_PAGE_SIZE": 500,
        # Working days: Monday=0 … Sunday=6; the local hour by which a case is due on its day.
        "CASE_WORKING_WEEKDAYS": (0, 1, 2, 3, 4),
        "CASE_DUE_HOUR": 17,
        # Days after closing during which the reporter or a supporter may reopen or contest.
        "CASE_CONTEST_DAYS": 14,
        # Cases a person may file per hour (five times that per address), supports per hour.
        "CASE_RATE": (10, 3600),
        "CASE_SUPPORT_RATE": (60, 3600),
        # Radius (metres) of "open cases of the same type nearby" shown before filing.
        "CASE_NEARBY_M": 150,
        # Photo limits of cases.
        "CASE_MAX_PHOTOS": 4,
        "CASE_PHOTO_MAX_BYTES": 8 * 1024 * 1024,
        "CASE_PHOTO_MAX_SIDE": 2048,
        # Tracking numbers: two-digit year, a dash and at least this many digits (25-000123).
        "CASE_NUMBER_DIGITS": 6,
    }
)
