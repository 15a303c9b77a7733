from django.db import migrations

CATEGORIES = [
    ("streets", "Streets and sidewalks", "Potholes, lights, crossings, parking"),
    ("safety", "Safety", "Traffic safety, lighting, neighbourhood watch"),
    ("trash", "Trash and recycling", "Collection, dumping, litter, cleanups"),
    ("parks", "Parks and trees", "Parks, playgrounds, street trees, gardens"),
    ("housing", "Housing and development", "Zoning, construction, vacant lots"),
    ("transit", "Transit", "Buses, trolleys, rail, bike lanes"),
    ("events", "Events", "Meetings, block parties, volunteering"),
    ("general", "General", "Everything else about the neighborhood"),
]


def add_categories(apps, schema_editor):
    ForumCategory = apps.get_model("forums", "ForumCategory")
    for order, (slug, name, description) in enumerate(CATEGORIES):
        ForumCategory.objects.get_or_create(
            slug=slug,
            defaults={"name": name, "description": description, "sort_order": (order + 1) * 10},
        )


class Migration(migrations.Migration):
    dependencies = [("forums", "0001_initial")]

    operations = [migrations.RunPython(add_categories, migrations.RunPython.noop)]
