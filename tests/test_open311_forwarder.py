"""The Open311 forwarder against a real Open311 server in another process: this project's own
server (daphne) on its own database, prepared in a helper process of that server's settings.

The city's side: a copy of the migrated test database (SQLite) or a database made from it
(PostgreSQL), a neighborhood where the cases are, a service type per test and an API key. The
forwarder files cases there, survives the server being down and a worker dying between the POST
and the save (exactly one request per case at the city), and brings the city's status changes
back. Edge cases of the client (collapsed one-item lists, garbled answers, redirects, tokens)
run against a small stand-in server in a thread.
"""

from __future__ import annotations

import itertools
import json
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from engagement import tasks
from engagement.forwarding import Open311Forwarder
from engagement.models import CaseAudit, CaseNote, OutboxMessage
from engagement.open311_client import (
    NotDelivered,
    Open311Client,
    OutcomeUnknown,
    Rejected,
    as_list,
    parse_document,
    parse_errors,
    records,
)
from tests import factories as f

ROOT = Path(__file__).resolve().parent.parent
CENTRE = (5.0, 5.0)  # far from the factories' neighborhoods
State = OutboxMessage.State

pytestmark = [pytest.mark.slow, pytest.mark.django_db]

# A long-lived process of the city's server: one Django start-up, then one JSON command a line.
CITY_HELPER = r"""
import json, sys
import django

django.setup()
from django.contrib.auth import get_user_model
from engagement import services
from engagement.models import Case, ServiceQuestion, ServiceType
from engagement.open311 import keys
from neighborhoods.models import CityStaff, Department, Neighborhood

state = {}
for line in sys.stdin:
    command = json.loads(line)
    name = command.pop("cmd")
    if name == "setup":
        place = Neighborhood(name="Forwarding city")
        place.set_boundary(command["boundary"])
        place.save()
        department = Department.objects.create(name="City Streets", slug="city-streets")
        user = get_user_model().objects.create_user("city-dispatcher")
        CityStaff.objects.create(user=user, department=department, title="Dispatcher")
        _, secret = keys.issue_key("Neighborhood forum", requests_per_minute=1000)
        state.update(department=department, user=user)
        reply = {"key": secret}
    elif name == "service":
        kind = ServiceType.objects.create(
            code=command["code"], name=command["code"], department=state["department"]
        )
        for order, question in enumerate(command.get("questions", [])):
            ServiceQuestion.objects.create(service_type=kind, sort_order=order, **question)
        reply = {}
    elif name == "requests":
        reply = list(
            Case.objects.filter(service_type__code=command["code"])
            .order_by("pk")
            .values("tracking_number", "description", "answers", "channel", "status", "lat", "lon")
        )
    elif name == "close":
        case = Case.objects.get(tracking_number=command["number"])
        services.change_status(
            case, user=state["user"], status="closed", resolution=command["resolution"],
            note=command["note"], **command.get("extra", {})
        )
        reply = {}
    elif name == "note":
        case = Case.objects.get(tracking_number=command["number"])
        services.add_note(case, user=state["user"], text=command["text"])
        reply = {}
    print(json.dumps(reply, default=str), flush=True)
"""


class Process:
    """A child process whose stderr is drained in a thread (so it never blocks on a full pipe)."""

    def __init__(self, args: list[str], env: dict, *, stdin: bool = False) -> None:
        self.popen = subprocess.Popen(
            args,
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.stderr: list[str] = []
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        for line in self.popen.stderr:
            self.stderr.append(line)

    def command(self, **command):
        self.popen.stdin.write(json.dumps(command) + "\n")
        self.popen.stdin.flush()
        line = self.popen.stdout.readline()
        if not line:
            raise RuntimeError("the city's helper died:\n" + "".join(self.stderr[-30:]))
        return json.loads(line)

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def city_database(tmp: Path) -> tuple[str, callable]:
    """A database for the city's server, apart from the test database: ``(url, drop)``."""
    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        path = tmp / "city.sqlite3"
        connection.ensure_connection()
        target = sqlite3.connect(path)
        connection.connection.backup(target)  # the migrated test database, copied into a file
        target.close()
        return f"sqlite:///{path}", lambda: None
    import psycopg

    name = f"{settings['NAME']}_city"[:63]
    server = {
        "host": settings["HOST"] or "127.0.0.1",
        "port": settings["PORT"] or 5432,
        "user": settings["USER"] or "postgres",
        "password": settings["PASSWORD"] or None,
    }
    connection.close()  # a template database must have no other session

    def admin(sql: str) -> None:
        with psycopg.connect(dbname="postgres", autocommit=True, **server) as db:
            db.execute(sql)

    admin(f'DROP DATABASE IF EXISTS "{name}"')
    try:
        admin(f'CREATE DATABASE "{name}" TEMPLATE "{settings["NAME"]}"')
    except psycopg.errors.ObjectInUse:
        # Another session still uses the test database: migrate a file of the city's own.
        path = tmp / "city.sqlite3"
        env = {**os.environ, "DATABASE_URL": f"sqlite:///{path}", "ENGAGEMENT_DATA_DIR": str(tmp)}
        env["DJANGO_SETTINGS_MODULE"] = "demo.settings"
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True
        )
        return f"sqlite:///{path}", lambda: None
    password = f":{server['password']}" if server["password"] else ""
    url = f"postgres://{server['user']}{password}@{server['host']}:{server['port']}/{name}"
    return url, lambda: admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class City:
    """This project's Open311 server in another process, which can be stopped and started."""

    def __init__(self, env: dict, port: int) -> None:
        self.env = env
        self.port = port
        self.server: Process | None = None
        self.endpoint = f"http://127.0.0.1:{port}/open311/v2"

    def start(self) -> None:
        self.server = Process(
            [
                sys.executable,
                "-m",
                "daphne",
                "-v",
                "0",
                "-b",
                "127.0.0.1",
                "-p",
                str(self.port),
                "demo.asgi:application",
            ],
            self.env,
        )

    def wait(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.server.popen.poll() is not None:
                break
            try:
                with urllib.request.urlopen(f"{self.endpoint}/discovery.json", timeout=2):
                    return
            except OSError:
                time.sleep(0.1)
        pytest.fail("the city's server did not start:\n" + "".join(self.server.stderr[-30:]))

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None


@pytest.fixture(scope="module")
def city(tmp_path_factory, django_db_setup, django_db_blocker):
    """The city's Open311 server and a helper process on its database."""
    tmp = tmp_path_factory.mktemp("city")
    with django_db_blocker.unblock():
        url, drop = city_database(tmp)
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("REDIS_URL", "DJANGO_SETTINGS_MODULE", "PYTEST_CURRENT_TEST")
    }
    env.update(
        {
            "PYTHONPATH": str(ROOT),
            "DJANGO_SETTINGS_MODULE": "demo.settings",
            "DATABASE_URL": url,
            "DJANGO_DEBUG": "0",
            "ENGAGEMENT_DATA_DIR": str(tmp),
            "LOG_LEVEL": "WARNING",
        }
    )
    (tmp / "city_helper.py").write_text(CITY_HELPER)
    server = City(env, free_port())
    helper = Process([sys.executable, str(tmp / "city_helper.py")], env, stdin=True)
    try:
        server.start()
        boundary = f.square_polygon(*CENTRE)
        server.key = helper.command(cmd="setup", boundary=boundary)["key"]
        server.helper = helper
        server.wait()
        yield server
    finally:
        server.stop()
        helper.stop()
        with django_db_blocker.unblock():
            drop()


_codes = itertools.count(1)

QUESTIONS = f.POTHOLE_QUESTIONS


@pytest.fixture
def place(db):
    return f.NeighborhoodFactory(boundary=f.square_polygon(*CENTRE))


@pytest.fixture
def forwarding(settings, city, place):
    """Forwarding on, to the city, with a service type of its own (local and at the city)."""

    def configure(fmt: str = "json", **extra):
        code = f"fwd-{os.getpid()}-{next(_codes)}"
        city.helper.command(cmd="service", code=code, questions=QUESTIONS)
        settings.ENGAGEMENT = {
            **getattr(settings, "ENGAGEMENT", {}),
            "CASE_FORWARDING_BACKEND": "engagement.forwarding.Open311Forwarder",
            "OPEN311_FORWARD_URL": city.endpoint,
            "OPEN311_FORWARD_API_KEY": city.key,
            "OPEN311_FORWARD_FORMAT": fmt,
            "OPEN311_FORWARD_RETRY_SECONDS": 30,
            **extra,
        }
        return f.service_type(code, questions=QUESTIONS)

    return configure


@pytest.fixture
def file(place, django_capture_on_commit_callbacks):
    """File a case and commit (the on-commit send runs, as it would after a real commit)."""

    def filing(kind, **kwargs):
        kwargs.setdefault("answers", {"size": "large", "lanes": ["bike", "car"]})
        with django_capture_on_commit_callbacks(execute=True):
            return f.case(place, kind=kind, **kwargs)

    return filing


def outbox(case) -> OutboxMessage:
    return OutboxMessage.objects.get(case=case)


def at_city(city, kind) -> list[dict]:
    return city.helper.command(cmd="requests", code=kind.code)


# Against this project's server -------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["json", "xml", ""])
def test_a_filed_case_reaches_the_city_once_with_its_reference_and_answers(
    forwarding, file, city, fmt
):
    kind = forwarding(fmt)
    case = file(kind, description="A deep pothole in the bike lane.")

    message = outbox(case)
    assert (message.state, message.attempts, message.last_error) == (State.SENT, 1, "")
    [remote] = at_city(city, kind)
    assert message.remote_id == remote["tracking_number"]
    case.refresh_from_db()
    assert case.external_id == remote["tracking_number"]
    assert remote["channel"] == "open311"
    assert remote["answers"] == {"size": "large", "lanes": ["bike", "car"]}
    assert (remote["lat"], remote["lon"]) == pytest.approx((case.lat, case.lon))
    assert remote["description"].startswith("A deep pothole in the bike lane.\n\n")
    assert f"Reference {case.tracking_number}: http" in remote["description"]
    note = CaseNote.objects.get(case=case, kind=CaseNote.Kind.FORWARDED)
    assert not note.is_public
    assert remote["tracking_number"] in note.text
    assert CaseAudit.objects.filter(case=case, action="forwarded").exists()


def test_the_city_down_for_part_of_the_run_loses_nothing_and_doubles_nothing(
    forwarding, file, city
):
    kind = forwarding("xml")
    city.stop()
    try:
        cases = [file(kind, description=f"Streetlight {n} is out.") for n in range(3)]
        for case in cases:
            message = outbox(case)
            assert (message.state, message.attempts) == (State.PENDING, 1)
            assert "connection refused" in message.last_error
            assert message.next_attempt_at > timezone.now() + timedelta(seconds=29)
        now = timezone.now()
        assert tasks.run_outbox(now=now) == {}  # nothing due before its retry time
        assert tasks.run_outbox(now=now + timedelta(minutes=2)) == {State.PENDING: 3}
        assert {outbox(c).attempts for c in cases} == {2}
        assert min(outbox(c).next_attempt_at for c in cases) > now + timedelta(
            minutes=2, seconds=59
        )
    finally:
        city.start()
    city.wait()
    assert tasks.run_outbox(now=timezone.now() + timedelta(minutes=10)) == {State.SENT: 3}

    remote = at_city(city, kind)
    assert len(remote) == 3
    assert sorted(outbox(c).remote_id for c in cases) == sorted(
        r["tracking_number"] for r in remote
    )
    for case in cases:
        assert sum(f"Reference {case.tracking_number}:" in r["description"] for r in remote) == 1
    assert tasks.run_outbox(now=timezone.now() + timedelta(hours=1)) == {}


def test_a_worker_dying_between_the_post_and_the_save_never_files_twice(
    forwarding, file, city, monkeypatch
):
    kind = forwarding("json")
    posts = []
    create = Open311Client.create_request
    monkeypatch.setattr(
        Open311Client,
        "create_request",
        lambda self, *a, **kw: posts.append(kw["idempotency_key"]) or create(self, *a, **kw),
    )
    save = tasks._delivered
    crashes = []

    def crash_once(message, item, now, **kwargs):
        if not crashes:
            crashes.append(item)
            raise RuntimeError("the worker died")
        return save(message, item, now, **kwargs)

    monkeypatch.setattr(tasks, "_delivered", crash_once)
    first, second = file(kind), file(kind)

    assert len(crashes) == 1 and len(posts) == 2
    stuck = next(c for c in (first, second) if outbox(c).state == State.SENDING)
    assert outbox(stuck).remote_id == ""
    now = timezone.now()
    assert tasks.run_outbox(now=now + timedelta(minutes=5)) == {}  # its lease still holds
    assert tasks.run_outbox(now=now + tasks.LEASE + timedelta(minutes=1)) == {State.SENT: 1}

    assert len(posts) == 2  # found at the city, not sent again
    message = outbox(stuck)
    assert message.remote_id == crashes[0]["service_request_id"]
    remote = at_city(city, kind)
    assert len(remote) == 2
    assert sorted(r["tracking_number"] for r in remote) == sorted(
        outbox(c).remote_id for c in (first, second)
    )
    note = CaseNote.objects.get(case=stuck, kind=CaseNote.Kind.FORWARDED)
    assert note.text.startswith("Found at the city's 311 system")


def test_an_unknown_outcome_is_sent_again_only_to_a_city_that_dedupes(
    forwarding, file, city, monkeypatch
):
    kind = forwarding("xml", OPEN311_FORWARD_IDEMPOTENT=True)
    save = tasks._delivered
    crashes = []

    def crash_once(message, item, now, **kwargs):
        if not crashes:
            crashes.append(item)
            raise RuntimeError("the worker died")
        return save(message, item, now, **kwargs)

    monkeypatch.setattr(tasks, "_delivered", crash_once)
    # A city whose request list cannot tell (say it shows no descriptions).
    monkeypatch.setattr(tasks, "find_at_city", lambda *a, **kw: (None, False))
    case = file(kind)
    assert outbox(case).state == State.SENDING

    assert tasks.run_outbox(now=timezone.now() + tasks.LEASE * 2) == {State.SENT: 1}
    [remote] = at_city(city, kind)  # the city returned the request it already had
    assert outbox(case).remote_id == remote["tracking_number"] == crashes[0]["service_request_id"]


def test_without_deduplication_an_unknown_outcome_that_cannot_be_checked_fails_for_staff(
    forwarding, file, city, monkeypatch
):
    kind = forwarding("json", OPEN311_FORWARD_MAX_ATTEMPTS=2)
    monkeypatch.setattr(
        Open311Client,
        "create_request",
        lambda self, *a, **kw: (_ for _ in ()).throw(OutcomeUnknown("no answer within 20 s")),
    )
    monkeypatch.setattr(tasks, "find_at_city", lambda *a, **kw: (None, False))
    case = file(kind)
    assert outbox(case).state == State.SENDING
    later = timezone.now()
    for _ in range(3):
        later += timedelta(hours=7)
        tasks.run_outbox(now=later)
    message = outbox(case)
    assert message.state == State.FAILED
    assert "may or may not have reached the city" in message.last_error
    assert at_city(city, kind) == []
    note = CaseNote.objects.get(case=case, kind=CaseNote.Kind.FORWARDED)
    assert not note.is_public and "check with the city" in note.text


def test_a_refusal_by_the_city_fails_at_once_with_its_errors(forwarding, file, city):
    kind = forwarding("xml", OPEN311_FORWARD_API_KEY="not-a-key")
    case = file(kind)

    message = outbox(case)
    assert (message.state, message.attempts) == (State.FAILED, 1)
    assert "api_key" in message.last_error
    audit = CaseAudit.objects.get(case=case, action="forward_failed")
    assert audit.data["errors"] == [
        {"code": "403", "description": "api_key: missing, unknown or revoked."}
    ]
    assert CaseNote.objects.filter(case=case, kind=CaseNote.Kind.FORWARDED, is_public=False)
    assert tasks.run_outbox(now=timezone.now() + timedelta(days=1)) == {}


def test_an_answer_the_city_does_not_offer_is_not_sent(forwarding, file, city):
    kind = forwarding("json")
    question = kind.questions.get(code="size")
    question.values += "\nhuge|Bigger than a car"
    question.save()
    case = file(kind, answers={"size": "huge"})

    message = outbox(case)
    assert message.state == State.FAILED
    assert "does not offer huge" in message.last_error
    assert at_city(city, kind) == []


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_polling_brings_the_city_s_changes_back_in_batches(
    forwarding, file, city, fmt, django_assert_max_num_queries
):
    kind = forwarding(fmt, OPEN311_POLL_BATCH=2)
    fixed, noted, quiet = (file(kind) for _ in range(3))
    number = {c.pk: outbox(c).remote_id for c in (fixed, noted, quiet)}
    city.helper.command(
        cmd="close", number=number[fixed.pk], resolution="fixed", note="Filled on Tuesday."
    )
    city.helper.command(cmd="note", number=number[noted.pk], text="A crew is on the way.")

    result = tasks.poll_statuses(now=timezone.now())
    assert (result.polled, result.errors) == (3, 0)

    fixed.refresh_from_db()
    assert (fixed.status, fixed.resolution, fixed.resolution_note) == (
        "closed",
        "fixed",
        "Filled on Tuesday.",
    )
    closing = fixed.notes.get(kind=CaseNote.Kind.STATUS)
    assert (closing.is_public, closing.text, closing.status_to) == (
        True,
        "Filled on Tuesday.",
        "closed",
    )
    assert noted.notes.get(kind=CaseNote.Kind.NOTE).text == "A crew is on the way."
    noted.refresh_from_db()
    assert noted.status == "open"
    assert not quiet.notes.filter(kind__in=["status", "note"]).exists()
    assert outbox(fixed).remote_status == "closed"

    # Asked again later: nothing new, nothing repeated; the closed case is not asked for.
    later = timezone.now() + timedelta(minutes=10)
    again = tasks.poll_statuses(now=later)
    assert (again.polled, again.updated) == (2, 0)
    assert (
        CaseNote.objects.filter(case__in=[fixed, noted], kind__in=["status", "note"]).count() == 2
    )


def test_the_periodic_sweep_is_registered_only_while_forwarding(forwarding, settings, capsys):
    call_command("run_periodic", "--once", "--no-digests")
    assert "forward_cases" not in capsys.readouterr().out
    forwarding("json")
    call_command("run_periodic", "--once", "--no-digests")
    assert "forward_cases" in capsys.readouterr().out


def test_forward_cases_command_sends_and_polls(forwarding, file, city, settings, capsys):
    kind = forwarding("json")
    endpoint = settings.ENGAGEMENT["OPEN311_FORWARD_URL"]
    settings.ENGAGEMENT = {
        **settings.ENGAGEMENT,
        "OPEN311_FORWARD_URL": f"http://127.0.0.1:{free_port()}/open311/v2",  # nobody there
    }
    case = file(kind)
    assert outbox(case).state == State.PENDING
    settings.ENGAGEMENT = {**settings.ENGAGEMENT, "OPEN311_FORWARD_URL": endpoint}
    call_command("forward_cases")
    assert "Outbox: nothing due." in capsys.readouterr().out  # not before its retry time

    OutboxMessage.objects.update(next_attempt_at=timezone.now())
    call_command("forward_cases")
    out = capsys.readouterr().out
    assert "Outbox: 1 sent." in out
    assert "Polled 1 forwarded cases: 0 updated" in out
    assert outbox(case).state == State.SENT
    assert len(at_city(city, kind)) == 1


# The client against a stand-in server ------------------------------------------------------


class StandIn:
    """A programmable HTTP server in a thread: ``routes[(method, path)] = (status, headers,
    body)``; every request is recorded."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], tuple[int, dict, bytes]] = {}
        self.seen: list[tuple[str, str, dict]] = []
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                parts = urlsplit(self.path)
                stand_in.seen.append((self.command, self.path, parse_qs(body)))
                status, headers, payload = stand_in.routes.get(
                    (self.command, parts.path), (404, {}, b"<html>no</html>")
                )
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _answer

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/v2"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stand_in():
    server = StandIn()
    yield server
    server.close()


def test_xml_one_item_lists_and_collapsed_json_become_lists():
    xml = b"""<?xml version="1.0" encoding="utf-8"?>
    <service_requests><request><service_request_id>7</service_request_id>
    <status>closed</status><status_notes/></request></service_requests>"""
    assert parse_document(xml, "xml") == [
        {"service_request_id": "7", "status": "closed", "status_notes": None}
    ]
    definition = parse_document(
        b"<service_definition><service_code>p</service_code><attributes><attribute>"
        b"<code>size</code><values><value><key>s</key><name>Small</name></value></values>"
        b"</attribute></attributes></service_definition>",
        "xml",
    )
    assert definition["attributes"][0]["values"] == [{"key": "s", "name": "Small"}]
    assert records({"service_requests": {"request": {"service_request_id": "7"}}}, "request") == [
        {"service_request_id": "7"}
    ]
    assert records({"service_request_id": "7"}, "request") == [{"service_request_id": "7"}]
    assert as_list({"value": [{"key": "a"}, {"key": "b"}]}, "value") == [{"key": "a"}, {"key": "b"}]
    assert as_list(None) == [] and as_list("") == []


def test_error_bodies_in_either_format_or_garbage():
    assert parse_errors(b'[{"code":400,"description":"service_code: required."}]', "json") == [
        ("400", "service_code: required.")
    ]
    xml = b"<errors><error><code>403</code><description>api_key</description></error></errors>"
    assert parse_errors(xml, "json") == [("403", "api_key")]
    assert parse_errors(b"<html><body>Bad Gateway</body></html>", "xml") == []


def test_xml_with_entities_is_refused():
    bomb = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><services>&a;</services>'
    with pytest.raises(ValueError, match="unsafe XML"):
        parse_document(bomb, "xml")


def test_the_city_s_statuses_read_case_insensitively():
    forwarder = Open311Forwarder()
    assert forwarder.city_status("CLOSED").status == "closed"
    assert forwarder.city_status("Fixed").resolution == "fixed"
    assert forwarder.city_status("NOT_COUNCILS_RESPONSIBILITY").resolution == "not_city"
    assert forwarder.city_status("Action Scheduled").status == "scheduled"
    assert forwarder.city_status("in-progress").status == "in_progress"
    assert forwarder.city_status("no_further_action").resolution == "not_fixed"
    assert forwarder.city_status("something else") is None


def test_answers_that_are_lost_or_refused_are_classified(stand_in):
    client = Open311Client(stand_in.url, api_key="k", jurisdiction_id="", format="json")
    stand_in.routes[("POST", "/v2/requests.json")] = (200, {}, b"<html>oops</html>")
    with pytest.raises(OutcomeUnknown, match="unreadable"):
        client.create_request([("service_code", "p")])
    stand_in.routes[("POST", "/v2/requests.json")] = (502, {}, b"Bad gateway")
    with pytest.raises(OutcomeUnknown, match="HTTP 502"):
        client.create_request([("service_code", "p")])
    stand_in.routes[("POST", "/v2/requests.json")] = (503, {}, b"busy")
    with pytest.raises(NotDelivered, match="HTTP 503"):
        client.create_request([("service_code", "p")])
    stand_in.routes[("POST", "/v2/requests.json")] = (
        400,
        {},
        b'[{"code":400,"description":"lat: out of range"}]',
    )
    with pytest.raises(Rejected) as refused:
        client.create_request([("service_code", "p"), ("jurisdiction_id", "")])
    assert refused.value.errors == [("400", "lat: out of range")]
    body = stand_in.seen[-1][2]
    assert body["api_key"] == ["k"] and "jurisdiction_id" not in body  # empty ones omitted
    stand_in.routes[("POST", "/v2/requests.json")] = (
        200,
        {},
        b'{"errors":[{"code":"E12","description":"Duplicate suspected"}]}',
    )
    with pytest.raises(Rejected) as refused:  # an error list sent with HTTP 200
        client.create_request([("service_code", "p")])
    assert refused.value.errors == [("E12", "Duplicate suspected")]
    stand_in.routes[("POST", "/v2/requests.json")] = (
        201,
        {},
        b'{"service_requests":[{"request":{"service_request_id":"88"}}]}',
    )
    assert client.create_request([("service_code", "p")]) == {"service_request_id": "88"}


def test_redirects_to_another_host_are_never_followed(stand_in):
    client = Open311Client(stand_in.url, format="json")
    stand_in.routes[("GET", "/v2/requests.json")] = (
        302,
        {"Location": "http://169.254.169.254/latest/meta-data"},
        b"",
    )
    with pytest.raises(NotDelivered, match="another host"):
        client.requests_by_id(["1"])
    stand_in.routes[("GET", "/v2/requests.json")] = (302, {"Location": "/v2/moved.json"}, b"")
    stand_in.routes[("GET", "/v2/moved.json")] = (200, {}, b'[{"service_request_id":"1"}]')
    assert client.requests_by_id(["1"]) == [{"service_request_id": "1"}]
    stand_in.routes[("POST", "/v2/requests.json")] = (307, {"Location": "/v2/moved.json"}, b"")
    with pytest.raises(NotDelivered, match="redirects a POST"):
        client.create_request([("service_code", "p")])
    assert [s[0] for s in stand_in.seen].count("POST") == 1


def test_a_silent_server_times_out_as_an_unknown_outcome():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        client = Open311Client(f"http://127.0.0.1:{port}/v2", format="xml", timeout=0.3)
        with pytest.raises(OutcomeUnknown, match="no answer"):
            client.create_request([("service_code", "p")])
    with pytest.raises(NotDelivered, match="connection refused"):
        client.create_request([("service_code", "p")])


def test_discovery_chooses_json_and_batch_tokens_are_exchanged_for_numbers(
    stand_in, settings, place, django_capture_on_commit_callbacks
):
    discovery = (
        b"<discovery><changeset>2026-01-01T00:00:00Z</changeset><endpoints><endpoint>"
        b"<url>x</url><formats><format>text/xml</format><format>application/json</format>"
        b"</formats></endpoint></endpoints></discovery>"
    )
    stand_in.routes[("GET", "/v2/discovery.xml")] = (200, {}, discovery)
    stand_in.routes[("GET", "/v2/services.json")] = (
        200,
        {},
        b'{"service":{"service_code":"pothole","metadata":false,"type":"batch"}}',
    )
    stand_in.routes[("POST", "/v2/requests.json")] = (200, {}, b'[{"token":"t-1"}]')
    stand_in.routes[("GET", "/v2/tokens/t-1.json")] = (404, {}, b'[{"code":404,"description":"x"}]')
    settings.ENGAGEMENT = {
        **getattr(settings, "ENGAGEMENT", {}),
        "CASE_FORWARDING_BACKEND": "engagement.forwarding.Open311Forwarder",
        "OPEN311_FORWARD_URL": stand_in.url,
    }
    kind = f.service_type("pothole")
    with django_capture_on_commit_callbacks(execute=True):
        case = f.case(place, kind=kind)
    message = outbox(case)
    assert (message.state, message.remote_token, message.remote_id) == (State.SENT, "t-1", "")
    post = next(s for s in stand_in.seen if s[0] == "POST")
    assert post[2]["device_id"] == [str(case.token)]
    assert post[2]["service_code"] == ["pothole"]

    assert tasks.poll_statuses(now=timezone.now()).numbered == 0  # not numbered yet
    stand_in.routes[("GET", "/v2/tokens/t-1.json")] = (
        200,
        {},
        b'{"request":{"service_request_id":"SR-9","token":"t-1"}}',
    )
    stand_in.routes[("GET", "/v2/requests.json")] = (
        200,
        {},
        b'[{"service_request_id":"SR-9","status":"IN_PROGRESS","status_notes":"Crew sent"}]',
    )
    later = timezone.now() + timedelta(minutes=6)
    assert tasks.poll_statuses(now=later).numbered == 1
    case.refresh_from_db()
    assert (outbox(case).remote_id, case.external_id) == ("SR-9", "SR-9")
    result = tasks.poll_statuses(now=later + timedelta(minutes=6))
    assert result.updated == 1
    case.refresh_from_db()
    assert case.status == "in_progress"
    assert case.notes.get(kind=CaseNote.Kind.STATUS).text == "Crew sent"
    get = [s for s in stand_in.seen if s[1].startswith("/v2/requests.json")][-1]
    assert parse_qs(urlsplit(get[1]).query)["service_request_id"] == ["SR-9"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="row locks: run with DATABASE_URL on PostgreSQL"
)
def test_two_workers_sending_one_message_post_it_once(stand_in, settings):
    slow = threading.Event()

    def answer_slowly():
        slow.wait(0.5)
        return (200, {}, b'[{"service_request_id":"SR-1"}]')

    class SlowRoutes(dict):
        def get(self, key, default=None):
            if key == ("POST", "/v2/requests.json"):
                return answer_slowly()
            return super().get(key, default)

    stand_in.routes = SlowRoutes()
    place = f.NeighborhoodFactory(boundary=f.square_polygon(*CENTRE))
    case = f.case(place, kind=f.service_type("pothole"))
    message = OutboxMessage.objects.create(case=case)
    settings.ENGAGEMENT = {
        **getattr(settings, "ENGAGEMENT", {}),
        "CASE_FORWARDING_BACKEND": "engagement.forwarding.Open311Forwarder",
        "OPEN311_FORWARD_URL": stand_in.url,
        "OPEN311_FORWARD_FORMAT": "json",
    }
    states = []
    start = threading.Barrier(2)

    def worker():
        try:
            start.wait()
            states.append(tasks.send_message(message.pk))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sorted(states) in (["pending", "sent"], ["sending", "sent"])
    assert [s[0] for s in stand_in.seen].count("POST") == 1
    message.refresh_from_db()
    assert (message.state, message.attempts, message.remote_id) == ("sent", 1, "SR-1")
