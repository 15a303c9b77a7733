from django.db import migrations

CATEGORIES = [
    # slug, name, description, lifetime hours, radius m, residents may report
    ("public-safety", "Public safety", "Police or fire activity, hazards, suspicious activity", 6, 200, True),
    ("traffic", "Traffic and roads", "Closures, detours, crashes, blocked streets", 12, 250, True),
    ("utilities", "Water, power and gas", "Outages, water main breaks, gas smells", 12, 300, True),
    ("street-conditions", "Street conditions", "Flooding, ice, downed trees and wires", 24, 150, True),
    ("sanitation", "Trash and sanitation", "Collection delays, dumping, spills", 48, 150, True),
    ("noise", "Noise and disturbance", "Loud parties, construction out of hours", 6, 150, True),
    ("community", "Community notice", "Events, lost pets, neighbourly news", 48, 200, True),
    ("weather", "Weather", "Heat, storms, snow emergencies", 24, 1000, False),
    ("public-health", "Public health", "Boil-water notices, air quality, health advisories", 72, 1000, False),
    ("transit", "Transit", "Bus and rail changes, station closures", 24, 300, True),
]


def add_categories(apps, schema_editor):
    AlertCategory = apps.get_model("alerts", "AlertCategory")
    for order, (slug, name, description, hours, radius, residents) in enumerate(CATEGORIES):
        AlertCategory.objects.get_or_create(
            slug=slug,
            defaults={
                "name": name,
                "description": description,
                "default_lifetime_hours": hours,
                "default_radius_m": radius,
                "residents_may_report": residents,
                "sort_order": (order + 1) * 10,
            },
        )


class Migration(migrations.Migration):
    dependencies = [("alerts", "0001_initial")]

    operations = [migrations.RunPython(add_categories, migrations.RunPython.noop)]
