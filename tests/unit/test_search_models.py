"""A switch of model in the search index, without AWS: each model's vectors carry its space,
queries and near-duplicate checks ask for the deployed model's only (docs/search.md)."""

from __future__ import annotations

import numpy as np
from cliptag.adapters.s3vectors import filterable, metadata_filter
from cliptag.records import ObjectRecord, VectorEntry, VectorFilter
from cliptag.vectors import VectorSync

from tests.unit.test_search_domain import MemoryDuplicates, MemoryIndex, Records, item, run, unit


def test_each_model_s_vectors_are_told_apart_by_a_filterable_model_key():
    """Another model's vectors carry its space; the first model's carry none, as every vector did
    before, and are found with the documented existence check ``{"genre": {"$exists": true}}``."""
    vector = np.zeros(4, np.float32)
    assert "model" not in filterable(VectorEntry("b/k.jpg", "c", vector, ("dog",), ()))
    spaced = filterable(
        VectorEntry("b/" + "/".join(["d" * 120] * 8) + "/k.jpg", "c", vector, ("dog",) * 60, (), "ab12")
    )
    assert spaced["model"] == "ab12"  # never trimmed, however long the rest
    assert metadata_filter(VectorFilter(space="ab12")) == {"model": {"$eq": "ab12"}}
    assert metadata_filter(VectorFilter(space="")) == {"model": {"$exists": False}}
    assert metadata_filter(VectorFilter(tags=("dog",), space="")) == {
        "$and": [{"tags": {"$eq": "dog"}}, {"model": {"$exists": False}}]
    }


def test_an_upload_is_compared_only_with_its_own_model_s_vectors():
    """During a switch of model the index holds both models' vectors, of the same dimension: the
    previous model's copy of the same photo is no near-duplicate of the new one's."""
    index, store = MemoryIndex(), MemoryDuplicates()
    old = VectorEntry("b/old.jpg", "c-old", unit(1, 0.1, 0), ("dog",), (), space="")
    index.put_many([old])
    spaces = {"model-a": "", "model-b": "b0b0"}
    sync = VectorSync(index, {}, duplicates=store, threshold=0.95, model="model-b", space_of=spaces.__getitem__)
    run(sync, item("created", "new.jpg", "tagged", unit(1, 0.1, 0), "1", "m1"))
    assert store.pairs == [] and index.vectors["b/new.jpg"].space == "b0b0"
    run(sync, item("created", "copy.jpg", "tagged", unit(1, 0.11, 0), "1", "m2"))
    assert {(p.ref, p.other_ref) for p in store.pairs} == {("b/copy.jpg", "b/new.jpg")}


def test_search_during_a_switch_answers_a_full_page_of_the_new_model():
    """Ten objects still hold the previous model's vectors, nearer the query than the one already
    re-embedded: a page of one still answers it (the index is asked for the new model's only)."""
    from cliptag.search import Search

    index = MemoryIndex()
    index.put_many([VectorEntry(f"b/old{i}.jpg", f"c{i}", unit(1, 0.01 * i), (), ()) for i in range(10)])
    index.put_many([VectorEntry("b/new.jpg", "c-new", unit(0.5, 1), (), (), space="b0b0")])
    records = {
        **{
            f"b/old{i}.jpg": ObjectRecord("b", f"old{i}.jpg", "tagged", content_id=f"c{i}", model="a")
            for i in range(10)
        },
        "b/new.jpg": ObjectRecord("b", "new.jpg", "tagged", content_id="c-new", model="b"),
    }
    store = Records(records, {})
    search = Search("b", index, store, lambda texts: unit(1, 0)[None, :], model="b", space=lambda: "b0b0")  # type: ignore[arg-type]
    assert [hit.key for hit in search.text("a dog", limit=1).images] == ["new.jpg"]
