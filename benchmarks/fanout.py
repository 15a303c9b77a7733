"""Fan-out of one alert to many WebSocket clients: the live layer against a bare server.

    REDIS_URL=redis://127.0.0.1:6379 .venv/bin/python benchmarks/fanout.py --clients 1000

Starts ``--servers`` daphne processes (default 2) of the demo site with the Redis pub/sub channel
layer, connects ``--clients`` WebSocket clients spread evenly over them, each subscribed to the
same neighborhood topic, then for each of ``--rounds`` rounds publishes one official notice through
the real service (``create_official_notice``, in a separate process, committed) and records, for
every client, the time from the commit to the event's arrival. Then it runs a bare ``websockets``
server (the ceiling: no Django, no channel layer) that broadcasts the same payload to the same
number of clients, timed from the moment it starts sending. It prints p50, p99 and max (the time
to the last client) per setup and the ratio of the live layer to the bare server.

Needs ``REDIS_URL``. The database is a fresh, migrated SQLite file in a temporary directory
unless ``--database-url`` names another (it is migrated first; PostgreSQL works). Each run uses
its own Redis channel prefix. The servers run as deployed:
the garbage collector is frozen by ``engagement.asgi.build_application``, broadcasts skip the
per-message database cleanup, and daphne's listen backlog is raised in the endpoint string. The
open-files limit is raised for this process and the servers it starts.

Client and servers share the machine, so the figures include the client's own work of reading
every socket; both setups pay it equally.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SETTINGS = """
from demo.settings import *  # noqa: F403

CHANNEL_LAYERS["default"]["CONFIG"]["prefix"] = {prefix!r}  # noqa: F405
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
"""

# One Django start-up, then one JSON command per line on stdin, one JSON reply per line.
PUBLISHER = r"""
import importlib, json, sys, time
import django

django.setup()
from django.apps import apps
from django.contrib.auth import get_user_model
from django.db import transaction
from alerts.models import AlertCategory, Severity
from alerts.services import create_official_notice
from neighborhoods.models import CityStaff, Department, Neighborhood

tag = sys.argv[1]
importlib.import_module("alerts.migrations.0002_default_categories").add_categories(apps, None)
ring = [[1.0, 1.0], [1.01, 1.0], [1.01, 1.01], [1.0, 1.01], [1.0, 1.0]]
place = Neighborhood(name="Fan-out " + tag)
place.set_boundary({"type": "Polygon", "coordinates": [ring]})
place.save()
department, _ = Department.objects.get_or_create(name="Fan-out " + tag, slug="fanout-" + tag)
user = get_user_model().objects.create_user("fanout-" + tag)
CityStaff.objects.create(user=user, department=department, title="Dispatcher")
category = AlertCategory.objects.get(slug="utilities")
print(json.dumps({"topic": "neighborhood:" + place.slug}), flush=True)
for line in sys.stdin:
    stamps = []
    with transaction.atomic():
        # Registered first, so it runs first after the commit (before the event is sent).
        transaction.on_commit(lambda: stamps.append(time.time()))
        alert = create_official_notice(
            author=user, category=category, severity=Severity.WARNING,
            title=json.loads(line)["title"], neighborhoods=[place],
        )
    print(json.dumps({"id": alert.pk, "committed_at": stamps[0]}), flush=True)
"""

# The ceiling: accept sockets; on "go <payload>" from a control socket, broadcast the payload.
BARE_SERVER = r"""
import asyncio, json, sys, time
from websockets.asyncio.server import broadcast, serve

clients = set()

async def handler(socket):
    if socket.request.path == "/control":
        async for message in socket:
            payload = message[3:]
            started = time.time()
            broadcast(clients, payload)
            await socket.send(json.dumps({"started": started}))
        return
    clients.add(socket)
    try:
        await socket.wait_closed()
    finally:
        clients.discard(socket)

async def main():
    async with serve(handler, "127.0.0.1", 0, backlog=4096, ping_interval=None) as server:
        port = server.sockets[0].getsockname()[1]
        print(port, flush=True)
        await asyncio.Future()

asyncio.run(main())
"""


def raise_open_files_limit(wanted: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class Child:
    """A child process; stderr is drained in a thread and scanned for daphne's port."""

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

    def ask(self, **command) -> dict:
        self.popen.stdin.write(json.dumps(command) + "\n")
        self.popen.stdin.flush()
        return self.read()

    def read(self) -> dict:
        line = self.popen.stdout.readline()
        if not line:
            raise RuntimeError("child process died:\n" + "".join(self.stderr[-40:]))
        return json.loads(line)

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


async def open_sockets(urls: list[str], count: int, first: str | None = None) -> list:
    """``count`` sockets spread over ``urls``; each sends ``first`` and reads up to its reply."""
    from websockets.asyncio.client import connect

    gate = asyncio.Semaphore(100)

    async def one(n: int):
        async with gate:
            socket = await connect(
                urls[n % len(urls)], open_timeout=60, ping_interval=None, max_queue=None
            )
            if first is not None:
                json.loads(await socket.recv())  # hello
                await socket.send(first)
                while json.loads(await socket.recv())["type"] != "subscribed":
                    pass
            return socket

    return await asyncio.gather(*(one(n) for n in range(count)))


async def arrivals(sockets: list, timeout: float) -> tuple[list[float], str]:
    """Wall-clock arrival time of the next message on every socket, and one message's text."""
    texts: list[str] = []

    async def one(socket) -> float:
        text = await socket.recv()
        stamp = time.time()
        if not texts:
            texts.append(text)
        return stamp

    stamps = await asyncio.wait_for(asyncio.gather(*(one(s) for s in sockets)), timeout)
    return list(stamps), texts[0]


async def run_live(args, urls: list[str], publisher: Child, topic: str) -> tuple[list, list, str]:
    first = json.dumps({"type": "subscribe", "topic": topic})
    started = time.perf_counter()
    sockets = await open_sockets(urls, args.clients, first)
    print(
        f"  {len(sockets):,} sockets connected and subscribed in {time.perf_counter() - started:.1f} s"
    )
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    lasts: list[float] = []
    payload = ""
    for n in range(args.rounds + 1):
        waiting = asyncio.ensure_future(arrivals(sockets, 60))
        await asyncio.sleep(0.05)
        published = await loop.run_in_executor(None, lambda n=n: publisher.ask(title=f"Round {n}"))
        stamps, payload = await waiting
        if n == 0:
            continue  # warm-up: first use of every code path in every process
        round_latencies = [(s - published["committed_at"]) * 1000 for s in stamps]
        latencies += round_latencies
        lasts.append(max(round_latencies))
        await asyncio.sleep(0.2)
    for socket in sockets:
        await socket.close()
    return latencies, lasts, payload


async def run_bare(args, payload: str, env: dict) -> tuple[list, list]:
    from websockets.asyncio.client import connect

    server = Child([sys.executable, "-c", BARE_SERVER], env)
    try:
        port = int(server.popen.stdout.readline())
        url = f"ws://127.0.0.1:{port}/"
        sockets = await open_sockets([url], args.clients)
        control = await connect(f"ws://127.0.0.1:{port}/control")
        await asyncio.sleep(0.2)
        latencies: list[float] = []
        lasts: list[float] = []
        for n in range(args.rounds + 1):
            waiting = asyncio.ensure_future(arrivals(sockets, 60))
            await asyncio.sleep(0.05)
            await control.send("go " + payload)
            started = json.loads(await control.recv())["started"]
            stamps, _ = await waiting
            if n == 0:
                continue
            round_latencies = [(s - started) * 1000 for s in stamps]
            latencies += round_latencies
            lasts.append(max(round_latencies))
            await asyncio.sleep(0.2)
        await control.close()
        for socket in sockets:
            await socket.close()
        return latencies, lasts
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--servers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL", ""))
    args = parser.parse_args()
    if not args.redis_url:
        sys.exit("Set REDIS_URL (for example redis://127.0.0.1:6379) or pass --redis-url.")
    limit = raise_open_files_limit(args.clients * 3 + 1024)
    if limit < args.clients * 2 + 100:
        sys.exit(f"The open-files limit is {limit}; too low for {args.clients} clients.")

    workdir = Path(tempfile.mkdtemp(prefix="fanout-"))
    tag = uuid.uuid4().hex[:10]
    (workdir / "fanout_settings.py").write_text(SETTINGS.format(prefix=f"fanout-{tag}"))
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(workdir), str(ROOT)]),
        "DJANGO_SETTINGS_MODULE": "fanout_settings",
        "DATABASE_URL": args.database_url or f"sqlite:///{workdir / 'fanout.sqlite3'}",
        "REDIS_URL": args.redis_url,
        "DJANGO_DEBUG": "0",
        "ENGAGEMENT_DATA_DIR": str(workdir),
        "LOG_LEVEL": "WARNING",
    }
    print(f"Migrating {env['DATABASE_URL']} …")
    subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "migrate", "--verbosity", "0"],
        cwd=ROOT,
        env=env,
        check=True,
    )
    (workdir / "publisher.py").write_text(PUBLISHER)
    children: list[Child] = []
    try:
        publisher = Child([sys.executable, str(workdir / "publisher.py"), tag], env, stdin=True)
        children.append(publisher)
        daphne = [
            sys.executable,
            "-m",
            "daphne",
            "-v",
            "0",  # no access log
            "-e",
            "tcp:port=0:interface=127.0.0.1:backlog=4096",
            "demo.asgi:application",
        ]
        server_env = {**env, "LOG_LEVEL": "INFO"}  # daphne says which port it got
        servers = [Child(daphne, server_env, stdout=False) for _ in range(args.servers)]
        children += servers
        for server in servers:
            if not server.listening.wait(60):
                sys.exit("daphne did not start:\n" + "".join(server.stderr[-40:]))
        topic = publisher.read()["topic"]
        urls = [f"ws://127.0.0.1:{server.port}/ws/live/" for server in servers]
        print(
            f"{args.clients:,} clients, {args.servers} daphne processes (Redis pub/sub layer), "
            f"{args.rounds} rounds after a warm-up; open-files limit {limit:,}"
        )
        live_latencies, live_lasts, payload = asyncio.run(run_live(args, urls, publisher, topic))
        print(f"  event payload: {len(payload.encode()):,} bytes")
        bare_latencies, bare_lasts = asyncio.run(run_bare(args, payload, env))
    finally:
        for child in children:
            child.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    rows = [
        ("bare websockets broadcast (ceiling)", bare_latencies, bare_lasts),
        (f"live layer, {args.servers} daphne + Redis", live_latencies, live_lasts),
    ]
    print()
    print(
        f"{'setup':<38} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'last client, median of rounds':>31}"
    )
    for name, latencies, lasts in rows:
        print(
            f"{name:<38} {percentile(latencies, 0.5):8.1f} {percentile(latencies, 0.99):8.1f} "
            f"{max(latencies):8.1f} {statistics.median(lasts):31.1f}"
        )
    print(
        "ratio live / bare: "
        f"p50 {percentile(live_latencies, 0.5) / percentile(bare_latencies, 0.5):.1f}x, "
        f"p99 {percentile(live_latencies, 0.99) / percentile(bare_latencies, 0.99):.1f}x, "
        f"last client {statistics.median(live_lasts) / statistics.median(bare_lasts):.1f}x"
    )
    print("(live latencies run from the commit of the alert's transaction to arrival)")


if __name__ == "__main__":
    main()
