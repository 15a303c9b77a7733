"""``manage.py forward_cases``: send the Open311 outbox and poll the city once, for cron."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from engagement import tasks


class Command(BaseCommand):
    help = (
        "Forward cases to the city's Open311 endpoint: send every outbox message that is due "
        "(new ones, retries, sends left unfinished), then bring back the city's status changes. "
        "Runs here and now, once; --send or --poll does only that half."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--send", action="store_true", help="Only send the outbox.")
        parser.add_argument("--poll", action="store_true", help="Only poll the city's statuses.")

    def handle(self, *args, **options) -> None:
        both = not (options["send"] or options["poll"])
        if both or options["send"]:
            counts = tasks.run_outbox()
            summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
            self.stdout.write(f"Outbox: {summary or 'nothing due'}.")
        if both or options["poll"]:
            result = tasks.poll_statuses()
            self.stdout.write(
                f"Polled {result.polled} forwarded cases: {result.updated} updated, "
                f"{result.numbered} numbered by the city, {result.errors} errors."
            )
