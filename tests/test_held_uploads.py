"""Photos chosen on a form that comes back with an error are kept for the next try: listed with a
checkbox, private to the person, used once, gone after a day; refused photos are not kept."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from alerts.models import Alert, Severity
from engagement.models import Case
from forums.models import Thread
from neighborhoods.models import HeldUpload
from tests import factories as f
from tests.factories import category, signed_in
from tests.test_alert_pages import jpeg_bytes
from tests.test_case_pages import QUESTIONS, action_url, close, report_data
from tests.test_forum_pages import new_thread_data

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media_root")]


def photo(name: str = "corner.jpg", size=(40, 30)) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, jpeg_bytes(size), content_type="image/jpeg")


def kept_keys(response, field: str = "photos") -> list[str]:
    html = response.content.decode()
    return re.findall(rf'name="held-{field}" value="([0-9a-f-]+)" checked', html)


def new_thread(neighborhood) -> str:
    return reverse("forums:new", args=[neighborhood.slug])


def test_a_thread_refused_for_its_title_keeps_its_photos_for_the_next_try():
    n = f.NeighborhoodFactory()
    author = f.forum_member(n)
    client = signed_in(author)
    first = client.post(
        new_thread(n), {**new_thread_data(n, title=""), "photos": [photo("a.jpg"), photo("b.jpg")]}
    )
    assert first.status_code == 400
    html = first.content.decode()
    assert "Kept from your last try" in html and "a.jpg" in html and "b.jpg" in html
    assert "Choose your photos again" not in html
    keys = kept_keys(first)
    assert len(keys) == 2 and HeldUpload.objects.filter(owner=author).count() == 2

    # The next try sends the kept photos by key only, plus one newly chosen.
    second = client.post(
        new_thread(n), {**new_thread_data(n), "held-photos": keys, "photos": [photo("c.jpg")]}
    )
    thread = Thread.objects.get()
    assert second.status_code == 302
    assert thread.photos.count() == 3
    assert not HeldUpload.objects.exists()  # used once, then gone


def test_unticking_a_kept_photo_leaves_it_out():
    n = f.NeighborhoodFactory()
    client = signed_in(f.forum_member(n))
    first = client.post(new_thread(n), {**new_thread_data(n, body=""), "photos": [photo()]})
    assert len(kept_keys(first)) == 1
    client.post(new_thread(n), new_thread_data(n))  # the checkbox is not sent
    assert Thread.objects.get().photos.count() == 0


def test_kept_photos_count_towards_the_limit_and_a_refused_field_keeps_nothing(settings):
    settings.ENGAGEMENT = {"FORUM_MAX_PHOTOS": 2}
    n = f.NeighborhoodFactory()
    client = signed_in(f.forum_member(n))
    first = client.post(
        new_thread(n), {**new_thread_data(n, title=""), "photos": [photo("a.jpg"), photo("b.jpg")]}
    )
    keys = kept_keys(first)
    second = client.post(
        new_thread(n),
        {**new_thread_data(n), "held-photos": keys, "photos": [photo("c.jpg")]},
    )
    assert second.status_code == 400
    html = second.content.decode()
    assert "Add at most 2 photos." in html and "Choose your photos again" in html
    assert kept_keys(second) == [] and not HeldUpload.objects.exists()
    assert not Thread.objects.exists()


def test_a_file_that_is_not_a_photo_is_not_kept():
    n = f.NeighborhoodFactory()
    client = signed_in(f.forum_member(n))
    fake = SimpleUploadedFile("notes.jpg", b"not an image at all", content_type="image/jpeg")
    response = client.post(new_thread(n), {**new_thread_data(n), "photos": [fake]})
    assert response.status_code == 400
    assert "Choose your photos again" in response.content.decode()
    assert not HeldUpload.objects.exists()


def test_nobody_else_can_use_a_kept_photo_and_old_ones_expire():
    n = f.NeighborhoodFactory()
    owner, other = f.forum_member(n), f.forum_member(n)
    first = signed_in(owner).post(
        new_thread(n), {**new_thread_data(n, title=""), "photos": [photo()]}
    )
    keys = kept_keys(first)
    signed_in(other).post(new_thread(n), {**new_thread_data(n), "held-photos": keys})
    assert Thread.objects.get().photos.count() == 0  # the key means nothing to someone else
    assert HeldUpload.objects.filter(owner=owner).count() == 1

    HeldUpload.objects.update(created_at=timezone.now() - timedelta(hours=25))
    client = signed_in(owner)
    client.post(new_thread(n), {**new_thread_data(n, title="Later"), "held-photos": keys})
    assert Thread.objects.get(title="Later").photos.count() == 0
    # The next form that keeps anything clears what has expired, for everyone.
    client.post(new_thread(n), {**new_thread_data(n, title=""), "photos": [photo("new.jpg")]})
    assert list(HeldUpload.objects.values_list("name", flat=True)) == ["new.jpg"]


def test_each_person_keeps_a_bounded_number_of_files(settings):
    settings.ENGAGEMENT = {"HELD_UPLOADS_PER_PERSON": 3}
    n = f.NeighborhoodFactory()
    author = f.forum_member(n)
    client = signed_in(author)
    for name in ("a", "b", "c", "d"):
        client.post(new_thread(n), {**new_thread_data(n, title=""), "photos": [photo(name)]})
    assert sorted(HeldUpload.objects.values_list("name", flat=True)) == ["b", "c", "d"]


def test_a_case_report_refused_for_its_location_keeps_its_photos():
    n = f.NeighborhoodFactory()
    kind = f.service_type("pothole", questions=QUESTIONS)
    client = signed_in(f.forum_member(n))
    url = reverse("engagement:report")
    first = client.post(url, {**report_data(kind, n, lat="", lon=""), "photos": [photo()]})
    assert first.status_code == 400
    html = first.content.decode()
    assert "Kept from your last try" in html and "choose any photos again" not in html
    second = client.post(url, {**report_data(kind, n), "held-photos": kept_keys(first)})
    assert second.status_code == 302
    assert Case.objects.get().photos.count() == 1
    assert not HeldUpload.objects.exists()


def test_a_resident_report_keeps_its_photo_and_a_new_choice_replaces_it():
    n = f.NeighborhoodFactory()
    member = f.MembershipFactory(neighborhood=n, home_claimed=True).user
    client = signed_in(member)
    lat, lon = f.inside(n)
    data = {
        "category": category("street-conditions").pk,
        "title": "",
        "body": "Water running down the street.",
        "severity": Severity.ADVISORY,
        "lat": lat,
        "lon": lon,
    }
    url = reverse("alerts:report")
    first = client.post(url, {**data, "photo": photo("first.jpg", size=(40, 30))})
    assert first.status_code == 400
    keys = kept_keys(first, "photo")
    assert len(keys) == 1 and "first.jpg" in first.content.decode()

    second = client.post(
        url,
        {
            **data,
            "title": "Water main break",
            "held-photo": keys,
            "photo": photo("second.jpg", size=(60, 20)),
        },
    )
    assert second.status_code == 302
    alert = Alert.objects.get()
    assert (alert.photo.width, alert.photo.height) == (60, 20)  # the new choice won
    assert not HeldUpload.objects.exists()


def test_reopening_without_a_comment_keeps_the_photo_for_the_next_try():
    n = f.NeighborhoodFactory()
    case = close(f.case(n))
    client = signed_in(case.reporter)
    url = action_url(case, "reopen")
    first = client.post(url, {"comment": "", "photo": photo("still-there.jpg")})
    assert first.status_code == 400
    keys = kept_keys(first, "photo")
    assert len(keys) == 1 and "still-there.jpg" in first.content.decode()
    second = client.post(url, {"comment": "Still a hole.", "held-photo": keys})
    assert second.status_code == 302
    assert case.notes.get(kind="contested").photo.name.startswith("cases/")
    assert not HeldUpload.objects.exists()
