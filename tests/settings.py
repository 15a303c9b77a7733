"""Test settings: the demo site's, with fast hashing and mail kept in memory.

``DATABASE_URL`` and ``REDIS_URL`` are honoured exactly as in the demo, so the same suite runs on
SQLite and in-memory layers by default and on PostgreSQL and Redis when they are set.
"""

import os

os.environ.setdefault("DJANGO_DEBUG", "0")

from demo.settings import *  # noqa: E402,F403
from demo.settings import DATABASES  # noqa: E402

DEBUG = False
ALLOWED_HOSTS = ["*"]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
if "MAILERS" in globals():
    MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
else:
    EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # In-memory test database; the demo's file and its pragmas are not wanted here.
    DATABASES["default"] = {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}
else:
    DATABASES["default"].setdefault("TEST", {})["NAME"] = os.environ.get(
        "TEST_DATABASE_NAME", "test_engagement"
    )
