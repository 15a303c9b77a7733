"""Point lookup: which neighborhood contains a point, on the real Philadelphia boundaries."""

from __future__ import annotations

import json
import math
import random

import pytest
from shapely.geometry import Point, shape

from neighborhoods.forms import NeighborhoodBoundaryForm
from neighborhoods.geometry import GeometryError, prepared_geometries
from neighborhoods.importer import import_neighborhoods
from neighborhoods.locate import BulkLocator, locate
from neighborhoods.models import Neighborhood
from tests.factories import NeighborhoodFactory, multipolygon, square, square_polygon

pytestmark = pytest.mark.django_db

# Landmarks, each well inside one neighborhood of the real data (checked against the file).
LANDMARKS = [
    pytest.param(39.9489, -75.1500, "Old City", id="independence-hall"),
    pytest.param(39.9557, -75.1820, "University City", id="30th-street-station"),
    pytest.param(39.9061, -75.1665, "Stadium District", id="citizens-bank-park"),
    pytest.param(39.8744, -75.2424, "Airport", id="airport"),
    pytest.param(39.9496, -75.1718, "Rittenhouse", id="rittenhouse-square"),
    pytest.param(40.0254, -75.2240, "Manayunk", id="manayunk-main-street"),
    pytest.param(40.0765, -75.2080, "Chestnut Hill", id="chestnut-hill"),
    pytest.param(39.9713, -75.1340, "Fishtown - Lower Kensington", id="fishtown"),
]

OUTSIDE = [
    pytest.param(39.9259, -75.1196, id="camden-nj"),
    pytest.param(39.5, -74.0, id="atlantic-ocean"),
    pytest.param(0.0, 0.0, id="null-island"),
    pytest.param(40.0762, -75.1100, id="cheltenham-just-north-of-the-city"),
    pytest.param(90.0, 180.0, id="edge-of-the-valid-range"),
]


def shared_vertex(a: Neighborhood, b: Neighborhood) -> tuple[float, float]:
    """A (lat, lon) vertex that appears in both boundaries' exterior rings."""
    rings = []
    for neighborhood in (a, b):
        geom = shape(neighborhood.boundary)
        parts = getattr(geom, "geoms", [geom])
        rings.append({tuple(c) for part in parts for c in part.exterior.coords})
    common = sorted(rings[0] & rings[1])
    assert common, f"{a} and {b} share no vertex"
    lon, lat = common[len(common) // 2]
    return lat, lon


class TestRealPhiladelphiaData:
    @pytest.mark.parametrize(("lat", "lon", "expected"), LANDMARKS)
    def test_a_landmark_is_located_in_its_neighborhood(self, philly, lat, lon, expected):
        found = locate(lat, lon)

        assert found is not None
        assert found.name == expected
        assert found.pk == philly[expected].pk
        assert found.slug == philly[expected].slug

    def test_independence_hall_is_in_old_city(self, philly):
        found = locate(39.9489, -75.1500)

        assert found.slug == "old-city"

    def test_coordinates_given_as_text_are_accepted(self, philly):
        assert locate("39.9489", " -75.1500 ").slug == "old-city"

    @pytest.mark.parametrize(("lat", "lon"), OUTSIDE)
    def test_a_point_outside_the_city_is_in_no_neighborhood(self, philly, lat, lon):
        assert locate(lat, lon) is None

    def test_every_real_boundary_contains_its_own_representative_point(self, philly):
        for name, neighborhood in philly.items():
            point = shape(neighborhood.boundary).representative_point()
            assert locate(point.y, point.x).name == name

    def test_a_vertex_shared_by_two_neighborhoods_belongs_to_the_one_with_the_lowest_id(
        self, philly
    ):
        old_city, society_hill = philly["Old City"], philly["Society Hill"]
        lat, lon = shared_vertex(old_city, society_hill)
        point = Point(lon, lat)
        assert shape(old_city.boundary).covers(point)
        assert shape(society_hill.boundary).covers(point)

        answers = {locate(lat, lon).pk for _ in range(3)}

        assert answers == {min(old_city.pk, society_hill.pk)}

    @pytest.mark.parametrize(
        ("first", "second"),
        [
            ("Old City", "Northern Liberties"),
            ("Old City", "Chinatown"),
            ("Center City East", "Old City"),
            ("University City", "Spruce Hill"),
        ],
    )
    def test_every_shared_vertex_has_exactly_one_deterministic_answer(self, philly, first, second):
        a, b = philly[first], philly[second]
        lat, lon = shared_vertex(a, b)

        assert locate(lat, lon).pk == min(a.pk, b.pk)
        assert BulkLocator().locate_many([(lat, lon)])[0].pk == min(a.pk, b.pk)

    def test_bulk_locator_agrees_with_locate_on_random_points(self, philly):
        rng = random.Random(20240611)
        # Philadelphia's bounding box, a little widened so that some points fall outside.
        points = [(rng.uniform(39.85, 40.15), rng.uniform(-75.30, -74.94)) for _ in range(400)]
        points += [shared_vertex(philly["Old City"], philly["Society Hill"])]

        bulk = BulkLocator().locate_many(points)
        single = [locate(lat, lon) for lat, lon in points]

        assert [n and n.pk for n in bulk] == [n and n.pk for n in single]
        found = sum(n is not None for n in single)
        assert 150 < found < len(points), "the sample must cover both the city and outside it"
        assert len({n.pk for n in single if n}) > 40

    def test_a_warm_lookup_needs_one_query_and_no_boundary(self, philly, django_assert_num_queries):
        locate(39.9489, -75.1500)

        with django_assert_num_queries(1) as captured:
            assert locate(39.9489, -75.1500).slug == "old-city"
        assert "boundary" not in captured.captured_queries[0]["sql"]


class TestMultiPolygons:
    def test_a_point_in_the_second_part_of_a_multipolygon_is_found(self):
        # The real Philadelphia file has no multi-part neighborhood (all 159 are single-part
        # MultiPolygons), so this one is made up: two islands far apart.
        islands = NeighborhoodFactory(boundary=multipolygon((10.0, 10.0), (10.0, 10.5)))

        assert locate(10.0, 10.5) == islands
        assert locate(10.0, 10.0) == islands

    def test_a_point_between_the_parts_of_a_multipolygon_is_in_no_neighborhood(self):
        # Inside the bounding box of both parts, so only the exact test can say no.
        NeighborhoodFactory(boundary=multipolygon((10.0, 10.0), (10.0, 10.5)))

        assert locate(10.0, 10.25) is None

    def test_a_point_in_a_hole_belongs_to_the_neighborhood_filling_the_hole(self):
        outer_ring = square(20.0, 20.0, half=0.1)[0]
        hole = square(20.0, 20.0, half=0.02)[0][::-1]
        ring_road = NeighborhoodFactory(
            boundary={"type": "Polygon", "coordinates": [outer_ring, hole]}
        )
        island = NeighborhoodFactory(boundary=square_polygon(20.0, 20.0, half=0.02))

        assert locate(20.0, 20.0) == island
        assert locate(20.0, 20.05) == ring_road


class TestSharedEdges:
    def test_a_point_on_an_edge_shared_by_two_squares_belongs_to_the_older_one(self):
        west = NeighborhoodFactory(boundary=square_polygon(30.0, 30.0, half=0.5))
        east = NeighborhoodFactory(boundary=square_polygon(30.0, 31.0, half=0.5))

        assert locate(30.0, 30.5) == west
        assert locate(30.0, 30.75) == east

    def test_the_lowest_id_wins_whatever_the_order_the_bulk_locator_is_given(self):
        older = NeighborhoodFactory(boundary=square_polygon(30.0, 31.0, half=0.5))
        newer = NeighborhoodFactory(boundary=square_polygon(30.0, 30.0, half=0.5))
        assert older.pk < newer.pk

        in_id_order = BulkLocator().locate_many([(30.0, 30.5)])
        reversed_order = BulkLocator([newer, older]).locate_many([(30.0, 30.5)])

        assert locate(30.0, 30.5) == older
        assert in_id_order == [older]
        assert reversed_order == [older]


class TestInvalidCoordinates:
    @pytest.mark.parametrize(
        ("lat", "lon"),
        [
            pytest.param("north", -75.15, id="not-a-number"),
            pytest.param("", -75.15, id="empty"),
            pytest.param(None, -75.15, id="none"),
            pytest.param(39.95, [1], id="a-list"),
            pytest.param(math.nan, -75.15, id="nan"),
            pytest.param("nan", -75.15, id="nan-text"),
            pytest.param(39.95, math.inf, id="infinity"),
            pytest.param(90.0001, 0, id="latitude-above-90"),
            pytest.param(-91, 0, id="latitude-below-minus-90"),
            pytest.param(0, 180.5, id="longitude-above-180"),
            pytest.param(0, -181, id="longitude-below-minus-180"),
        ],
    )
    def test_coordinates_that_are_not_a_point_raise_a_geometry_error(self, lat, lon):
        with pytest.raises(GeometryError):
            locate(lat, lon)

    def test_the_bulk_locator_of_an_empty_database_finds_nothing(self):
        assert BulkLocator().locate_many([(39.9489, -75.15)]) == [None]


class TestPreparedGeometryCache:
    """Same bounding box before and after the edit, so only a fresh exact shape can answer."""

    BEFORE = square_polygon(40.0, 40.0, half=0.1)
    # The lower-left triangle of the same square: same bounding box, the upper-right corner gone.
    AFTER = {
        "type": "Polygon",
        "coordinates": [[[39.9, 39.9], [40.1, 39.9], [39.9, 40.1], [39.9, 39.9]]],
    }
    UPPER_RIGHT = (40.08, 40.08)
    LOWER_LEFT = (39.92, 39.92)

    def test_an_edited_boundary_is_used_by_the_next_lookup(self, django_assert_num_queries):
        neighborhood = NeighborhoodFactory(boundary=self.BEFORE)
        assert locate(*self.UPPER_RIGHT) == neighborhood
        with django_assert_num_queries(1):
            locate(*self.UPPER_RIGHT)

        neighborhood.set_boundary(self.AFTER)
        neighborhood.save()

        assert locate(*self.UPPER_RIGHT) is None
        assert locate(*self.LOWER_LEFT) == neighborhood

    def test_a_boundary_edited_in_the_admin_form_is_used_by_the_next_lookup(self):
        neighborhood = NeighborhoodFactory(boundary=self.BEFORE)
        assert locate(*self.UPPER_RIGHT) == neighborhood

        form = NeighborhoodBoundaryForm(
            instance=neighborhood,
            data={
                "name": neighborhood.name,
                "description": "",
                "boundary": json.dumps(self.AFTER),
                "required_level": neighborhood.required_level,
            },
        )
        assert form.is_valid(), form.errors
        form.save()

        assert locate(*self.UPPER_RIGHT) is None

    def test_a_boundary_changed_by_a_reimport_is_used_by_the_next_lookup(self):
        def feature(geometry):
            return {"type": "Feature", "properties": {"N": "Triangle Town"}, "geometry": geometry}

        import_neighborhoods(
            {"type": "FeatureCollection", "features": [feature(self.BEFORE)]}, name_property="N"
        )
        assert locate(*self.UPPER_RIGHT).name == "Triangle Town"

        import_neighborhoods(
            {"type": "FeatureCollection", "features": [feature(self.AFTER)]}, name_property="N"
        )

        assert locate(*self.UPPER_RIGHT) is None
        assert locate(*self.LOWER_LEFT).name == "Triangle Town"

    def test_a_deleted_neighborhood_is_no_longer_found(self):
        neighborhood = NeighborhoodFactory(boundary=self.BEFORE)
        assert locate(*self.UPPER_RIGHT) == neighborhood

        neighborhood.delete()

        assert locate(*self.UPPER_RIGHT) is None

    def test_the_cache_holds_one_prepared_geometry_per_neighborhood_looked_up(self):
        first = NeighborhoodFactory(boundary=self.BEFORE)
        NeighborhoodFactory(boundary=square_polygon(50.0, 50.0))

        locate(*self.UPPER_RIGHT)

        assert prepared_geometries.missing({first.pk: first.updated_at}) == []
        assert set(prepared_geometries._entries) == {first.pk}
