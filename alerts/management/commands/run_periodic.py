"""``manage.py run_periodic``: enqueue the alerts app's periodic jobs, forever or once.

Jobs (each enqueued as a background task for the worker):

* every ``--interval`` seconds: expire alerts past their expiry, and enqueue notification
  deliveries that are due (after quiet hours, retries, lost tasks);
* every ``--prune-minutes``: prune the live event log past its retention window;
* every ``--ingest-minutes``: ingest external alert feeds, when ``alerts.ingest`` provides
  ``alerts.ingest.ingest_alert_feeds``;
* once a day at ``DIGEST_HOUR`` (local time): the daily e-mail digest;
* the jobs that apps above alerts register with :func:`alerts.periodic.register_periodic_job`
  (every round, or every so many minutes), while they are enabled.

``--once`` enqueues every job once (the digest too, unless ``--no-digests``) and exits: use
it from cron, with ``send_digests`` once a day.
"""

from __future__ import annotations

import logging
import time as clock
from datetime import date
from typing import Any

from django.core.management.base import BaseCommand
from django.utils import timezone

from alerts import periodic, tasks

logger = logging.getLogger(__name__)


def ingest_task() -> Any:
    """The task that pulls the configured alert feeds."""
    from alerts.ingest import ingest_alert_feeds

    return ingest_alert_feeds


class Command(BaseCommand):
    help = "Enqueue periodic jobs: alert expiry, event pruning, digests, feed ingestion."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--once", action="store_true", help="Enqueue every job once and exit.")
        parser.add_argument(
            "--interval", type=int, default=60, help="Seconds between rounds (default 60)."
        )
        parser.add_argument(
            "--ingest-minutes",
            type=int,
            default=15,
            help="Minutes between feed ingestions (default 15; 0 turns ingestion off).",
        )
        parser.add_argument(
            "--prune-minutes",
            type=int,
            default=60,
            help="Minutes between prunings of the live event log (default 60).",
        )
        parser.add_argument(
            "--no-digests", action="store_true", help="Never send the daily digest from here."
        )

    def handle(self, *args, **options) -> None:
        self.options = options
        if options["once"]:
            names = self.run_round(force=True)
            self.stdout.write("Enqueued: " + (", ".join(names) or "nothing"))
            return
        self.last: dict[str, float] = {}
        self.digest_date: date | None = None
        interval = max(int(options["interval"]), 1)
        self.stdout.write(f"Running periodic jobs every {interval}s; Ctrl+C to stop.")
        try:
            while True:
                started = clock.monotonic()
                names = self.run_round()
                if names and options["verbosity"] > 1:
                    self.stdout.write("Enqueued: " + ", ".join(names))
                clock.sleep(max(interval - (clock.monotonic() - started), 1))
        except KeyboardInterrupt:
            self.stdout.write("Stopped.")

    def _every(self, name: str, minutes: int, force: bool) -> bool:
        if minutes <= 0:
            return False
        now = clock.monotonic()
        last = getattr(self, "last", {}).get(name)
        if force or last is None or now - last >= minutes * 60:
            if hasattr(self, "last"):
                self.last[name] = now
            return True
        return False

    def _enqueue(self, name: str, task: Any, enqueued: list[str]) -> None:
        try:
            task.enqueue()
        except Exception:
            logger.exception("Could not enqueue %s", name)
            self.stderr.write(f"Could not enqueue {name}.")
        else:
            enqueued.append(name)

    def run_round(self, *, force: bool = False) -> list[str]:
        """Enqueue whatever is due; return the names of the jobs enqueued."""
        options = self.options
        enqueued: list[str] = []
        self._enqueue("expire_alerts", tasks.expire_alerts_task, enqueued)
        self._enqueue("send_due_deliveries", tasks.send_due_deliveries_task, enqueued)
        if self._every("prune_events", options["prune_minutes"], force):
            self._enqueue("prune_events", tasks.prune_events_task, enqueued)
        if not options["no_digests"]:
            today = timezone.localdate(timezone=timezone.get_default_timezone())
            due = force or (getattr(self, "digest_date", None) != today and tasks.digest_due())
            if due:
                self._enqueue("send_digests", tasks.send_digests_task, enqueued)
                self.digest_date = today
        if self._every("ingest_alerts", options["ingest_minutes"], force):
            task = ingest_task()
            if task is not None:
                self._enqueue("ingest_alerts", task, enqueued)
        for job in periodic.periodic_jobs():
            try:
                if not job.is_enabled():
                    continue
                task = job.task()
            except Exception:
                logger.exception("Periodic job %s is unusable", job.name)
                self.stderr.write(f"Could not enqueue {job.name}.")
                continue
            if job.minutes == 0 or self._every(job.name, job.minutes, force):
                self._enqueue(job.name, task, enqueued)
        return enqueued
