"""Settings of the alerts app and the live layer, read from the host's ``ENGAGEMENT`` dict."""

from __future__ import annotations

from neighborhoods.conf import AppSettings

app_settings = AppSettings(
    {
        # Distinct verified members of the neighborhood who must confirm a resident report before
        # it shows as "Corroborated by N neighbours".
        "ALERT_CORROBORATION_THRESHOLD": 3,
        # Distinct members who mark a report gone before it is taken down (staff may at once).
        "ALERT_GONE_THRESHOLD": 3,
        # Hours a resident report lives when its category gives no lifetime; each confirmation
        # extends it by the category's lifetime from that moment.
        "ALERT_DEFAULT_LIFETIME_HOURS": 24,
        # Hours an official notice lives when no expiry is given.
        "OFFICIAL_DEFAULT_LIFETIME_HOURS": 72,
        # Largest radius (metres) of a point-and-radius area.
        "ALERT_MAX_RADIUS_M": 20_000,
        # Photos on alerts: accepted size in bytes and longest side in pixels after re-encoding.
        "ALERT_PHOTO_MAX_BYTES": 8 * 1024 * 1024,
        "ALERT_PHOTO_MAX_SIDE": 2048,
        # Resident reports per person per hour, and confirmations per person per minute.
        "ALERT_REPORTS_PER_HOUR": 5,
        "ALERT_CONFIRMATIONS_PER_MINUTE": 30,
        # Live layer: how long events are kept for clients that reconnect with ``since``.
        "LIVE_RETENTION_HOURS": 24,
        # Most events replayed to one subscription; beyond it the client is told to reload.
        "LIVE_REPLAY_LIMIT": 500,
        "LIVE_HEARTBEAT_SECONDS": 25,
        "LIVE_MAX_MESSAGE_BYTES": 4096,
        "LIVE_MAX_SUBSCRIPTIONS": 50,
        # Client messages per second (sustained) and burst, per connection.
        "LIVE_MESSAGES_PER_SECOND": 10,
        "LIVE_MESSAGE_BURST": 30,
        # Seconds a socket may stay unauthenticated before it is closed (token clients).
        "LIVE_AUTH_TIMEOUT_SECONDS": 10,
        # Notification delivery: backends per channel (dotted paths), retries and digest hour.
        "NOTIFICATION_BACKENDS": {
            "email": "alerts.backends.EmailBackend",
            "sms": "alerts.backends.RecordingBackend",
            "push": "alerts.backends.RecordingBackend",
        },
        "NOTIFICATION_MAX_ATTEMPTS": 5,
        "NOTIFICATION_RETRY_SECONDS": 60,
        "DIGEST_HOUR": 7,
        # External feeds pulled by ``manage.py ingest_alerts``: a list of dicts
        # {"name": ..., "url": ..., "format": "cap" | "atom" | "rss", "department": <slug>,
        #  "category": <slug>, "severity": <default severity>}.
        "ALERT_FEEDS": [],
        "ALERT_FEED_TIMEOUT_SECONDS": 10,
        "ALERT_FEED_MAX_BYTES": 5 * 1024 * 1024,
        # CAP 1.2 sender id and the sender name put on official notices published as CAP.
        "CAP_SENDER": "engagement@example.org",
        "CAP_SENDER_NAME": "",
    }
)
