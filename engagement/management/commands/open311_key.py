"""``manage.py open311_key NAME``: issue an Open311 API key and print it (shown this once)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from engagement.models import Open311Key
from engagement.open311 import keys


class Command(BaseCommand):
    help = (
        "Issue an API key for an Open311 client and print it; only its hash is kept, so copy "
        "it now. --revoke NAME stops a key working; --list shows the keys."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("name", nargs="?", help="Who uses the key, e.g. “FixMyStreet”.")
        parser.add_argument("--revoke", metavar="NAME", help="Revoke the key of this name.")
        parser.add_argument(
            "--replace",
            action="store_true",
            help="Give an existing key a new secret (the old one stops working at once).",
        )
        parser.add_argument(
            "--rate", type=int, metavar="N", help="Requests per minute allowed (default 30)."
        )
        parser.add_argument("--list", action="store_true", help="List the keys.")

    def handle(self, *args, **options) -> None:
        if options["list"]:
            for key in Open311Key.objects.order_by("name"):
                state = "active" if key.is_active else "revoked"
                used = f"{key.last_used_at:%Y-%m-%d %H:%M}" if key.last_used_at else "never"
                self.stdout.write(
                    f"{key.name}\t{key.prefix}…\t{state}\t{key.requests_per_minute}/min\t"
                    f"last used {used}"
                )
            return
        if options["revoke"]:
            if not keys.revoke_key(options["revoke"]):
                raise CommandError(f"No active key is named “{options['revoke']}”.")
            self.stdout.write(f"Revoked the key “{options['revoke']}”.")
            return
        if not options["name"]:
            raise CommandError("Give the key a name, e.g. manage.py open311_key FixMyStreet.")
        try:
            key, secret = keys.issue_key(
                options["name"], requests_per_minute=options["rate"], replace=options["replace"]
            )
        except keys.KeyNameTaken:
            raise CommandError(
                f"A key named “{options['name']}” exists: add --replace for a new secret, "
                "or choose another name."
            ) from None
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(secret)
        self.stderr.write(
            f"Key “{key.name}” ({key.requests_per_minute} requests a minute). "
            "Copy it now: it cannot be shown again."
        )
