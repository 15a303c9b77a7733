from django.db import migrations


def name_staff(apps, schema_editor):
    """City staff without a display name get their full name (or their department's)."""
    CityStaff = apps.get_model("neighborhoods", "CityStaff")
    Profile = apps.get_model("neighborhoods", "Profile")
    for staff in CityStaff.objects.select_related("user", "department"):
        profile, _ = Profile.objects.get_or_create(user=staff.user)
        if profile.display_name:
            continue
        user = staff.user
        full = f"{user.first_name} {user.last_name}".strip()
        profile.display_name = (full or f"{staff.department.name} staff")[:60]
        profile.save(update_fields=["display_name"])


class Migration(migrations.Migration):
    dependencies = [("neighborhoods", "0002_held_upload")]

    operations = [migrations.RunPython(name_staff, migrations.RunPython.noop)]
