"""``import_neighborhoods``: the real Philadelphia file, re-runs, and files that must not import."""

from __future__ import annotations

import copy
import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from shapely.geometry import shape

from neighborhoods.importer import ImportFailed
from neighborhoods.models import Membership, Neighborhood
from tests.conftest import PHILLY_COUNT, PHILLY_FILE, PHILLY_NAME_PROPERTY
from tests.factories import MembershipFactory, square, square_polygon

pytestmark = pytest.mark.django_db


def run_import(
    path, *, name_property: str = PHILLY_NAME_PROPERTY, stderr: StringIO | None = None, **options
) -> tuple[str, str]:
    """Run the command; return what it wrote to stdout and stderr."""
    out, err = StringIO(), stderr or StringIO()
    call_command(
        "import_neighborhoods",
        str(path),
        name_property=name_property,
        stdout=out,
        stderr=err,
        **options,
    )
    return out.getvalue(), err.getvalue()


def feature(name: str | None, geometry: dict | None, **properties) -> dict:
    if name is not None:
        properties[PHILLY_NAME_PROPERTY] = name
    return {"type": "Feature", "properties": properties, "geometry": geometry}


def write_json(path: Path, data) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def collection(*features: dict) -> dict:
    return {"type": "FeatureCollection", "features": list(features)}


VALID = feature("Good Place", square_polygon(10.0, 10.0))


class TestRealFile:
    def test_importing_the_real_file_creates_all_159_neighborhoods(self):
        out, _ = run_import(PHILLY_FILE)

        assert f"Imported {PHILLY_COUNT} neighborhoods ({PHILLY_COUNT} new, 0 updated)" in out
        assert Neighborhood.objects.count() == PHILLY_COUNT
        old_city = Neighborhood.objects.get(name="Old City")
        assert old_city.slug == "old-city"
        assert old_city.boundary["type"] == "MultiPolygon"
        assert old_city.source_properties["NAME"] == "OLD_CITY"
        bounds = shape(old_city.boundary).bounds
        assert (old_city.min_lon, old_city.min_lat, old_city.max_lon, old_city.max_lat) == bounds

    def test_every_imported_slug_is_derived_from_the_name_and_unique(self):
        run_import(PHILLY_FILE)

        slugs = dict(Neighborhood.objects.values_list("name", "slug"))
        assert len(set(slugs.values())) == PHILLY_COUNT
        assert slugs["Fishtown - Lower Kensington"] == "fishtown-lower-kensington"
        assert slugs["Germantown, West Central"] == "germantown-west-central"
        assert slugs["University City"] == "university-city"

    def test_a_description_property_fills_in_the_description(self):
        run_import(PHILLY_FILE, description_property="MAPNAME")

        assert Neighborhood.objects.get(slug="old-city").description == "Old City"

    def test_rerunning_updates_in_place_without_duplicates(self, tmp_path, philly_features):
        run_import(PHILLY_FILE)
        ids_before = dict(Neighborhood.objects.values_list("name", "pk"))
        old_city = Neighborhood.objects.get(name="Old City")
        member = MembershipFactory(neighborhood=old_city)
        changed = copy.deepcopy(philly_features)
        for item in changed["features"]:
            if item["properties"][PHILLY_NAME_PROPERTY] == "Old City":
                item["geometry"] = {
                    "type": "MultiPolygon",
                    "coordinates": [square(39.95, -75.145, half=0.004)],
                }

        out, _ = run_import(write_json(tmp_path / "changed.geojson", changed))

        assert f"({0} new, {PHILLY_COUNT} updated)" in out
        assert dict(Neighborhood.objects.values_list("name", "pk")) == ids_before
        old_city.refresh_from_db()
        assert old_city.boundary["coordinates"] == [square(39.95, -75.145, half=0.004)]
        assert (old_city.min_lon, old_city.max_lat) == pytest.approx((-75.149, 39.954))
        assert old_city.slug == "old-city"
        assert Membership.objects.filter(pk=member.pk, neighborhood=old_city).exists()

    def test_rerunning_keeps_a_description_edited_since(self):
        run_import(PHILLY_FILE)
        Neighborhood.objects.filter(name="Old City").update(description="Edited in the admin.")

        run_import(PHILLY_FILE)

        assert Neighborhood.objects.get(name="Old City").description == "Edited in the admin."


BOW_TIE = {
    "type": "Polygon",
    "coordinates": [[[0.0, 0.0], [1.0, 1.0], [1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]],
}

# (description of the bad feature, its geometry/properties, words expected in the reason)
BAD_FEATURES = [
    pytest.param(
        feature("Bad Place", {"type": "Point", "coordinates": [-75.15, 39.95]}),
        ["feature 1 (Bad Place)", "'Point' is not a Polygon or MultiPolygon"],
        id="point-geometry",
    ),
    pytest.param(
        feature(
            "Bad Place", {"type": "LineString", "coordinates": [[-75.15, 39.95], [-75.1, 39.9]]}
        ),
        ["feature 1 (Bad Place)", "'LineString' is not a Polygon or MultiPolygon"],
        id="linestring-geometry",
    ),
    pytest.param(
        feature("Bad Place", None),
        ["feature 1 (Bad Place)", "geometry object is expected"],
        id="null-geometry",
    ),
    pytest.param(
        feature(None, square_polygon(20.0, 20.0), OTHER="Nameless"),
        ["feature 1", "no 'LISTNAME' property"],
        id="missing-name-property",
    ),
    pytest.param(
        feature("   ", square_polygon(20.0, 20.0)),
        ["feature 1", "no 'LISTNAME' property"],
        id="blank-name",
    ),
    pytest.param(
        {"type": "Feature", "properties": ["not", "an", "object"], "geometry": None},
        ["feature 1", "no 'LISTNAME' property"],
        id="properties-not-an-object",
    ),
    pytest.param(
        feature("X" * 121, square_polygon(20.0, 20.0)),
        ["feature 1", "longer than 120"],
        id="name-too-long",
    ),
    pytest.param(
        feature("Bow Tie", BOW_TIE),
        ["feature 1 (Bow Tie)", "invalid polygon", "Self-intersection"],
        id="self-intersecting-bow-tie",
    ),
    pytest.param(
        feature("Far East", square_polygon(10.0, 180.0, half=0.5)),
        ["feature 1 (Far East)", "longitudes must lie between -180 and 180"],
        id="longitude-out-of-range",
    ),
    pytest.param(
        feature("Beyond The Pole", square_polygon(90.0, 10.0, half=0.5)),
        ["feature 1 (Beyond The Pole)", "latitudes must lie between -90 and 90"],
        id="latitude-out-of-range",
    ),
    pytest.param(
        feature("Scribble", {"type": "Polygon", "coordinates": [[["a", "b"], ["c", "d"]]]}),
        ["feature 1 (Scribble)", "malformed coordinates"],
        id="non-numeric-coordinates",
    ),
    pytest.param(
        feature("Good Place", square_polygon(30.0, 30.0)),
        ["feature 1", "name 'Good Place' repeats feature 0"],
        id="duplicate-name",
    ),
    pytest.param(
        {"type": "Polygon", "coordinates": square(20.0, 20.0)},
        ["feature 1", "not a GeoJSON Feature"],
        id="bare-geometry-instead-of-feature",
    ),
]


class TestBadFiles:
    @pytest.mark.parametrize(("bad", "reason"), BAD_FEATURES)
    def test_a_bad_feature_is_reported_with_its_index_and_nothing_is_imported(
        self, tmp_path, bad, reason
    ):
        path = write_json(tmp_path / "bad.geojson", collection(VALID, bad))

        err = StringIO()
        with pytest.raises(CommandError, match=r"Nothing imported: 1 problem\(s\)") as caught:
            run_import(path, stderr=err)

        problems = caught.value.__cause__.problems
        assert len(problems) == 1
        for words in reason:
            assert words in problems[0]
            assert words in err.getvalue()
        assert not Neighborhood.objects.exists()

    def test_a_bad_file_leaves_existing_neighborhoods_untouched(self, tmp_path):
        run_import(write_json(tmp_path / "first.geojson", collection(VALID)))
        before = Neighborhood.objects.get()
        moved = feature("Good Place", square_polygon(50.0, 50.0))
        new = feature("New Place", square_polygon(60.0, 60.0))
        bad = feature("Bow Tie", BOW_TIE)

        with pytest.raises(CommandError):
            run_import(write_json(tmp_path / "second.geojson", collection(moved, new, bad)))

        after = Neighborhood.objects.get()
        assert after.pk == before.pk
        assert after.boundary == before.boundary
        assert after.updated_at == before.updated_at

    def test_every_bad_feature_is_reported_not_just_the_first(self, tmp_path):
        path = write_json(
            tmp_path / "bad.geojson",
            collection(
                VALID,
                feature("Bow Tie", BOW_TIE),
                feature("Second Good Place", square_polygon(12.0, 12.0)),
                feature(None, square_polygon(14.0, 14.0)),
            ),
        )

        with pytest.raises(CommandError, match=r"2 problem\(s\)") as caught:
            run_import(path)

        problems = caught.value.__cause__.problems
        assert [p.split(":")[0] for p in problems] == ["feature 1 (Bow Tie)", "feature 3"]
        assert not Neighborhood.objects.exists()

    @pytest.mark.parametrize(
        ("content", "reason"),
        [
            pytest.param("{not json", "is not JSON", id="not-json"),
            pytest.param("", "is not JSON", id="empty-file"),
            pytest.param(
                json.dumps(VALID), "not a GeoJSON FeatureCollection", id="a-single-feature"
            ),
            pytest.param(json.dumps([VALID]), "not a GeoJSON FeatureCollection", id="a-json-list"),
            pytest.param(
                json.dumps(square_polygon(1.0, 1.0)),
                "not a GeoJSON FeatureCollection",
                id="a-bare-geometry",
            ),
            pytest.param(
                json.dumps(collection()), "the FeatureCollection has no features", id="no-features"
            ),
        ],
    )
    def test_a_file_that_is_not_a_feature_collection_is_refused(self, tmp_path, content, reason):
        path = tmp_path / "bad.geojson"
        path.write_text(content, encoding="utf-8")

        with pytest.raises(CommandError, match="Nothing imported") as caught:
            run_import(path)

        assert isinstance(caught.value.__cause__, ImportFailed)
        assert reason in str(caught.value.__cause__)
        assert not Neighborhood.objects.exists()

    def test_a_missing_file_is_refused(self, tmp_path):
        with pytest.raises(CommandError) as caught:
            run_import(tmp_path / "nowhere.geojson")

        assert "cannot read" in str(caught.value.__cause__)

    def test_a_file_that_is_not_utf8_is_refused(self, tmp_path):
        path = tmp_path / "latin1.geojson"
        path.write_bytes(
            json.dumps(collection(VALID)).replace("Good", "G\u00f6od").encode("latin-1")
        )

        with pytest.raises(CommandError) as caught:
            run_import(path)

        assert "not UTF-8" in str(caught.value.__cause__)

    def test_the_name_property_is_required(self):
        with pytest.raises(CommandError, match="name-property"):
            call_command("import_neighborhoods", str(PHILLY_FILE))
