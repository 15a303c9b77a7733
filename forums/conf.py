"""Settings of the forums, read from the host's ``ENGAGEMENT`` dict."""

from __future__ import annotations

from neighborhoods.conf import AppSettings

app_settings = AppSettings(
    {
        # Threads per page in feeds.
        "FORUM_PAGE_SIZE": 25,
        # Photos per thread, their size in bytes and longest side after re-encoding.
        "FORUM_MAX_PHOTOS": 4,
        "FORUM_PHOTO_MAX_BYTES": 8 * 1024 * 1024,
        "FORUM_PHOTO_MAX_SIDE": 2048,
        # How far (metres) outside its neighborhood a thread's pin may lie.
        "FORUM_PIN_TOLERANCE_M": 300,
        # Flag weight that hides content pending review; a moderator's or staff flag weighs this.
        "FORUM_FLAG_HIDE_WEIGHT": 3,
        # Rate limits per account and per address: (count, seconds).
        "FORUM_THREAD_RATE": (5, 3600),
        "FORUM_REPLY_RATE": (30, 3600),
        "FORUM_VOTE_RATE": (120, 3600),
        "FORUM_FLAG_RATE": (20, 3600),
        # Stricter for new members: hours during which links and photos are not allowed and
        # threads are limited to this many per day.
        "FORUM_NEW_MEMBER_HOURS": 24,
        "FORUM_NEW_MEMBER_THREADS_PER_DAY": 2,
        # Distance (metres) and title similarity (0–1) for "similar threads nearby".
        "FORUM_SIMILAR_DISTANCE_M": 500,
        "FORUM_SIMILAR_MIN_SCORE": 0.35,
        # Supporters that make a thread show the suggestion to escalate to a 311 case.
        "FORUM_ESCALATION_SUPPORTERS": 10,
        # Days within which an author may edit freely (later edits are still marked "edited").
        "FORUM_EDIT_WINDOW_DAYS": 30,
    }
)
