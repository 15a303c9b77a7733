import pytest

pytestmark = pytest.mark.django_db


def test_neighborhood_list_renders_for_anonymous_visitor(client):
    response = client.get("/api/v1/neighborhoods/")
    assert response.status_code == 200
