"""Lively demo discussions: threads of different ages and support, replies, an official answer,
a co-signed thread, one thread with enough verified supporters to suggest a 311 case, and a
reply hidden by neighbours' flags waiting in the moderation queue.

Titles identify the threads, so running the seed again adds nothing.
"""

from __future__ import annotations

import io
from datetime import timedelta

from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from PIL import Image, ImageDraw
from shapely.geometry import shape

from demo.accounts import demo_password
from forums import services as forums
from forums.defaults import ensure_default_categories
from forums.models import ForumCategory, Reply, Thread, hot_score
from neighborhoods import services as people
from neighborhoods.models import Membership, Neighborhood, Organization

NEIGHBOURS = [
    ("alma", "Alma R."),
    ("bao", "Bao N."),
    ("carmen", "Carmen D."),
    ("devon", "Devon W."),
    ("esther", "Esther K."),
    ("farid", "Farid S."),
    ("grace", "Grace O."),
    ("hector", "Hector M."),
    ("ines", "Ines P."),
    ("jamal", "Jamal T."),
    ("kim", "Kim L."),
    ("lena", "Lena B."),
]
FISHTOWN_NEIGHBOURS = [("mateo", "Mateo G."), ("nadia", "Nadia H."), ("priya", "Priya V.")]

# (title, category, tags, body, author, hours ago, (dlat, dlon) or None, supporters, replies)
# A reply is (author, text) or (author, text, quote index); "staff" replies officially.
OLD_CITY_THREADS = [
    (
        "Dangerous crossing at Front and Market: drivers don't stop",
        "safety",
        "crosswalk, traffic-safety",
        "Every morning kids from the school cross **Front Street at Market** and cars coming off "
        "I-95 don't stop. The crosswalk paint is almost gone.\n\nCan we get a raised crosswalk or "
        "at least fresh paint and a sign?",
        "resident",
        30,
        (0.0012, 0.0030),
        12,
        [
            ("alma", "My son crosses there. A driver nearly clipped him last week."),
            ("bao", "The paint was last done before the pandemic, I think."),
            ("organizer", "Our civic association raised this at the last meeting; co-signing."),
            ("carmen", "A raised crosswalk would slow the ramp traffic a lot.", 2),
        ],
    ),
    (
        "Streetlight out on Elfreth's Alley",
        "streets",
        "streetlights",
        "The lamp halfway down Elfreth's Alley has been dark for two weeks. It's pitch black "
        "after 6 pm now.",
        "devon",
        52,
        (0.0006, 0.0012),
        6,
        [
            ("esther", "Still out last night."),
            (
                "staff",
                "Thanks for the report. A crew replaced the photocell this morning; the lamp "
                "should come on at dusk tonight. Reply here if it doesn't.",
            ),
            ("devon", "It's on. Thank you @staff!", 1),
        ],
    ),
    (
        "Overflowing trash cans at Penn's Landing steps",
        "trash",
        "litter, trash",
        "The public cans by the Penn's Landing steps overflow every weekend and the wind blows "
        "everything into the river.",
        "farid",
        8,
        (-0.0004, 0.0042),
        4,
        [("grace", "Maybe bigger cans, or a Sunday pickup?")],
    ),
    (
        "Tree roots lifting the sidewalk on Race Street",
        "parks",
        "trees, sidewalks",
        "The sidewalk slabs outside 200 Race are tilted by two inches. Someone with a walker "
        "tripped there on Tuesday.",
        "grace",
        75,
        (0.0020, 0.0005),
        3,
        [("hector", "The tree is healthy, it just needs a bigger pit.")],
    ),
    (
        "Spring cleanup day: volunteers wanted",
        "events",
        "cleanup, volunteering",
        "Old City Civic Association is organising a cleanup on the first Saturday of April. "
        "Gloves and bags provided. Meet at Christ Church at 9 am.",
        "organizer",
        20,
        None,
        5,
        [
            ("ines", "Count me in!"),
            ("jamal", "I can bring a cart."),
            ("moderator", "Pinning this so it stays on top."),
        ],
    ),
    (
        "New bike lane on 2nd Street: what do people think?",
        "transit",
        "bike-lanes",
        "The city is proposing a protected bike lane on 2nd Street. Parking would move to the "
        "other side. Thoughts before the public meeting?",
        "kim",
        100,
        None,
        2,
        [
            ("lena", "Yes please, 2nd is scary on a bike."),
            ("alma", "Worried about deliveries for the shops."),
            ("bao", "Loading zones on the cross streets could solve that.", 1),
            ("carmen", "Meeting is on the 14th at the library."),
        ],
    ),
    (
        "Noise from the bar on Chestnut after 2 am",
        "safety",
        "noise",
        "The patio music goes on until 3 am most weekends. Who do we call?",
        "hector",
        3,
        (-0.0010, 0.0018),
        1,
        [],
    ),
    (
        "Graffiti on the old bank building",
        "housing",
        "graffiti",
        "Fresh tags on the Market Street side of the old bank. Photo attached.",
        "ines",
        14,
        (0.0003, 0.0022),
        2,
        [],
    ),
]

FISHTOWN_THREADS = [
    (
        "Pothole on Girard Avenue eating tyres",
        "streets",
        "potholes",
        "Eastbound Girard by Frankford has a pothole a foot wide. Two flat tyres on our block.",
        "mateo",
        10,
        None,
        3,
        [("nadia", "Saw a car stuck there this morning.")],
    ),
    (
        "Riverfront path lighting",
        "parks",
        "riverfront, lighting",
        "The path along the river by Penn Treaty Park needs more lights.",
        "priya",
        40,
        None,
        2,
        [],
    ),
]


def _photo(title: str) -> SimpleUploadedFile:
    image = Image.new("RGB", (800, 600), (120, 130, 140))
    draw = ImageDraw.Draw(image)
    for n in range(0, 800, 40):
        draw.line([(n, 0), (n + 200, 600)], fill=(200, 60, 160), width=6)
    draw.rectangle([40, 40, 760, 120], fill=(30, 30, 30))
    draw.text((60, 70), title[:60], fill=(255, 255, 255))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=80)
    return SimpleUploadedFile("demo-photo.jpg", buffer.getvalue(), content_type="image/jpeg")


class ForumSeeder:
    def __init__(self, staff, by_email: dict) -> None:
        self.staff = staff
        self.users = dict(by_email)

    def neighbour(self, username: str, display: str, neighborhood: Neighborhood):
        User = get_user_model()
        email = f"{username}@neighbours.demo.example"
        user = User.objects.filter(username=username).first()
        if user is None:
            user = User.objects.create_user(
                username=username, email=email, password=demo_password()
            )
        EmailAddress.objects.update_or_create(
            user=user, email=email, defaults={"verified": True, "primary": True}
        )
        profile = people.get_profile(user)
        if not profile.display_name:
            people.update_profile(user=user, display_name=display)
        if profile.home_neighborhood_id is None:
            point = shape(neighborhood.boundary).representative_point()
            people.set_home_location(user=user, lat=point.y, lon=point.x)
        membership, _ = Membership.objects.get_or_create(user=user, neighborhood=neighborhood)
        if not membership.is_verified:
            people.verify_resident(actor=self.staff, membership=membership)
        return user

    def establish(self) -> None:
        """Demo accounts are weeks old: new-member limits (no links or photos) do not apply."""
        month_ago = timezone.now() - timedelta(days=45)
        ids = [u.pk for u in self.users.values()]
        get_user_model().objects.filter(pk__in=ids, date_joined__gt=month_ago).update(
            date_joined=month_ago
        )
        for user in self.users.values():
            user.refresh_from_db(fields=["date_joined"])

    def post(self, neighborhood: Neighborhood, spec: tuple, categories: dict) -> Thread:
        title, category, tags, body, author, hours, offset, support, replies = spec
        lat = lon = None
        if offset is not None:
            point = shape(neighborhood.boundary).representative_point()
            lat, lon = point.y + offset[0], point.x + offset[1]
            if forums.distance_to_neighborhood_m(neighborhood, lat, lon) > 0:
                lat, lon = point.y, point.x
        photos = [_photo(title)] if "graffiti" in tags else []
        thread = forums.create_thread(
            author=self.users[author],
            neighborhood=neighborhood,
            title=title,
            body=body,
            category=categories[category],
            tags=tags,
            lat=lat,
            lon=lon,
            photos=photos,
        )
        voters = [
            u
            for key, u in self.users.items()
            if key not in ("staff", author) and forums.posting_refusal(u, neighborhood) is None
        ]
        for voter in voters[:support]:
            forums.vote(voter, thread=thread)
        created = timezone.now() - timedelta(hours=hours)
        posted: list[Reply] = []
        for n, item in enumerate(replies):
            who, text = item[0], item[1]
            quote = posted[item[2]] if len(item) > 2 else None
            reply = forums.create_reply(thread, author=self.users[who], body=text, quote=quote)
            when = created + timedelta(hours=hours * (n + 1) / (len(replies) + 2))
            Reply.objects.filter(pk=reply.pk).update(created_at=when)
            posted.append(reply)
        thread.refresh_from_db()
        last = max([created, *[r.created_at for r in Reply.objects.filter(thread=thread)]])
        Thread.objects.filter(pk=thread.pk).update(
            created_at=created,
            last_activity_at=last,
            hot=hot_score(thread.vote_count, thread.reply_count, created),
        )
        thread.refresh_from_db()
        return thread


def seed_forums(staff, moderator, organizer, resident) -> None:
    """Seed the demo discussions (see the module docstring)."""
    if Thread.objects.filter(title=OLD_CITY_THREADS[0][0]).exists():
        return
    ensure_default_categories()
    categories = {c.slug: c for c in ForumCategory.objects.all()}
    old_city = Neighborhood.objects.get(name="Old City")
    fishtown = Neighborhood.objects.get(name="Fishtown - Lower Kensington")
    seeder = ForumSeeder(
        staff,
        {
            "staff": staff,
            "moderator": moderator,
            "organizer": organizer,
            "resident": resident,
        },
    )
    for username, display in NEIGHBOURS:
        seeder.users[username] = seeder.neighbour(username, display, old_city)
    for username, display in FISHTOWN_NEIGHBOURS:
        seeder.users[username] = seeder.neighbour(username, display, fishtown)
    seeder.establish()

    threads = {spec[0]: seeder.post(old_city, spec, categories) for spec in OLD_CITY_THREADS}
    for spec in FISHTOWN_THREADS:
        seeder.post(fishtown, spec, categories)

    crossing = threads[OLD_CITY_THREADS[0][0]]
    association = Organization.objects.filter(slug="old-city-civic-association").first()
    if association is not None:
        forums.cosign(crossing, association, user=organizer)

    streetlight = threads["Streetlight out on Elfreth's Alley"]
    official = Reply.objects.filter(thread=streetlight, is_official=True).first()
    if official is not None:
        forums.mark_answer(streetlight, official, user=streetlight.author)

    cleanup = threads["Spring cleanup day: volunteers wanted"]
    forums.moderate(moderator, "pin", thread=cleanup, reason="Neighborhood event")

    noise = threads["Noise from the bar on Chestnut after 2 am"]
    rude = forums.create_reply(
        noise,
        author=seeder.users["bao"],
        body="Whoever complains about noise downtown should move to the suburbs, idiots.",
    )
    for username in ("alma", "carmen", "devon"):
        forums.flag(seeder.users[username], reply=rude, reason="abuse", note="Name-calling")
