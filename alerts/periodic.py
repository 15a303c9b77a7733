"""Periodic jobs of apps above alerts, which ``manage.py run_periodic`` enqueues without
importing them (the same idea as :mod:`forums.hooks`).

An app registers its jobs in ``AppConfig.ready()``::

    from alerts.periodic import register_periodic_job

    register_periodic_job("forward_cases", "engagement.tasks.forward_due_task", enabled=...)

The task is named by its dotted path and imported only when it is enqueued.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.utils.module_loading import import_string


@dataclass(frozen=True)
class PeriodicJob:
    name: str
    task_path: str
    # 0: every round of run_periodic (its --interval); otherwise at most once per this many.
    minutes: int = 0
    # Called each round; the job is skipped while it returns False (e.g. a feature turned off).
    enabled: Callable[[], bool] | None = None

    def task(self) -> Any:
        return import_string(self.task_path)

    def is_enabled(self) -> bool:
        return self.enabled is None or bool(self.enabled())


_jobs: dict[str, PeriodicJob] = {}


def register_periodic_job(
    name: str,
    task_path: str,
    *,
    minutes: int = 0,
    enabled: Callable[[], bool] | None = None,
) -> None:
    """Add (or replace) the job ``name``: enqueue the task at ``task_path`` periodically."""
    _jobs[name] = PeriodicJob(name, task_path, max(int(minutes), 0), enabled)


def periodic_jobs() -> list[PeriodicJob]:
    return sorted(_jobs.values(), key=lambda job: job.name)
