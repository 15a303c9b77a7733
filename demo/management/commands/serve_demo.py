"""Serve the demo site: daphne (ASGI) on 127.0.0.1, the database task worker and the periodic
jobs (alert expiry, event pruning, digests, feed ingestion)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys

from django.conf import settings
from django.core.management.base import BaseCommand

from demo.accounts import login_lines


class Command(BaseCommand):
    help = (
        "Run the demo: the ASGI server on 127.0.0.1:$PORT, the task worker and the periodic "
        "jobs, until Ctrl-C."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--host", default="127.0.0.1")

    def handle(self, *args, port: int, host: str, **options) -> None:
        manage = [sys.executable, str(settings.BASE_DIR / "manage.py")]
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE", "demo.settings"),
            # Links in e-mails point at this server.
            "WAGTAILADMIN_BASE_URL": os.environ.get(
                "WAGTAILADMIN_BASE_URL", f"http://{host}:{port}"
            ),
        }
        worker = subprocess.Popen([*manage, "db_worker", "--interval", "1"], env=env)
        periodic = subprocess.Popen([*manage, "run_periodic", "--interval", "30"], env=env)
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "daphne",
                "-b",
                host,
                "-p",
                str(port),
                "--proxy-headers",
                settings.ASGI_APPLICATION.rsplit(".", 1)[0] + ":application",
            ],
            env=env,
        )
        url = f"http://{host}:{port}/"
        self.stdout.write("")
        self.stdout.write(self.style.SUCCESS(f"The demo site is at {url}"))
        self.stdout.write(f"Wagtail admin: {url}admin/   API: {url}api/v1/schema/")
        for line in login_lines():
            self.stdout.write(line)
        self.stdout.write(
            "Sent e-mails (sign-up codes, password resets) are printed here. Ctrl-C stops."
        )
        self.stdout.write("")
        try:
            while True:
                for name, process in (
                    ("server", server),
                    ("task worker", worker),
                    ("periodic jobs", periodic),
                ):
                    code = process.poll()
                    if code is not None:
                        self.stderr.write(f"The {name} stopped (exit code {code}).")
                        return
                with contextlib.suppress(subprocess.TimeoutExpired):
                    server.wait(timeout=1)
        except KeyboardInterrupt:
            pass
        finally:
            for process in (server, worker, periodic):
                if process.poll() is None:
                    process.send_signal(signal.SIGINT)
            for process in (server, worker, periodic):
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
