from django.core.management.base import BaseCommand, CommandError

from neighborhoods.importer import ImportFailed, import_neighborhoods, read_feature_collection


class Command(BaseCommand):
    help = (
        "Import neighborhoods from a GeoJSON FeatureCollection of (Multi)Polygons in lon/lat. "
        "Re-running updates boundaries in place; a bad feature aborts the whole import."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="path to a GeoJSON FeatureCollection")
        parser.add_argument(
            "--name-property", required=True, help="feature property holding the display name"
        )
        parser.add_argument(
            "--description-property", default=None, help="feature property to use as description"
        )

    def handle(self, *args, **options):
        try:
            data = read_feature_collection(options["file"])
            result = import_neighborhoods(
                data,
                name_property=options["name_property"],
                description_property=options["description_property"],
            )
        except ImportFailed as exc:
            for problem in exc.problems:
                self.stderr.write(f"  {problem}")
            raise CommandError(
                f"Nothing imported: {len(exc.problems)} problem(s) in {options['file']}."
            ) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"Imported {len(result.created) + len(result.updated)} neighborhoods "
                f"({len(result.created)} new, {len(result.updated)} updated)."
            )
        )
