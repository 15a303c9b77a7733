"""The live layer as deployed: two daphne processes sharing Redis (the pub/sub channel layer).

An alert created in a third process reaches sockets on both servers; a socket that drops and
resumes with ``since`` on the other server gets exactly what it missed, in order.

Needs ``REDIS_URL`` (CI sets ``redis://127.0.0.1:6379``). On PostgreSQL the servers use the
test database itself (this test commits, and the test run empties it afterwards); on SQLite they
use a copy of the migrated in-memory test database in a file. Each run uses its own Redis channel
prefix, so parallel runs never see each other's events.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from django.db import connection

websockets = pytest.importorskip("websockets")
from websockets.asyncio.client import connect  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
REDIS_URL = os.environ.get("REDIS_URL", "")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not REDIS_URL, reason="needs Redis: set REDIS_URL (e.g. redis://127.0.0.1:6379)"
    ),
    pytest.mark.django_db(transaction=True),
]

SETTINGS = """
from demo.settings import *  # noqa: F403

CHANNEL_LAYERS["default"]["CONFIG"]["prefix"] = {prefix!r}  # noqa: F405
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
"""

# A long-lived helper process: one Django start-up, then one JSON command per line.
HELPER = r"""
import json, sys, time
import django

django.setup()
from django.apps import apps
from django.contrib.auth import get_user_model
from alerts import live
from alerts.models import AlertCategory, Severity
from alerts.services import create_official_notice
from neighborhoods.models import CityStaff, Department, Neighborhood
import importlib

state = {}
for line in sys.stdin:
    command = json.loads(line)
    if command["cmd"] == "setup":
        importlib.import_module("alerts.migrations.0002_default_categories").add_categories(apps, None)
        ring = [[1.0, 1.0], [1.01, 1.0], [1.01, 1.01], [1.0, 1.01], [1.0, 1.0]]
        place = Neighborhood(name="Live Test " + command["tag"])
        place.set_boundary({"type": "Polygon", "coordinates": [ring]})
        place.save()
        department, _ = Department.objects.get_or_create(name="Live", slug="live-" + command["tag"])
        user = get_user_model().objects.create_user("staff-" + command["tag"])
        CityStaff.objects.create(user=user, department=department, title="Dispatcher")
        state.update(place=place, user=user)
        reply = {"slug": place.slug, "latest": live.latest_event_id()}
    elif command["cmd"] == "alert":
        alert = create_official_notice(
            author=state["user"],
            category=AlertCategory.objects.get(slug="utilities"),
            severity=Severity.WARNING,
            title=command["title"],
            neighborhoods=[state["place"]],
        )
        reply = {"id": alert.pk, "committed_at": time.time()}
    print(json.dumps(reply), flush=True)
"""


class Process:
    """A child process whose stderr is drained in a thread (so it never blocks on a full pipe)."""

    def __init__(
        self, args: list[str], env: dict, *, stdin: bool = False, stdout: bool = True
    ) -> None:
        self.popen = subprocess.Popen(
            args,
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE if stdout else subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.stderr: list[str] = []
        self.port: int | None = None
        self.listening = threading.Event()
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        for line in self.popen.stderr:
            self.stderr.append(line)
            match = re.search(r"Listening on TCP address [\d.]+:(\d+)", line)
            if match:
                self.port = int(match[1])
                self.listening.set()

    def command(self, **command) -> dict:
        self.popen.stdin.write(json.dumps(command) + "\n")
        self.popen.stdin.flush()
        line = self.popen.stdout.readline()
        if not line:
            raise RuntimeError("helper died:\n" + "".join(self.stderr[-30:]))
        return json.loads(line)

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


def database_url(tmp_path: Path) -> str:
    """A database URL the child processes share with each other (and see committed data in)."""
    settings = connection.settings_dict
    if connection.vendor == "postgresql":
        user = settings["USER"] or "postgres"
        password = f":{settings['PASSWORD']}" if settings["PASSWORD"] else ""
        host = settings["HOST"] or "127.0.0.1"
        port = settings["PORT"] or 5432
        return f"postgres://{user}{password}@{host}:{port}/{settings['NAME']}"
    assert connection.vendor == "sqlite"
    path = tmp_path / "live.sqlite3"
    connection.ensure_connection()
    target = sqlite3.connect(path)
    connection.connection.backup(target)  # the migrated test database, copied into a file
    target.close()
    return f"sqlite:///{path}"


@pytest.fixture
def cluster(tmp_path):
    """Two daphne servers and a helper process on one database and one Redis prefix."""
    tag = uuid.uuid4().hex[:10]
    (tmp_path / "live_mp_settings.py").write_text(SETTINGS.format(prefix=f"live-test-{tag}"))
    (tmp_path / "helper.py").write_text(HELPER)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)]),
        "DJANGO_SETTINGS_MODULE": "live_mp_settings",
        "DATABASE_URL": database_url(tmp_path),
        "REDIS_URL": REDIS_URL,
        "DJANGO_DEBUG": "0",
        "ENGAGEMENT_DATA_DIR": str(tmp_path),
        "LOG_LEVEL": "WARNING",
    }
    # daphne says which port it got at INFO level.
    server_env = {**env, "LOG_LEVEL": "INFO"}
    daphne = [
        sys.executable,
        "-m",
        "daphne",
        "-v",
        "0",  # no access log
        "-e",
        "tcp:port=0:interface=127.0.0.1:backlog=1024",
        "demo.asgi:application",
    ]
    processes: list[Process] = []
    try:
        helper = Process([sys.executable, str(tmp_path / "helper.py")], env, stdin=True)
        processes.append(helper)
        servers = [Process(daphne, server_env, stdout=False) for _ in range(2)]
        processes.extend(servers)
        for server in servers:
            if not server.listening.wait(30):
                pytest.fail("daphne did not start:\n" + "".join(server.stderr[-30:]))
        yield helper, [server.port for server in servers], tag
    finally:
        for process in processes:
            process.stop()


async def receive(socket, timeout: float = 2.0) -> dict:
    return json.loads(await asyncio.wait_for(socket.recv(), timeout))


async def subscribe(port: int, topic: str, since: int | None = None):
    socket = await connect(f"ws://127.0.0.1:{port}/ws/live/", open_timeout=10)
    assert (await receive(socket))["type"] == "hello"
    message = {"type": "subscribe", "topic": topic}
    if since is not None:
        message["since"] = since
    await socket.send(json.dumps(message))
    replayed = []
    while True:
        reply = await receive(socket)
        if reply["type"] == "subscribed":
            return socket, replayed, reply
        assert reply["type"] not in ("error", "resync"), reply
        replayed.append(reply)


async def test_two_servers_share_events_and_resume(cluster):
    helper, (port_a, port_b), tag = cluster
    loop = asyncio.get_running_loop()
    setup = await loop.run_in_executor(None, lambda: helper.command(cmd="setup", tag=tag))
    topic = f"neighborhood:{setup['slug']}"
    on_a, _, _ = await subscribe(port_a, topic)
    on_b, _, _ = await subscribe(port_b, topic)
    try:
        created = await loop.run_in_executor(None, lambda: helper.command(cmd="alert", title="One"))
        started = time.monotonic()
        got_a, got_b = await asyncio.gather(receive(on_a), receive(on_b))
        assert time.monotonic() - started < 2
        for event in (got_a, got_b):
            assert (event["type"], event["topic"]) == ("alert.created", topic)
            assert event["data"]["id"] == created["id"]
        assert got_a["id"] == got_b["id"]
        seen = got_b["id"]

        # The socket on B drops; two alerts are created; it comes back to B with "since".
        await on_b.close()
        missed = []
        for title in ("Two", "Three"):
            missed.append(
                await loop.run_in_executor(
                    None, lambda title=title: helper.command(cmd="alert", title=title)
                )
            )
        live_a = [await receive(on_a), await receive(on_a)]
        assert [e["data"]["id"] for e in live_a] == [m["id"] for m in missed]

        resumed, replayed, reply = await subscribe(port_b, topic, since=seen)
        assert [e["data"]["id"] for e in replayed] == [m["id"] for m in missed]
        assert [e["id"] for e in replayed] == [e["id"] for e in live_a]
        assert reply["replayed"] == 2
        with pytest.raises(asyncio.TimeoutError):
            await receive(resumed, timeout=0.3)  # nothing twice

        # And it is live again, on the other server's events too.
        created = await loop.run_in_executor(
            None, lambda: helper.command(cmd="alert", title="Four")
        )
        event = await receive(resumed)
        assert event["data"]["id"] == created["id"] and event["id"] > replayed[-1]["id"]
        await resumed.close()
    finally:
        await on_a.close()
        await on_b.close()
