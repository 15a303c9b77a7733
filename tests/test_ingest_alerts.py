"""``manage.py ingest_alerts``: feeds served by a real local HTTP server, real Philadelphia areas."""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from alerts.ingest import ingest_alert_feeds
from alerts.models import Alert, Severity
from tests.factories import DepartmentFactory, official_notice, square_polygon

DATA = Path(__file__).resolve().parent / "data" / "feeds"


# A real HTTP server on 127.0.0.1 ---------------------------------------------------------------


class FeedServer:
    """Serves ``tests/data/feeds`` (with ``@NOW@`` filled in) plus routes a test adds."""

    def __init__(self) -> None:
        self.routes: dict[str, object] = {}
        self.requests: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def do_GET(self) -> None:
                server.requests.append(self.path)
                route = server.routes.get(self.path)
                try:
                    if callable(route):
                        route(self)
                    elif isinstance(route, tuple):
                        status, body = route
                        self._send(status, body)
                    else:
                        path = DATA / self.path.lstrip("/")
                        if self.path.count("/") != 1 or not path.is_file():
                            self._send(404, b"not found")
                        else:
                            self._send(200, fill(path.read_text(encoding="utf-8")).encode())
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client stopped reading, as it should for hostile answers

            def _send(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.block_on_close = False
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def url(self, path: str) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/{path.lstrip('/')}"


def fill(text: str) -> str:
    now = timezone.now()
    return text.replace("@NOW@", now.isoformat()).replace("@RFC822_NOW@", format_datetime(now))


@pytest.fixture
def server():
    feeds = FeedServer()
    feeds.thread.start()
    yield feeds
    feeds.httpd.shutdown()
    feeds.httpd.server_close()


@pytest.fixture
def feeds(settings, server):
    """``feeds(name=path_or_url, ...)``: configure ALERT_FEEDS (CAP format unless told)."""

    def configure(*entries: dict) -> list[dict]:
        configured = []
        for entry in entries:
            entry = dict(entry)
            if not entry["url"].startswith(("http:", "https:", "file:", "ftp:")):
                entry["url"] = server.url(entry["url"])
            entry.setdefault("format", "cap")
            configured.append(entry)
        settings.ENGAGEMENT = {**getattr(settings, "ENGAGEMENT", {}), "ALERT_FEEDS": configured}
        return configured

    return configure


def ingest(*args: str) -> str:
    out = StringIO()
    call_command("ingest_alerts", *args, stdout=out)
    return out.getvalue()


def ingest_fails(*args: str) -> str:
    out = StringIO()
    with pytest.raises(CommandError, match="Every alert feed failed"):
        call_command("ingest_alerts", *args, stdout=out)
    return out.getvalue()


def names(alert: Alert) -> list[str]:
    return sorted(alert.neighborhoods.values_list("name", flat=True))


# CAP ------------------------------------------------------------------------------------------


def test_cap_index_creates_notices_where_their_real_polygons_and_circles_lie(philly, feeds):
    water = DepartmentFactory(name="Water Department", slug="water")
    feeds({"name": "City CAP", "url": "cap-index.atom", "department": "water"})

    output = ingest()

    polygon = Alert.objects.get(external_id="PWD-2026-0001")
    assert names(polygon) == ["Rittenhouse"]
    assert polygon.kind == Alert.Kind.OFFICIAL
    assert polygon.author is None
    assert polygon.department == water
    assert polygon.provenance == "Official · Water Department"
    assert polygon.source == Alert.Source.FEED
    assert polygon.source_name == "City CAP"
    assert polygon.source_url.endswith("/cap-rittenhouse.xml")
    assert polygon.severity == Severity.WARNING  # CAP Severe
    assert polygon.category.slug == "utilities"  # CAP Infra
    assert polygon.title == "Water main break near Rittenhouse Square"
    assert "Expect low pressure." in polygon.body
    assert "Run cold water" in polygon.body
    assert polygon.expires_at.year == 2099
    assert polygon.is_active()
    # The CAP polygon is lat,lon; the stored GeoJSON is lon,lat.
    assert polygon.area["coordinates"][0][0] == [-75.1745, 39.9475]

    circle = Alert.objects.get(external_id="PFD-2026-0042")
    assert names(circle) == ["Fishtown - Lower Kensington"]
    assert (circle.lat, circle.lon, circle.radius_m) == (39.97267, -75.12573, 300)
    assert circle.severity == Severity.ADVISORY  # CAP Moderate
    assert circle.category.slug == "public-safety"  # CAP Fire

    assert not Alert.objects.filter(external_id="NWS-MARINE-0001").exists()
    assert "City CAP: 2 created, 0 updated, 0 cancelled, 0 unchanged, 1 skipped" in output
    assert "NWS-MARINE-0001: the area lies outside every neighborhood" in output


def test_running_a_feed_twice_imports_nothing_new(philly, feeds):
    feeds({"name": "City CAP", "url": "cap-index.atom"})
    ingest()
    first = set(Alert.objects.values_list("pk", "version"))

    output = ingest()

    assert set(Alert.objects.values_list("pk", "version")) == first
    assert "0 created, 0 updated, 0 cancelled, 2 unchanged, 1 skipped" in output


def test_a_cap_update_edits_the_notice_and_a_cancel_retracts_it(philly, feeds):
    feeds(
        {"name": "original", "url": "cap-rittenhouse.xml"},
        {"name": "update", "url": "cap-rittenhouse-update.xml"},
        {"name": "cancel", "url": "cap-rittenhouse-cancel.xml"},
    )
    ingest("--feed", "original")
    alert = Alert.objects.get(external_id="PWD-2026-0001")

    assert "1 updated" in ingest("--feed", "update")
    alert.refresh_from_db()
    assert alert.title == "Water main break: Walnut Street closed"
    assert alert.severity == Severity.EMERGENCY
    assert alert.version == 2
    assert alert.revisions.get(version=1).title == "Water main break near Rittenhouse Square"
    assert "1 unchanged" in ingest("--feed", "update")
    alert.refresh_from_db()
    assert alert.version == 2

    assert "1 cancelled" in ingest("--feed", "cancel")
    alert.refresh_from_db()
    assert alert.status == Alert.Status.RETRACTED
    assert alert.status_note == "The main is repaired and pressure is back to normal."
    assert "1 unchanged" in ingest("--feed", "cancel")
    assert Alert.objects.count() == 1


def test_alert_update_and_cancel_in_one_index_are_applied_in_order_of_sending(
    philly, feeds, server
):
    entries = "".join(
        f"<entry><id>urn:x:{name}</id><title>t</title><updated>2026-11-20T10:00:00Z</updated>"
        f'<link type="application/cap+xml" href="{name}"/></entry>'
        # Listed newest first, as indexes usually are.
        for name in (
            "cap-rittenhouse-cancel.xml",
            "cap-rittenhouse-update.xml",
            "cap-rittenhouse.xml",
        )
    )
    server.routes["/history.atom"] = (
        200,
        f'<feed xmlns="http://www.w3.org/2005/Atom">{entries}</feed>'.encode(),
    )
    feeds({"name": "history", "url": "history.atom"})

    output = ingest()

    assert "1 created, 1 updated, 1 cancelled, 0 unchanged, 0 skipped" in output
    alert = Alert.objects.get()
    assert alert.status == Alert.Status.RETRACTED
    assert alert.title == "Water main break: Walnut Street closed"
    assert "0 created, 0 updated, 0 cancelled, 3 unchanged" in ingest()


def test_an_update_of_an_alert_never_seen_creates_it_once(philly, feeds):
    feeds({"name": "update", "url": "cap-rittenhouse-update.xml"})

    assert "1 created" in ingest()
    assert "1 unchanged" in ingest()

    alert = Alert.objects.get()
    assert alert.external_id == "PWD-2026-0001-U1"
    assert alert.severity == Severity.EMERGENCY


def test_a_cancel_of_an_alert_never_imported_is_skipped(philly, feeds):
    feeds({"name": "cancel", "url": "cap-rittenhouse-cancel.xml"})

    output = ingest()

    assert "it cancels an alert that was never imported" in output
    assert not Alert.objects.exists()


def test_an_area_without_geometry_is_matched_by_neighborhood_names(philly, feeds):
    feeds({"name": "health", "url": "cap-areadesc.xml"})

    ingest()

    alert = Alert.objects.get()
    assert names(alert) == ["Chinatown", "Mount Airy, East"]
    assert alert.category.slug == "public-health"
    assert alert.severity == Severity.INFO  # CAP Minor


def test_cap_embedded_in_rss_items_is_read_and_test_messages_are_skipped(philly, feeds):
    feeds({"name": "streets", "url": "cap-embedded.rss"})

    output = ingest()

    alert = Alert.objects.get()
    assert alert.external_id == "STR-2026-0100"
    assert names(alert) == ["Old City"]
    assert alert.category.slug == "traffic"
    assert "STR-2026-TEST: status is Test, not Actual" in output


def test_our_own_cap_output_can_be_ingested(philly, feeds, server, client):
    notice = official_notice(
        title="Block party, street closed", area=square_polygon(39.9447, -75.1491, half=0.001)
    )
    server.routes["/ours.xml"] = (200, client.get(f"/alerts/{notice.pk}/cap.xml").content)
    feeds({"name": "mirror", "url": "ours.xml"})

    ingest()

    copy = Alert.objects.exclude(pk=notice.pk).get()
    assert copy.external_id == f"engagement@example.org:alert-{notice.pk}"
    assert copy.title == notice.title
    assert names(copy) == ["Society Hill"]
    assert copy.severity == notice.severity


# Plain Atom and RSS ---------------------------------------------------------------------------


def test_plain_atom_entries_become_official_notices_once(philly, feeds):
    DepartmentFactory(name="Streets Department", slug="streets")
    feeds(
        {
            "name": "Streets news",
            "url": "plain.atom",
            "format": "atom",
            "department": "streets",
            "category": "traffic",
        }
    )

    output = ingest()

    assert "3 created, 0 updated, 0 cancelled, 0 unchanged, 1 skipped" in output
    assert "old-news: it is older than an official notice's lifetime" in output
    paving = Alert.objects.get(
        external_id="https://streets.phila.example/news/paving-northern-liberties"
    )
    assert names(paving) == ["Northern Liberties"]
    assert paving.body == "Crews repave Girard Avenue this week."
    assert "script" not in paving.body_html
    assert paving.severity == Severity.INFO
    assert paving.category.slug == "traffic"
    assert paving.provenance == "Official · Streets Department"
    citywide = Alert.objects.get(external_id="https://streets.phila.example/news/leaf-collection")
    assert citywide.neighborhoods.count() == len(philly)
    lanes = Alert.objects.get(external_id="https://streets.phila.example/news/market-street")
    assert names(lanes) == ["Old City"]

    assert "0 created, 0 updated, 0 cancelled, 3 unchanged, 1 skipped" in ingest()


def test_rss_items_are_keyed_on_their_guid_and_stay_advisory_at_most(philly, feeds):
    configured = feeds(
        {"name": "Parks", "url": "plain.rss", "format": "rss", "severity": "emergency"}
    )

    ingest()
    ingest()

    alert = Alert.objects.get()
    assert alert.external_id == f"{configured[0]['url']}#1001"
    assert names(alert) == ["Fishtown - Lower Kensington"]
    assert alert.severity == Severity.ADVISORY


def test_ad_hoc_url_runs_without_configuration(philly, feeds, server):
    DepartmentFactory(name="Fire Department", slug="fire")
    feeds()

    output = ingest("--url", server.url("cap-circle.xml"), "--department", "fire", "--name", "PFD")

    assert "PFD: 1 created" in output
    assert Alert.objects.get().department.slug == "fire"


def test_periodic_task_ingests_and_reports(philly, feeds):
    feeds({"name": "City CAP", "url": "cap-index.atom"})

    result = ingest_alert_feeds.enqueue()

    (summary,) = result.return_value["feeds"]
    assert summary["created"] == 2
    assert summary["skipped"] == [
        {"item": "NWS-MARINE-0001", "reason": "the area lies outside every neighborhood"}
    ]
    assert summary["error"] is None


# Broken and hostile feeds ---------------------------------------------------------------------


def _status_500(handler):
    handler._send(500, b"<error>down</error>")


def _huge_declared(handler):
    handler.send_response(200)
    handler.send_header("Content-Length", str(50 * 1024 * 1024))
    handler.end_headers()
    chunk = b"<" * (1024 * 1024)
    for _ in range(50):
        handler.wfile.write(chunk)


def _huge_streamed(handler):
    # HTTP/1.0 without a length: the body ends when the connection closes.
    handler.send_response(200)
    handler.end_headers()
    handler.wfile.write(b'<feed xmlns="http://www.w3.org/2005/Atom">')
    chunk = b"<!-- padding -->" * 65536
    for _ in range(50):
        handler.wfile.write(chunk)


def _slow(handler):
    time.sleep(1.5)
    handler._send(200, (DATA / "cap-circle.xml").read_bytes())


def _redirect_to_file(handler):
    handler.send_response(302)
    handler.send_header("Location", "file:///etc/passwd")
    handler.end_headers()


HOSTILE = {
    "xml-bomb": ("bomb.xml", None, "unsafe XML refused"),
    "external-entity": ("xxe.xml", None, "unsafe XML refused"),
    "status-500": ("down.xml", _status_500, "HTTP 500"),
    "html-not-xml": ("not-xml.html", None, "not well-formed XML"),
    "wrong-root": ("wrong-root.xml", None, "root is <html>"),
    "missing-cap-fields": ("cap-missing-fields.xml", None, "required <sender> is missing"),
    "50mb-declared": ("huge.xml", _huge_declared, "larger than 5242880 bytes"),
    "50mb-streamed": ("stream.xml", _huge_streamed, "larger than 5242880 bytes"),
    "timeout": ("slow.xml", _slow, "timed out"),
    "redirect-to-file": ("redirect.xml", _redirect_to_file, "refused a redirect"),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_a_broken_or_hostile_feed_is_reported_and_skipped(
    philly, feeds, server, settings, caplog, case
):
    path, route, reason = HOSTILE[case]
    if route is not None:
        server.routes[f"/{path}"] = route
    feeds({"name": f"hostile {case}", "url": path})
    settings.ENGAGEMENT = {**settings.ENGAGEMENT, "ALERT_FEED_TIMEOUT_SECONDS": 0.5}
    caplog.set_level(logging.WARNING, logger="alerts.ingest")

    started = time.monotonic()
    output = ingest_fails()

    assert f"hostile {case}: FAILED, nothing imported" in output
    assert reason in output
    assert not Alert.objects.exists()
    assert any(
        f"hostile {case}" in r.getMessage() and reason in r.getMessage() for r in caplog.records
    )
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(
    ("path", "fmt", "reason"),
    [
        ("cap-index-one-bad.atom", "cap", "entry 2 is not a usable CAP message"),
        ("plain-one-bad.atom", "atom", "entry 2 is malformed: the entry has no <id>"),
    ],
)
def test_one_bad_entry_among_good_ones_imports_nothing_from_that_feed(
    philly, feeds, path, fmt, reason
):
    feeds({"name": "mixed", "url": path, "format": fmt})

    output = ingest_fails()

    assert reason in output
    assert not Alert.objects.exists()


def test_only_http_and_https_addresses_are_fetched(philly, feeds):
    feeds({"name": "local file", "url": "file:///etc/passwd"})

    assert "only http and https addresses are fetched" in ingest_fails()


def test_the_command_succeeds_when_some_feeds_work(philly, feeds):
    feeds(
        {"name": "good", "url": "cap-circle.xml"},
        {"name": "bad", "url": "not-xml.html"},
    )

    output = ingest()

    assert "good: 1 created" in output
    assert "bad: FAILED" in output
    assert Alert.objects.count() == 1


def test_a_feed_that_fails_while_applying_leaves_nothing_behind(philly, feeds, monkeypatch):
    from alerts import services

    real = services.create_official_notice
    calls = []

    def fail_second(**kwargs):
        calls.append(kwargs["external_id"])
        if len(calls) == 2:
            raise services.ValidationError("database said no")
        return real(**kwargs)

    monkeypatch.setattr(services, "create_official_notice", fail_second)
    feeds({"name": "City CAP", "url": "cap-index.atom"})

    output = ingest_fails()

    assert len(calls) == 2
    assert "could not be applied, nothing imported: database said no" in output
    assert not Alert.objects.exists()


def test_unknown_feed_name_is_an_error(feeds):
    feeds({"name": "City CAP", "url": "cap-index.atom"})

    with pytest.raises(CommandError, match="No alert feed is configured with the name"):
        call_command("ingest_alerts", "--feed", "nope", stdout=StringIO())


def test_expired_messages_are_skipped(philly, feeds, server):
    text = (DATA / "cap-circle.xml").read_text().replace("2099-01-01", "2020-01-01")
    text = text.replace("2026-11-20T09:00:00", "2019-12-31T09:00:00")
    server.routes["/expired.xml"] = (200, text.encode())
    feeds({"name": "old", "url": "expired.xml"})

    assert "PFD-2026-0042: it has already expired" in ingest()
    assert not Alert.objects.exists()


def test_ingested_notice_is_active_now(philly, feeds):
    feeds({"name": "City CAP", "url": "cap-index.atom"})
    ingest()

    assert Alert.objects.active().count() == 2
    assert Alert.objects.active(timezone.now() + timedelta(days=365 * 80)).count() == 0


def test_a_feed_link_that_is_not_a_web_address_is_never_shown(philly, feeds, server):
    rss = fill((DATA / "plain.rss").read_text(encoding="utf-8")).replace(
        "https://parks.phila.example/news/pool", "javascript:alert(document.cookie)"
    )
    server.routes["/evil.rss"] = (200, rss.encode())
    feeds({"name": "Parks", "url": "evil.rss", "format": "rss"})

    ingest()

    assert "javascript" not in Alert.objects.get().source_url


def test_an_impossible_date_skips_the_item_instead_of_stopping_every_feed(philly, feeds, server):
    rss = (
        (DATA / "plain.rss")
        .read_text(encoding="utf-8")
        .replace("<pubDate>@RFC822_NOW@</pubDate>", "<pubDate>2026-02-30T10:00:00Z</pubDate>")
    )
    server.routes["/bad-date.rss"] = (200, rss.encode())
    feeds(
        {"name": "Broken", "url": "bad-date.rss", "format": "rss"},
        {"name": "Water", "url": "cap-rittenhouse.xml"},
    )

    output = ingest()

    assert "Water: 1 created" in output
    assert Alert.objects.filter(source_name="Water").exists()


def test_addresses_a_feed_names_may_not_reach_internal_hosts():
    from alerts.ingest import FeedError, fetch

    for url in ("http://127.0.0.1:9/", "http://169.254.169.254/latest/meta-data/"):
        with pytest.raises(FeedError, match="internal address"):
            fetch(url, allow_private=False)
