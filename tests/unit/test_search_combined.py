"""Combined searches without AWS: words minus words and an image plus words (arithmetic on unit
embeddings, as rclip does), and tags wanted and excluded as S3 Vectors' filter language takes them."""

from __future__ import annotations

import numpy as np
import pytest
from cliptag.adapters.s3vectors import metadata_filter
from cliptag.records import ObjectRecord, TagScore, VectorEntry, VectorFilter
from cliptag.search import CancelledQuery, Search
from numpy.typing import NDArray

from tests.unit.test_search_domain import MemoryIndex, Records, unit

WORDS = {"beach": unit(1, 0, 0), "people": unit(0, 1, 0), "snow": unit(0, 0, 1)}


def embed(texts: list[str]) -> NDArray[np.float32]:
    return np.stack([WORDS[t] for t in texts])


class Objects(Records):
    def get(self, bucket: str, key: str) -> ObjectRecord | None:
        return self.records.get(f"{bucket}/{key}")


def library() -> Search:
    """An empty beach, a crowded beach, a snowy crowd."""
    photos = {"empty beach": unit(1, 0.1, 0), "crowded beach": unit(1, 0.9, 0), "snowy crowd": unit(0, 1, 0.5)}
    index = MemoryIndex()
    index.put_many([VectorEntry(f"b/{k}", f"c-{k}", v, (), ()) for k, v in photos.items()])
    records = {f"b/{k}": ObjectRecord("b", k, "tagged", content_id=f"c-{k}") for k in photos}
    return Search("b", index, Objects(records, {}), embed)  # type: ignore[arg-type]


def keys(results: object) -> list[str]:
    return [hit.key for hit in results.images]  # type: ignore[attr-defined]


def test_words_minus_words_steer_away_from_them():
    search = library()
    assert keys(search.combined("people", 3)) == ["snowy crowd", "crowded beach", "empty beach"]
    # (people - snow) / |...| = (0, 0.71, -0.71): the snowy crowd falls behind the crowded beach
    assert keys(search.combined("people", 3, minus=["snow"])) == ["crowded beach", "snowy crowd", "empty beach"]


def test_an_image_plus_words_leaves_the_image_out():
    search = library()
    assert keys(search.combined("", 3, like="crowded beach")) == ["empty beach", "snowy crowd"]
    found = search.combined("snow", 3, like="crowded beach")
    # crowded beach (0.74, 0.67, 0) + snow (0, 0, 1): the snowy crowd now comes first
    assert keys(found) == ["snowy crowd", "empty beach"] and "+like:crowded beach" in found.query  # type: ignore[union-attr]
    assert search.combined("", 3, like="no such key") is None


def test_wanted_and_excluded_tags_are_one_and_of_documented_operators():
    where = VectorFilter(tags=("dog", "beach"), not_tags=("indoor", "people"))
    assert metadata_filter(where) == {
        "$and": [
            {"tags": {"$eq": "dog"}},
            {"tags": {"$eq": "beach"}},
            {"tags": {"$nin": ["indoor", "people"]}},
        ]
    }
    assert metadata_filter(VectorFilter(tags=("dog", "dog"))) == {"tags": {"$eq": "dog"}}


def test_words_that_cancel_out_are_refused_rather_than_searched():
    with pytest.raises(CancelledQuery):
        library().combined("beach", 3, minus=["beach"])


def test_the_records_have_the_last_word_on_tags():
    """A vector whose metadata was trimmed to S3 Vectors' 2 KB lacks its lowest tags, so the index
    cannot exclude on them: the hit is checked against its record."""
    index = MemoryIndex()
    index.put_many([VectorEntry("b/a.jpg", "c-a", unit(1, 0, 0), ("dog",), ())])  # "indoor" trimmed away
    record = ObjectRecord(
        "b", "a.jpg", "tagged", content_id="c-a", tags=(TagScore("dog", 0.3), TagScore("indoor", 0.1))
    )
    search = Search("b", index, Objects({"b/a.jpg": record}, {}), embed)  # type: ignore[arg-type]
    assert keys(search.text("beach", 3, VectorFilter(not_tags=("indoor",)))) == []
    assert keys(search.text("beach", 3, VectorFilter(tags=("dog",)))) == ["a.jpg"]
