"""Fixtures for the real-browser tests: headless Chromium through Playwright's sync API.

The system's Chromium (``/usr/bin/chromium``) is used; Playwright never downloads a browser.
Without it the browser tests are skipped, or fail when the ``CI`` variable is set, so that a
CI job cannot silently pass without having run them.

Playwright's sync API keeps an asyncio event loop running in the test thread for as long as it
is started, so Django's async-safety check would refuse every ORM call made by the tests (and by
``transactional_db``'s flush). ``DJANGO_ALLOW_ASYNC_UNSAFE`` is set while Playwright runs, and
the browser tests are moved to the end of the run, so that no other test runs beside that loop.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DEFAULT_TIMEOUT_MS = 10_000
LOCAL_HOSTS = {"127.0.0.1", "localhost", "[::1]", "::1"}

PHILLY_FILE = (
    Path(__file__).resolve().parents[2]
    / "neighborhoods"
    / "data"
    / "philadelphia-neighborhoods.geojson"
)

# Run before the page's own scripts: keep every Leaflet map django-leaflet creates, by the id
# of its container. django-leaflet announces each map with its documented ``map:init`` event;
# the site keeps no map in a global (django-leaflet's NO_GLOBALS is on).
CAPTURE_MAPS = """
window.__testMaps = {};
window.addEventListener("map:init", function (event) {
  window.__testMaps[event.detail.id] = event.detail.map;
});
"""


def pytest_collection_modifyitems(config, items):
    """Browser tests last: nothing else runs while Playwright's event loop is alive."""
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)


def _unavailable(reason: str):
    if os.environ.get("CI"):
        pytest.fail(
            f"{reason} (the CI variable is set, so the browser tests must run)", pytrace=False
        )
    pytest.skip(reason)


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for the whole session."""
    if not CHROMIUM.exists():
        _unavailable(f"no Chromium at {CHROMIUM}: install the system's chromium package")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("Playwright is not installed: pip install -e '.[dev]'")

    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
            )
            try:
                yield chromium
            finally:
                chromium.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


class PageErrors:
    """JavaScript errors and failed local requests seen by one page (or context)."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def watch(self, page) -> None:
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.errors.append(f"uncaught: {error}"))

    def _console(self, message) -> None:
        if message.type == "error":
            where = message.location or {}
            self.errors.append(f"console.error: {message.text} ({where.get('url', '?')})")

    def check(self) -> None:
        __tracebackhide__ = True
        if self.errors:
            pytest.fail(
                "the page logged JavaScript errors:\n" + "\n".join(self.errors), pytrace=False
            )


def _local_only(route) -> None:
    """The site makes no outside requests; any attempt fails fast instead of hanging."""
    host = urlsplit(route.request.url).hostname or ""
    if route.request.url.startswith(("data:", "blob:")) or host in LOCAL_HOSTS:
        route.continue_()
    else:
        route.abort()


@pytest.fixture
def new_page(browser, asgi_server, transactional_db):
    """``new_page(**context_options)``: a fresh context and page, error-checked at the end.

    Each page gets the default timeout, a hook that exposes the Leaflet maps as
    ``window.__testMaps[id]``, and a check that fails the test if it logged a JavaScript error.
    """
    opened: list[tuple[object, PageErrors]] = []

    def make(**context_options):
        context_options.setdefault("base_url", asgi_server)
        context_options.setdefault("viewport", {"width": 1280, "height": 900})
        context = browser.new_context(**context_options)
        context.set_default_timeout(DEFAULT_TIMEOUT_MS)
        context.set_default_navigation_timeout(DEFAULT_TIMEOUT_MS)
        context.route("**/*", _local_only)
        context.add_init_script(CAPTURE_MAPS)
        page = context.new_page()
        errors = PageErrors()
        errors.watch(page)
        opened.append((context, errors))
        return page

    yield make
    for context, _ in opened:
        context.close()
    for _, errors in opened:
        errors.check()


@pytest.fixture
def page(new_page):
    """A page in a fresh browser context, JavaScript on."""
    return new_page()


@pytest.fixture
def philadelphia(transactional_db) -> dict:
    """The real 159 Philadelphia neighborhoods, imported as an administrator would.

    Live-server tests need committed rows (the server thread sees them), hence
    ``transactional_db``; the tables are flushed after the test.
    """
    from neighborhoods.importer import import_neighborhoods, read_feature_collection
    from neighborhoods.models import Neighborhood

    import_neighborhoods(read_feature_collection(PHILLY_FILE), name_property="LISTNAME")
    return {n.name: n for n in Neighborhood.objects.all()}


@pytest.fixture(scope="session")
def asgi_server(django_db_setup):
    """The site's full ASGI application (HTTP and the /ws/live/ socket) served by daphne.

    pytest-django's ``live_server`` speaks WSGI only, so the live-update journeys use this one:
    daphne's Twisted reactor runs in a thread of the test process (it can run once per
    process, hence the session scope), on the test database and the configured channel layer.
    """
    import threading

    from daphne.server import Server
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
    from django.core.asgi import get_asgi_application

    from engagement.asgi import build_application

    application = build_application(ASGIStaticFilesHandler(get_asgi_application()))
    server = Server(
        application=application,
        endpoints=["tcp:port=0:interface=127.0.0.1"],
        signal_handlers=False,
        websocket_timeout=-1,
    )
    thread = threading.Thread(target=server.run, name="daphne", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.listening_addresses:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("daphne did not start")
        time.sleep(0.02)
    host, port = server.listening_addresses[0]
    yield f"http://{host}:{port}"
    from twisted.internet import reactor

    reactor.callFromThread(reactor.stop)
    thread.join(timeout=5)


def signed_in_context(browser, base_url: str, user, **options):
    """A browser context that carries ``user``'s session cookie (no log-in form needed)."""
    from django.test import Client

    client = Client()
    client.force_login(user)
    options.setdefault("viewport", {"width": 1280, "height": 900})
    context = browser.new_context(base_url=base_url, **options)
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    context.route("**/*", _local_only)
    context.add_init_script(CAPTURE_MAPS)
    host = urlsplit(base_url).hostname
    context.add_cookies(
        [
            {
                "name": "sessionid",
                "value": client.cookies["sessionid"].value,
                "domain": host,
                "path": "/",
            }
        ]
    )
    return context


def in_test_thread(write, *args, retries: int = 10, **kwargs):
    """Run a service call that writes from the test thread while the live server runs.

    On SQLite the live-server tests share one in-memory database in shared-cache mode, where a
    write meets "database table is locked" (instead of waiting) while the server thread reads
    that table. The services write atomically, so trying again is safe.
    """
    from django.db import OperationalError

    for attempt in range(retries):
        try:
            return write(*args, **kwargs)
        except OperationalError as exc:
            if "locked" not in str(exc) or attempt == retries - 1:
                raise
            time.sleep(0.2)
    return None
