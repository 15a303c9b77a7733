"""The demo's 311 side: departments, a realistic service catalogue with questions, the city's
holidays, and cases in every status across several neighborhoods, by every channel, one of them
escalated from a seeded discussion.

Service codes and the first case identify what is already there, so a second run adds nothing.
"""

from __future__ import annotations

from datetime import date, timedelta

from django.contrib.auth import get_user_model
from django.utils import timezone
from shapely.geometry import shape

from engagement import services as cases
from engagement.models import Case, CaseAudit, CaseNote, Holiday, ServiceQuestion, ServiceType
from forums.models import ForumCategory, Thread
from neighborhoods.models import CityStaff, Department, Neighborhood, OrganizationMembership

DEPARTMENTS = {
    "streets": ("Streets Department", "Street lights, potholes, trash and recycling collection."),
    "licenses-inspections": ("Licenses & Inspections", "Vacant lots, permits."),
    "clip": (
        "Community Life Improvement Program",
        "Graffiti removal, illegal dumping, abandoned vehicles.",
    ),
    "parks": ("Parks & Recreation", "Street trees, parks and playgrounds."),
    "health": ("Department of Public Health", "Rodent control and environmental health."),
    "police": ("Police (non-emergency)", "Noise and quality-of-life complaints."),
}

YES_NO = "yes|Yes\nno|No"
# code: (name, department, group, keywords, SLA days, forum category, forum tags, description,
#        [(code, prompt, datatype, required, values)])
CATALOGUE = {
    "pothole": (
        "Pothole",
        "streets",
        "Streets",
        "pothole, hole, road, asphalt",
        3,
        "streets",
        "potholes, road",
        "A hole in the road surface of a city street.",
        [
            (
                "size",
                "How big is it?",
                "singlevaluelist",
                True,
                "small|Smaller than a dinner plate\nmedium|Up to a car tyre\nlarge|Larger than a tyre",
            ),
            (
                "lane",
                "Where in the street?",
                "singlevaluelist",
                False,
                "travel|Travel lane\nbike|Bike lane\nparking|Parking lane\ncrosswalk|Crosswalk",
            ),
        ],
    ),
    "streetlight": (
        "Streetlight out",
        "streets",
        "Streets",
        "streetlight, light, lamp, dark",
        5,
        "streets",
        "streetlights, lighting",
        "A street or alley light that is out, flickering or on during the day.",
        [
            (
                "problem",
                "What is wrong?",
                "singlevaluelist",
                True,
                "out|Completely out\nflicker|Flickering\nday|On during the day\ndamaged|Pole damaged",
            ),
            ("pole", "Pole number (on a small tag on the pole)", "string", False, ""),
        ],
    ),
    "graffiti": (
        "Graffiti",
        "clip",
        "Sanitation & property",
        "graffiti, tag, paint, vandalism",
        7,
        "housing",
        "graffiti",
        "Graffiti on public or private property visible from the street.",
        [
            (
                "surface",
                "On what?",
                "singlevaluelist",
                True,
                "building|Building\nfence|Fence or wall\nsign|Sign or pole\nmailbox|Mailbox",
            ),
            ("offensive", "Is it offensive or hateful?", "singlevaluelist", True, YES_NO),
            ("consent", "The owner allows the city to remove it", "singlevaluelist", False, YES_NO),
        ],
    ),
    "illegal-dumping": (
        "Illegal dumping",
        "clip",
        "Sanitation & property",
        "dumping, trash, tires, furniture, debris",
        5,
        "trash",
        "dumping, trash",
        "Trash, tires, furniture or construction debris dumped on a street, lot or sidewalk.",
        [
            (
                "items",
                "What was dumped?",
                "multivaluelist",
                True,
                "tires|Tires\nfurniture|Furniture\nconstruction|Construction debris\n"
                "bags|Bags of trash\nappliances|Appliances",
            ),
            ("amount", "About how many truckloads?", "number", False, ""),
            ("seen", "When did you see it being dumped (if you did)?", "datetime", False, ""),
        ],
    ),
    "missed-collection": (
        "Missed trash or recycling",
        "streets",
        "Sanitation & property",
        "trash, recycling, pickup, collection, missed",
        2,
        "trash",
        "trash, recycling",
        "Trash or recycling that was set out on time and not collected.",
        [
            (
                "stream",
                "What was missed?",
                "singlevaluelist",
                True,
                "trash|Trash\nrecycling|Recycling\nboth|Both",
            ),
            ("set_out", "When did you set it out?", "datetime", True, ""),
        ],
    ),
    "abandoned-vehicle": (
        "Abandoned vehicle",
        "clip",
        "Streets",
        "abandoned, car, vehicle, parked",
        10,
        None,
        "abandoned-vehicle",
        "A vehicle left unmoved for days, without plates or visibly wrecked.",
        [
            ("make", "Make and colour", "string", True, ""),
            ("plate", "License plate (if any)", "string", False, ""),
            ("days", "About how many days has it been there?", "number", False, ""),
        ],
    ),
    "broken-sidewalk": (
        "Broken sidewalk",
        "streets",
        "Streets",
        "sidewalk, pavement, trip, curb",
        15,
        "streets",
        "sidewalks, trees",
        "A sidewalk or curb that is broken, lifted or a tripping hazard.",
        [
            (
                "cause",
                "What caused it?",
                "singlevaluelist",
                False,
                "roots|Tree roots\nworks|Utility works\nage|Wear\nunknown|Not sure",
            ),
            ("hazard", "Has someone fallen there?", "singlevaluelist", False, YES_NO),
        ],
    ),
    "tree-hazard": (
        "Tree down or dangerous",
        "parks",
        "Parks & trees",
        "tree, branch, limb, fallen",
        2,
        "parks",
        "trees",
        "A street tree or large branch that fell or may fall. Call 911 if it is on a power line.",
        [
            (
                "state",
                "What is happening?",
                "singlevaluelist",
                True,
                "down|Tree down\nbranch|Branch down\nleaning|Leaning or cracked\ndead|Dead tree",
            ),
            ("blocking", "Is it blocking the street or sidewalk?", "singlevaluelist", True, YES_NO),
            ("wires", "If it touches wires, call 911 and PECO first.", "string", False, ""),
        ],
    ),
    "rodents": (
        "Rodents",
        "health",
        "Health",
        "rats, mice, rodents, burrows",
        10,
        None,
        "rats, rodents",
        "Rats or rat burrows outside, in alleys, lots or sewers.",
        [
            (
                "where",
                "Where have you seen them?",
                "multivaluelist",
                True,
                "alley|Alley\nlot|Vacant lot\nyard|Yard\nsewer|Sewer or inlet\nstreet|Street",
            ),
            ("burrows", "Have you seen burrows?", "singlevaluelist", False, YES_NO),
        ],
    ),
    "noise": (
        "Noise",
        "police",
        "Quality of life",
        "noise, music, loud, party, bar",
        3,
        "safety",
        "noise",
        "Ongoing noise from a business, event or property (for emergencies call 911).",
        [
            (
                "source",
                "What makes the noise?",
                "singlevaluelist",
                True,
                "music|Music\nparty|Party\nconstruction|Construction\nbusiness|Business\nother|Other",
            ),
            ("when", "When does it usually happen?", "text", False, ""),
        ],
    ),
}
# Whose wires the "wires" line is about: a display-only note, not a question.
DISPLAY_ONLY = {("tree-hazard", "wires")}

HOLIDAYS = [
    ("2026-01-01", "New Year's Day"),
    ("2026-01-19", "Martin Luther King Jr. Day"),
    ("2026-02-16", "Presidents' Day"),
    ("2026-04-03", "Good Friday"),
    ("2026-05-25", "Memorial Day"),
    ("2026-06-19", "Juneteenth"),
    ("2026-07-03", "Independence Day (observed)"),
    ("2026-09-07", "Labor Day"),
    ("2026-10-12", "Indigenous Peoples' Day"),
    ("2026-11-11", "Veterans Day"),
    ("2026-11-26", "Thanksgiving"),
    ("2026-11-27", "Day after Thanksgiving"),
    ("2026-12-25", "Christmas Day"),
    ("2027-01-01", "New Year's Day"),
    ("2027-01-18", "Martin Luther King Jr. Day"),
    ("2027-02-15", "Presidents' Day"),
    ("2027-03-26", "Good Friday"),
    ("2027-05-31", "Memorial Day"),
    ("2027-06-18", "Juneteenth (observed)"),
    ("2027-07-05", "Independence Day (observed)"),
    ("2027-09-06", "Labor Day"),
    ("2027-10-11", "Indigenous Peoples' Day"),
    ("2027-11-11", "Veterans Day"),
    ("2027-11-25", "Thanksgiving"),
    ("2027-11-26", "Day after Thanksgiving"),
    ("2027-12-24", "Christmas Day (observed)"),
]


def seed_catalogue() -> dict[str, ServiceType]:
    departments = {}
    for slug, (name, description) in DEPARTMENTS.items():
        department = (
            Department.objects.filter(slug=slug).first()
            or Department.objects.filter(name=name).first()
        )
        if department is None:
            department = Department.objects.create(slug=slug, name=name, description=description)
        departments[slug] = department
    categories = {c.slug: c for c in ForumCategory.objects.all()}
    types = {}
    for order, (code, spec) in enumerate(CATALOGUE.items()):
        name, dept, group, keywords, sla, category, tags, description, questions = spec
        kind, created = ServiceType.objects.get_or_create(
            code=code,
            defaults={
                "name": name,
                "department": departments[dept],
                "group": group,
                "keywords": keywords,
                "sla_working_days": sla,
                "forum_category": categories.get(category) if category else None,
                "forum_tags": tags,
                "description": description,
                "sort_order": (order + 1) * 10,
            },
        )
        if created:
            for position, (qcode, prompt, datatype, required, values) in enumerate(questions):
                ServiceQuestion.objects.create(
                    service_type=kind,
                    sort_order=position,
                    code=qcode,
                    prompt=prompt,
                    datatype=datatype,
                    required=required,
                    values=values,
                    variable=(code, qcode) not in DISPLAY_ONLY,
                )
        types[code] = kind
    for day, name in HOLIDAYS:
        Holiday.objects.get_or_create(date=date.fromisoformat(day), defaults={"name": name})
    return types


def _point(neighborhood: Neighborhood, dlat: float = 0.0, dlon: float = 0.0):
    point = shape(neighborhood.boundary).representative_point()
    return round(point.y + dlat, 6), round(point.x + dlon, 6)


def _backdate(case: Case, days: float) -> Case:
    """Move a seeded case (and its timeline) into the past, keeping its service level honest and
    its dates in step with its timeline: acknowledged and closed when those notes say, last
    changed (publicly) at its last public note."""
    case.refresh_from_db()  # the caller's copy may predate its status changes
    created = timezone.now() - timedelta(days=days)
    notes = list(case.notes.order_by("created_at", "id"))
    span = max(timezone.now() - created, timedelta(minutes=1))
    at = {}
    for n, note in enumerate(notes):
        at[note.pk] = created + span * (n / max(1, len(notes)))
        CaseNote.objects.filter(pk=note.pk).update(created_at=at[note.pk])
    audit = list(case.audit.order_by("created_at", "id"))
    for n, entry in enumerate(audit):
        when = created + span * (n / max(1, len(audit)))
        CaseAudit.objects.filter(pk=entry.pk).update(created_at=when)
    moves = [n for n in notes if n.kind == CaseNote.Kind.STATUS]
    fields = {
        "created_at": created,
        "expected_at": cases.expected_at(case.service_type, created),
        "updated_at": max((at[n.pk] for n in notes if n.is_public), default=created),
    }
    if case.acknowledged_at:
        fields["acknowledged_at"] = at[moves[0].pk] if moves else created + span * 0.2
    if case.closed_at:
        closings = [n for n in moves if n.status_to == Case.Status.CLOSED]
        fields["closed_at"] = at[closings[-1].pk] if closings else created + span * 0.8
    Case.objects.filter(pk=case.pk).update(**fields)
    case.refresh_from_db()
    return case


def seed_cases(*, staff, supervisor, resident, organizer, moderator, liaison) -> None:
    types = seed_catalogue()
    if Case.objects.exists():
        return
    User = get_user_model()
    by_name = {
        n.name: n
        for n in Neighborhood.objects.filter(
            name__in=[
                "Old City",
                "Fishtown - Lower Kensington",
                "Point Breeze",
                "Germantown, Morton",
                "Society Hill",
            ]
        )
    }
    old_city, fishtown = by_name["Old City"], by_name["Fishtown - Lower Kensington"]
    neighbours = {
        u.username: u
        for u in User.objects.filter(username__in=["alma", "bao", "carmen", "devon", "mateo"])
    }

    def file(kind, neighborhood, who, text, answers, *, days, dlat=0.0, dlon=0.0, **kwargs):
        lat, lon = _point(neighborhood, dlat, dlon)
        filed = cases.file_case(
            service_type=types[kind],
            reporter=who,
            lat=lat,
            lon=lon,
            description=text,
            answers=answers,
            **kwargs,
        )
        return filed.case, days

    department_staff = {
        slug: User.objects.filter(city_staff__department__slug=slug).first() or supervisor
        for slug in ("clip", "parks", "police")
    }
    clip, parks, police = (department_staff[s] for s in ("clip", "parks", "police"))
    # Filed oldest first, so tracking numbers follow the calendar.
    timeline: list[tuple[Case, float]] = []
    rats, days = file(
        "rodents",
        by_name["Point Breeze"],
        neighbours.get("bao", resident),
        "Rats running along the alley behind the corner stores every evening.",
        {"where": ["alley", "street"], "burrows": "yes"},
        days=21,
    )
    timeline.append((rats, days))

    car, days = file(
        "abandoned-vehicle",
        fishtown,
        neighbours.get("mateo", resident),
        "Silver sedan without plates, hasn't moved in weeks.",
        {"make": "Silver Honda sedan", "days": "20"},
        days=15,
    )
    cases.change_status(
        car,
        user=clip,
        status="closed",
        resolution="unable_to_locate",
        note="No vehicle found at the address on two visits.",
    )
    timeline.append((car, days))

    noise, days = file(
        "noise",
        old_city,
        resident,
        "Music from the bar on Chestnut until 3 am.",
        {"source": "music", "when": "Fridays and Saturdays after 1 am"},
        days=12,
        dlat=-0.0012,
        dlon=0.0016,
    )
    cases.change_status(
        noise,
        user=police,
        status="closed",
        resolution="not_city",
        responsible_party="Liquor Control Board (licensing)",
        note="Late-hours music is a licensing matter; forwarded to the PLCB.",
    )
    cases.answer_survey(
        noise, user=resident, fixed=False, satisfaction=2, comment="Still loud every weekend."
    )
    timeline.append((noise, days))

    trash, days = file(
        "missed-collection",
        old_city,
        moderator,
        "Recycling on Quarry Street was skipped on Tuesday.",
        {"stream": "recycling", "set_out": "2026-11-17T06:30:00-05:00"},
        days=8,
        dlat=0.0004,
        dlon=0.0009,
    )
    cases.change_status(
        trash, user=staff, status="closed", resolution="fixed", note="Collected Wednesday morning."
    )
    cases.answer_survey(
        trash,
        user=moderator,
        fixed=True,
        satisfaction=5,
        comment="Picked up the next morning, thanks!",
    )
    timeline.append((trash, days))

    tree, days = file(
        "tree-hazard",
        by_name["Society Hill"],
        organizer,
        "Large branch hanging over the sidewalk on Spruce Street.",
        {"state": "branch", "blocking": "no"},
        days=6,
    )
    cases.change_status(
        tree, user=parks, status="closed", resolution="fixed", note="Branch removed."
    )
    cases.reopen(
        tree,
        user=organizer,
        comment="Only half of the branch was removed; the rest still hangs over the sidewalk.",
    )
    timeline.append((tree, days))

    dumping, days = file(
        "illegal-dumping",
        old_city,
        None,
        "Tires and a sofa dumped on the vacant lot behind Bread Street.",
        {"items": ["tires", "furniture"], "amount": "1"},
        days=5,
        dlat=-0.0004,
        dlon=0.0007,
        channel="liaison",
        filed_by=liaison,
        contact_name="Mr. R. Jones",
        contact_phone="215-555-0199",
    )
    cases.change_status(dumping, user=clip, status="in_progress", note="Crew assigned.")
    cases.add_note(dumping, user=clip, text="Lot owner notified about fencing.", public=False)
    timeline.append((dumping, days))

    roots = Thread.objects.filter(title="Tree roots lifting the sidewalk on Race Street").first()
    if roots is not None:
        escalated = cases.escalate_thread(
            roots,
            user=organizer,
            service_type=types["broken-sidewalk"],
            answers={"cause": "roots", "hazard": "yes"},
        ).case
        cases.change_status(
            escalated, user=staff, status="acknowledged", note="Inspector visiting this week."
        )
        cases.change_status(
            escalated,
            user=staff,
            status="scheduled",
            scheduled_for=timezone.localdate() + timedelta(days=9),
            note="Sidewalk repair crew booked; the tree pit will be widened.",
        )
        timeline.append((escalated, 4))

    graffiti, days = file(
        "graffiti",
        by_name["Germantown, Morton"],
        None,
        "Tags on the wall of the library.",
        {"surface": "building", "offensive": "no"},
        days=3,
        channel="open311",
        api_client="Philly311 mobile app",
    )
    timeline.append((graffiti, days))

    light, days = file(
        "streetlight",
        fishtown,
        None,
        "Caller reports the light outside 1200 Frankford Ave is out.",
        {"problem": "out"},
        days=2,
        channel="phone",
        filed_by=staff,
        contact_name="Mrs. D. Walker",
        contact_phone="215-555-0142",
    )
    cases.change_status(light, user=staff, status="acknowledged", note="Added to the night route.")
    timeline.append((light, days))

    pothole, days = file(
        "pothole",
        old_city,
        resident,
        "Deep pothole in the bike lane on Arch Street, cyclists swerve into traffic.",
        {"size": "large", "lane": "bike"},
        days=1,
        dlat=0.0008,
        dlon=-0.0011,
    )
    if "alma" in neighbours:
        cases.support(pothole, user=neighbours["alma"])
    timeline.append((pothole, days))

    twin, days = file(
        "pothole",
        old_city,
        neighbours.get("carmen", organizer),
        "Big hole on Arch near 2nd in the bike lane.",
        {"size": "medium"},
        days=1,
        dlat=0.0009,
        dlon=-0.0010,
    )
    cases.merge_cases(twin, pothole, user=staff, reason="Same pothole on Arch Street")
    timeline.append((twin, days))

    for case, days in timeline:
        _backdate(case, days)


def seed_staff(demo_user, streets_staff) -> dict:
    """One supervisor (every department) and a staff member per other department."""
    supervisor = demo_user("supervisor@demo.example", first_name="Sky")
    CityStaff.objects.update_or_create(
        user=supervisor,
        defaults={
            "department": streets_staff.city_staff.department,
            "title": "311 supervisor",
            "is_supervisor": True,
        },
    )
    for slug, first in (("clip", "Cleo"), ("parks", "Pat"), ("health", "Hana"), ("police", "Paz")):
        department = Department.objects.get(slug=slug)
        person = demo_user(f"{slug}@demo.example", first_name=first)
        CityStaff.objects.get_or_create(
            user=person, defaults={"department": department, "title": "Case worker"}
        )
    return {"supervisor": supervisor}


def designate_liaison(user, organization) -> None:
    OrganizationMembership.objects.filter(user=user, organization=organization).update(
        is_liaison=True
    )
