"""The README's install steps, followed literally, give a working host Wagtail site."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

SETTINGS = """
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = "host-site-test"
DEBUG = False
ALLOWED_HOSTS = ["testserver", "127.0.0.1"]
INSTALLED_APPS = [
    "daphne",
    "sitecontent", "engagement", "forums", "alerts", "neighborhoods",
    "channels", "leaflet", "taggit", "rest_framework", "drf_spectacular",
    "django_tasks", "django_tasks_db",
    "allauth", "allauth.account", "allauth.socialaccount",
    "home",
    "wagtail.contrib.forms", "wagtail.contrib.redirects", "wagtail.embeds", "wagtail.sites",
    "wagtail.users", "wagtail.snippets", "wagtail.documents", "wagtail.images",
    "wagtail.search", "wagtail.admin", "wagtail", "modelcluster",
    "django.contrib.auth", "django.contrib.contenttypes", "django.contrib.sessions",
    "django.contrib.messages", "django.contrib.staticfiles",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "wagtail.contrib.redirects.middleware.RedirectMiddleware",
]
MIDDLEWARE += ["allauth.account.middleware.AccountMiddleware"]
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
ROOT_URLCONF = "mysite.urls"
ASGI_APPLICATION = "mysite.asgi.application"
TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "DIRS": [BASE_DIR / "templates"],
    "APP_DIRS": True,
    "OPTIONS": {"context_processors": [
        "django.template.context_processors.request",
        "django.contrib.auth.context_processors.auth",
        "django.contrib.messages.context_processors.messages",
    ]},
}]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": BASE_DIR / "db.sqlite3"}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
STATIC_URL = "/static/"
WAGTAIL_SITE_NAME = "Host"
WAGTAILADMIN_BASE_URL = "http://127.0.0.1"
WAGTAIL_ENABLE_UPDATE_CHECK = False
WAGTAIL_GRAVATAR_PROVIDER_URL = None
USE_TZ = True
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
REST_FRAMEWORK = {"DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema"}
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
ACCOUNT_ADAPTER = "neighborhoods.adapters.AccountAdapter"
LOGIN_REDIRECT_URL = "neighborhoods:profile"
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
ENGAGEMENT = {"PAGE_SIZE": 20}
"""

URLS = """
from django.urls import include, path
from wagtail import urls as wagtail_urls
from wagtail.admin import urls as wagtailadmin_urls

urlpatterns = [
    path("cms/", include(wagtailadmin_urls)),
    path("accounts/", include("allauth.urls")),
    path("", include("engagement.urls")),
    path("", include(wagtail_urls)),
]
"""

ASGI = """
import os
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
django_application = get_asgi_application()

from engagement.asgi import build_application  # noqa: E402

application = build_application(django_application)
"""

BASE_HTML = """{% load static %}<!DOCTYPE html>
<html lang="en"><head><title>{% block title %}{% endblock %} | Host</title>
<link rel="stylesheet" href="{% static 'engagement/site.css' %}">{% block extra_css %}{% endblock %}
</head><body><header>The host's own header</header>
<main id="main">{% block content %}{% endblock %}</main>{% block extra_js %}{% endblock %}
</body></html>
"""

CHECK = """
import django, json
django.setup()
from django.core.management import call_command
from django.test import Client
from neighborhoods.importer import import_neighborhoods

call_command("migrate", verbosity=0)
square = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]}
import_neighborhoods(
    {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"N": "Host Square"}, "geometry": square}]},
    name_property="N",
)
client = Client()
page = client.get("/neighborhoods/")
api = client.get("/api/v1/neighborhoods/locate/?lat=0.5&lon=0.5")
detail = client.get("/neighborhoods/host-square/")
signup = client.get("/accounts/signup/")
from mysite.asgi import application
print(json.dumps({
    "list": page.status_code,
    "host_header": b"The host's own header" in page.content,
    "lists_square": b"Host Square" in page.content,
    "detail": detail.status_code,
    "api": api.status_code,
    "api_slug": api.json().get("slug"),
    "signup": signup.status_code,
    "asgi": type(application).__name__,
}))
"""


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip())


@pytest.mark.slow
def test_a_host_wagtail_site_built_from_the_readme_steps_serves_the_plugin(tmp_path):
    write(tmp_path / "mysite/__init__.py", "")
    write(tmp_path / "mysite/settings.py", SETTINGS)
    write(tmp_path / "mysite/urls.py", URLS)
    write(tmp_path / "mysite/asgi.py", ASGI)
    write(tmp_path / "home/__init__.py", "")
    write(tmp_path / "templates/base.html", BASE_HTML)
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")},
        "DJANGO_SETTINGS_MODULE": "mysite.settings",
        # The host site only: the checkout is importable as the installed package would be.
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)]),
    }
    check = subprocess.run(
        [sys.executable, "-m", "django", "check", "--fail-level", "WARNING"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    run = subprocess.run(
        [sys.executable, "-c", CHECK],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    import json

    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result == {
        "list": 200,
        "host_header": True,
        "lists_square": True,
        "detail": 200,
        "api": 200,
        "api_slug": "host-square",
        "signup": 200,
        "asgi": "ProtocolTypeRouter",
    }
