"""``manage.py send_digests``: e-mail each person their waiting digest notifications now."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from alerts.tasks import send_digests, send_digests_task


class Command(BaseCommand):
    help = (
        "Send every person one e-mail with the notifications waiting for their daily digest. "
        "Safe to run twice: nothing is sent twice."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--enqueue",
            action="store_true",
            help="Enqueue the task for the worker instead of sending from this process.",
        )

    def handle(self, *args, **options) -> None:
        if options["enqueue"]:
            send_digests_task.enqueue()
            self.stdout.write("Digest task enqueued.")
            return
        sent = send_digests()
        self.stdout.write(f"Sent {sent} digest{'s' if sent != 1 else ''}.")
