"""``manage.py ingest_alerts``: pull external alert feeds (CAP 1.2, Atom, RSS) into notices."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.core.management.base import BaseCommand, CommandError, CommandParser

from alerts.ingest import FORMATS, FeedConfig, FeedResult, ingest_feed, ingest_feeds


class Command(BaseCommand):
    help = (
        "Import official notices from the feeds in ENGAGEMENT['ALERT_FEEDS'], from one of them "
        "(--feed), or from a feed given on the command line (--url). Prints a summary per feed; "
        "fails only when every feed failed."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--feed", action="append", metavar="NAME", help="Run this feed only.")
        parser.add_argument("--url", help="Pull a feed that is not configured.")
        parser.add_argument("--format", choices=FORMATS, default="cap", help="With --url.")
        parser.add_argument("--department", metavar="SLUG", help="With --url: the issuer.")
        parser.add_argument("--category", metavar="SLUG", help="With --url: default category.")
        parser.add_argument("--severity", help="With --url: default severity.")
        parser.add_argument("--name", help="With --url: the source name shown on notices.")

    def handle(self, *args, **options) -> None:
        if options["url"] and options["feed"]:
            raise CommandError("Give either --feed or --url, not both.")
        if options["url"]:
            url = options["url"]
            config = FeedConfig(
                name=options["name"] or urlsplit(url).netloc or url,
                url=url,
                format=options["format"],
                department=options["department"],
                category=options["category"],
                severity=options["severity"],
            )
            results = [ingest_feed(config)]
        else:
            try:
                results = ingest_feeds(options["feed"])
            except KeyError as exc:
                raise CommandError(f"No alert feed is configured with the name {exc}.") from None
            if not results:
                self.stdout.write("No alert feeds are configured (ENGAGEMENT['ALERT_FEEDS']).")
                return
        for result in results:
            self._report(result)
        if all(result.failed for result in results):
            raise CommandError("Every alert feed failed.")

    def _report(self, result: FeedResult) -> None:
        lines = result.summary_lines()
        style = self.style.ERROR if result.failed else self.style.SUCCESS
        self.stdout.write(style(lines[0]))
        for line in lines[1:]:
            self.stdout.write(self.style.WARNING(line))
