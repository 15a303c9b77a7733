"""Seed the demo site once: Philadelphia's neighborhoods, one account per role, pages.

Re-running keeps everything already there; it only fills in what is missing and resets the demo
accounts' passwords to ``DEMO_PASSWORD`` (or the printed default).
"""

from __future__ import annotations

from pathlib import Path

from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import transaction
from shapely.geometry import shape
from wagtail.models import Page, Site

from demo.accounts import demo_password, login_lines
from neighborhoods import services
from neighborhoods.models import (
    CityStaff,
    Department,
    Membership,
    Neighborhood,
    Organization,
    OrganizationMembership,
)
from sitecontent.models import HomePage, NeighborhoodPage

DATA_FILE = (
    Path(__file__).resolve().parents[3] / "neighborhoods/data/philadelphia-neighborhoods.geojson"
)
HOME = "Old City"
NEIGHBORHOOD_PAGES = [
    "Old City",
    "Fishtown - Lower Kensington",
    "Point Breeze",
    "Germantown, Morton",
]

ALERT_NEIGHBORHOODS = [
    "Old City",
    "Society Hill",
    "Northern Liberties",
    "Fishtown - Lower Kensington",
]
SEEDED_ALERT_TITLES = [
    "Market Street repaving: one lane closed near 2nd Street",
    "Heat health warning through Thursday",
]

DESCRIPTIONS = {
    "Old City": (
        "Philadelphia's historic core between the Delaware River and 5th Street: galleries, "
        "Elfreth's Alley and Independence National Historical Park next door."
    ),
    "Fishtown - Lower Kensington": "A riverside neighborhood north of Northern Liberties, known for its music venues.",
}


def point_in(neighborhood: Neighborhood) -> tuple[float, float]:
    """A (lat, lon) that lies inside the neighborhood."""
    point = shape(neighborhood.boundary).representative_point()
    return point.y, point.x


class Command(BaseCommand):
    help = "Seed the demo data (idempotent): neighborhoods, demo accounts, organizations, pages."

    def handle(self, *args, **options) -> None:
        if not Neighborhood.objects.exists():
            self.stdout.write("Importing Philadelphia's 159 neighborhoods…")
            call_command(
                "import_neighborhoods", str(DATA_FILE), name_property="LISTNAME", verbosity=0
            )
        with transaction.atomic():
            self.seed_people()
            self.seed_pages()
            self.seed_alerts()
            self.seed_forums()
            self.seed_cases()
        self.stdout.write(self.style.SUCCESS("Demo data is ready."))
        for line in login_lines():
            self.stdout.write(line)

    # People ------------------------------------------------------------------------------------

    def user(self, email: str, *, first_name: str = "", **flags):
        User = get_user_model()
        user = User.objects.filter(email__iexact=email).first()
        if user is None:
            user = User(username=email.split("@")[0], email=email, first_name=first_name, **flags)
        for key, value in flags.items():
            setattr(user, key, value)
        user.set_password(demo_password())
        user.save()
        EmailAddress.objects.update_or_create(
            user=user, email=email, defaults={"verified": True, "primary": True}
        )
        return user

    def seed_people(self) -> None:
        old_city = Neighborhood.objects.get(name=HOME)
        for name, text in DESCRIPTIONS.items():
            Neighborhood.objects.filter(name=name, description="").update(description=text)

        streets, _ = Department.objects.get_or_create(
            slug="streets",
            defaults={
                "name": "Streets Department",
                "description": "Street lights, potholes, trash and recycling collection.",
                "email": "streets@demo.example",
                "phone": "311",
            },
        )
        Department.objects.get_or_create(
            slug="licenses-inspections",
            defaults={"name": "Licenses & Inspections", "description": "Vacant lots, permits."},
        )

        staff = self.user("staff@demo.example", first_name="Sam")
        CityStaff.objects.get_or_create(
            user=staff, defaults={"department": streets, "title": "Community liaison"}
        )
        self.grant(staff, "City staff", ["neighborhood", "organization"], admin=True)

        editor = self.user("editor@demo.example", first_name="Eden")
        editors = Group.objects.filter(name="Editors").first()
        if editors:
            editor.groups.add(editors)
        self.grant(editor, "Editors", ["neighborhood", "organization"], admin=True)

        roles = {
            "resident@demo.example": ("Riley", Membership.Role.MEMBER),
            "organizer@demo.example": ("Olivia", Membership.Role.ORGANIZER),
            "moderator@demo.example": ("Morgan", Membership.Role.MODERATOR),
        }
        lat, lon = point_in(old_city)
        for email, (first_name, role) in roles.items():
            person = self.user(email, first_name=first_name)
            profile = services.get_profile(person)
            if not profile.display_name:
                services.update_profile(user=person, display_name=f"{first_name} ({HOME})")
            if profile.home_neighborhood_id is None:
                services.set_home_location(user=person, lat=lat, lon=lon)
            membership, _ = Membership.objects.get_or_create(
                user=person, neighborhood=old_city, defaults={"role": role}
            )
            if membership.role != role:
                membership.role = role
                membership.save(update_fields=["role"])
            if not membership.is_verified:
                services.verify_resident(actor=staff, membership=membership)
            if role in (Membership.Role.ORGANIZER, Membership.Role.MODERATOR):
                # Into the admin for the moderation queue only (it shows their neighborhoods).
                self.grant(person, "Neighborhood moderators", [], admin=True)

        orgmember = self.user("orgmember@demo.example", first_name="Omar")
        organizer = get_user_model().objects.get(email="organizer@demo.example")
        association = Organization.objects.filter(slug="old-city-civic-association").first()
        if association is None:
            association = services.create_organization(
                actor=organizer,
                name="Old City Civic Association",
                description="Neighbors keeping Old City clean, safe and welcoming since 1973.",
                website="https://oldcity.demo.example",
                neighborhoods=[old_city],
            )
            services.set_organization_verified(actor=staff, organization=association, verified=True)
        OrganizationMembership.objects.get_or_create(
            organization=association,
            user=orgmember,
            defaults={"role": OrganizationMembership.Role.MEMBER},
        )
        if not Organization.objects.filter(slug="fishtown-river-friends").exists():
            friends = services.create_organization(
                actor=orgmember,
                name="Fishtown River Friends",
                description="Volunteers who clean up the Delaware riverfront every month.",
                neighborhoods=list(
                    Neighborhood.objects.filter(
                        name__in=["Fishtown - Lower Kensington", "Old City"]
                    )
                ),
            )
            assert friends.slug == "fishtown-river-friends"

    def grant(self, user, group_name: str, models: list[str], *, admin: bool) -> None:
        """Models are ``model`` (in neighborhoods) or ``app_label.model``."""
        group, _ = Group.objects.get_or_create(name=group_name)
        for dotted in models:
            app_label, _, model = dotted.rpartition(".")
            codenames = [f"{action}_{model}" for action in ("add", "change", "view")]
            group.permissions.add(
                *Permission.objects.filter(
                    content_type__app_label=app_label or "neighborhoods", codename__in=codenames
                )
            )
        if admin:
            group.permissions.add(
                Permission.objects.get(
                    content_type__app_label="wagtailadmin", codename="access_admin"
                )
            )
        user.groups.add(group)

    # Alerts ------------------------------------------------------------------------------------

    def seed_alerts(self) -> None:
        """Official notices and resident reports in and around Old City, one of them retracted.

        Titles identify them, so a second run adds nothing.
        """
        from alerts import services as alerts
        from alerts.defaults import ensure_default_categories
        from alerts.models import Alert, AlertCategory, Severity

        if Alert.objects.filter(title__in=SEEDED_ALERT_TITLES).exists():
            return
        ensure_default_categories()
        User = get_user_model()
        staff = User.objects.get(email="staff@demo.example")
        resident = User.objects.get(email="resident@demo.example")
        organizer = User.objects.get(email="organizer@demo.example")
        moderator = User.objects.get(email="moderator@demo.example")
        by_name = {n.name: n for n in Neighborhood.objects.filter(name__in=ALERT_NEIGHBORHOODS)}
        old_city = by_name[HOME]
        category = {c.slug: c for c in AlertCategory.objects.all()}
        emergency_office, _ = Department.objects.get_or_create(
            slug="emergency-management",
            defaults={
                "name": "Office of Emergency Management",
                "description": "Heat, storms and other hazards; runs the city's alert feeds.",
            },
        )
        lat, lon = point_in(old_city)
        alerts.create_official_notice(
            author=staff,
            category=category["traffic"],
            severity=Severity.ADVISORY,
            title="Market Street repaving: one lane closed near 2nd Street",
            body=(
                "Crews are milling and repaving **Market Street** this week, 7 am to 5 pm. "
                "One eastbound lane is closed; expect delays and use Chestnut Street."
            ),
            lat=lat,
            lon=lon,
            radius_m=250,
        )
        alerts.create_official_notice(
            author=None,
            department=emergency_office,
            source_name="Office of Emergency Management",
            category=category["weather"],
            severity=Severity.WARNING,
            title="Heat health warning through Thursday",
            body=(
                "Temperatures near 98 °F. Cooling centers are open 10 am to 8 pm; check on "
                "older neighbours and never leave children or pets in a car."
            ),
            neighborhoods=[by_name[name] for name in ALERT_NEIGHBORHOODS],
        )
        mistaken = alerts.create_official_notice(
            author=staff,
            category=category["sanitation"],
            severity=Severity.INFO,
            title="Trash collection moved to Saturday",
            body="Collection for this week moves to Saturday.",
            neighborhoods=[old_city],
        )
        alerts.retract_alert(
            mistaken, user=staff, reason="Issued in error: collection stays on Wednesday."
        )
        report = alerts.create_resident_report(
            author=resident,
            category=category["utilities"],
            severity=Severity.ADVISORY,
            title="Water bubbling up from the street at Arch and 2nd",
            body="Looks like a leak under the crosswalk; the gutter is running.",
            lat=lat + 0.0008,
            lon=lon + 0.0006,
        )
        for neighbour in (organizer, moderator):
            alerts.confirm_alert(report, user=neighbour)
        alerts.create_resident_report(
            author=organizer,
            category=category["noise"],
            severity=Severity.INFO,
            title="Fireworks practice at the pier tonight",
            body="The Delaware River waterfront crew says tests run until 10 pm.",
            lat=lat - 0.0006,
            lon=lon + 0.0015,
        )

    # Discussions -------------------------------------------------------------------------------

    def seed_forums(self) -> None:
        from demo.forum_seed import seed_forums

        User = get_user_model()
        accounts = {
            key: User.objects.get(email=f"{key}@demo.example")
            for key in ("staff", "moderator", "organizer", "resident")
        }
        seed_forums(**accounts)

    # 311 ---------------------------------------------------------------------------------------

    def seed_cases(self) -> None:
        from demo import case_seed

        User = get_user_model()
        case_seed.seed_catalogue()
        staff = User.objects.get(email="staff@demo.example")
        people = case_seed.seed_staff(self.user, staff)
        catalogue = ["engagement.servicetype", "engagement.holiday", "engagement.open311key"]
        for person in User.objects.filter(city_staff__isnull=False):
            self.grant(
                person, "City staff", ["neighborhood", "organization", *catalogue], admin=True
            )
        liaison = User.objects.get(email="orgmember@demo.example")
        association = Organization.objects.get(slug="old-city-civic-association")
        case_seed.designate_liaison(liaison, association)
        case_seed.seed_cases(
            staff=staff,
            supervisor=people["supervisor"],
            resident=User.objects.get(email="resident@demo.example"),
            organizer=User.objects.get(email="organizer@demo.example"),
            moderator=User.objects.get(email="moderator@demo.example"),
            liaison=liaison,
        )

    # Pages -------------------------------------------------------------------------------------

    def seed_pages(self) -> None:
        home = HomePage.objects.first()
        if home is None:
            root = Page.get_first_root_node()
            home = HomePage(
                title="Philadelphia neighborhoods",
                slug="neighborhoods-home",
                intro=(
                    "<p>Join your neighborhood, follow what is happening on your block and raise "
                    "what needs fixing with your neighbors and the city.</p>"
                ),
                body=(
                    "<h2>How it works</h2><ol><li>Sign up and verify your e-mail.</li>"
                    "<li>Set your home location; we find your neighborhood.</li>"
                    "<li>Join it, and get verified by an organizer or a postcard code.</li></ol>"
                ),
            )
            root.add_child(instance=home)
            home.save_revision().publish()
            site = Site.objects.filter(is_default_site=True).first()
            old_root = site.root_page if site else None
            if site:
                site.root_page = home
                site.site_name = "Philadelphia Neighborhoods"
                site.save()
            else:
                Site.objects.create(
                    hostname="localhost",
                    port=80,
                    root_page=home,
                    is_default_site=True,
                    site_name="Philadelphia Neighborhoods",
                )
            if old_root and old_root.specific_class is Page and not old_root.get_children():
                old_root.delete()
        for name in NEIGHBORHOOD_PAGES:
            neighborhood = Neighborhood.objects.filter(name=name).first()
            if (
                neighborhood is None
                or NeighborhoodPage.objects.filter(neighborhood=neighborhood).exists()
            ):
                continue
            page = NeighborhoodPage(
                title=name,
                slug=neighborhood.slug,
                neighborhood=neighborhood,
                intro=f"<p>News and notes from the editors about {name}.</p>",
            )
            home.add_child(instance=page)
            page.save_revision().publish()
