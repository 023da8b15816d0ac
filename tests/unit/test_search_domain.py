"""Search's domain pieces without AWS: names as typed, categories, the index's metadata and filters,
and what the vector step of a batch writes (against an in-memory vector index)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest
from cliptag.adapters.s3vectors import FILTERABLE_BYTES, MAX_FOLDERS, filterable, folders, metadata_filter
from cliptag.batch import Item, MessagePlan
from cliptag.errors import TransientError
from cliptag.lexicon import Lexicon
from cliptag.records import (
    ContentRecord,
    DuplicatePair,
    Neighbour,
    ObjectEvent,
    ObjectRecord,
    TagScore,
    VectorEntry,
    VectorFilter,
)
from cliptag.scoring import categorise
from cliptag.vectors import VectorSync
from cliptag.vocabulary import TagSpec, Vocabulary
from numpy.typing import NDArray

VOCABULARY = Vocabulary(
    (
        TagSpec("person", "people", ("human",)),
        TagSpec("meeting room", "indoor"),
        TagSpec("dog", "animal", ("puppy",)),
        TagSpec("cat", "animal"),
        TagSpec("sofa", "art_and_design"),
    )
)


def test_names_resolve_whatever_the_case_spacing_or_synonym():
    lexicon = Lexicon(VOCABULARY)
    assert lexicon.tag("Human") == lexicon.tag(" PERSON ") == "person"
    assert lexicon.tag("Meeting   Room") == "meeting room"
    assert lexicon.tag("puppy") == "dog" and lexicon.tag("wolf") is None
    assert lexicon.category("Art and Design") == lexicon.category("ART_AND_DESIGN") == "art_and_design"
    assert lexicon.category("animals") is None


def test_unknown_names_get_at_most_five_close_matches():
    lexicon = Lexicon(VOCABULARY)
    assert lexicon.suggest_tags("persn")[0] == "person"
    assert lexicon.suggest_tags("humane") == ["person"]  # a synonym suggests its tag
    assert "meeting room" in lexicon.suggest_tags("room")  # a word of a longer name
    assert lexicon.suggest_categories("animl") == ["animal"]
    assert lexicon.suggest_tags("zzzzzz") == []
    many = Vocabulary(tuple(TagSpec(f"dog {i}") for i in range(20)))
    assert len(Lexicon(many).suggest_tags("dog")) == 5


def test_a_category_is_scored_by_its_best_tag():
    tags = [TagScore("dog", 0.31), TagScore("person", 0.3), TagScore("cat", 0.25), TagScore("unlisted", 0.9)]
    categories = {"dog": "animal", "cat": "animal", "person": "people"}
    found = categorise(tags, categories)
    assert [(c.category, c.score) for c in found] == [("animal", 0.31), ("people", 0.3)]


def test_folders_are_every_prefix_ending_in_a_slash():
    assert folders("photo.jpg") == []
    assert folders("a/b/c.jpg") == ["a/", "a/b/"]
    assert len(folders("/".join("d" * 20) + "/x.jpg")) == MAX_FOLDERS  # filterable metadata is 2 KB


def test_filterable_metadata_always_fits_s3_vectors_2_kb():
    """A 1,000-byte key eight folders deep and TopK=40 long tag names: folders go first, then the
    lowest tags; an ordinary object keeps everything."""
    import json

    def entry(key: str, tags: tuple[str, ...]) -> VectorEntry:
        return VectorEntry(f"bucket/{key}", "c", np.zeros(4, np.float32), tags, ("animal",))

    deep = "/".join(["d" * 120] * 8) + "/x.jpg"
    many = tuple(f"a rather long custom tag name number {i:02d}" for i in range(40))
    trimmed = filterable(entry(deep, many))
    size = len(json.dumps(trimmed, ensure_ascii=False, separators=(",", ":")).encode())
    assert size <= FILTERABLE_BYTES < 2048
    assert trimmed["tags"] == list(many[: len(trimmed["tags"])]) and trimmed["categories"] == ["animal"]
    assert filterable(entry("a/b/c.jpg", ("dog", "cat"))) == {
        "tags": ["dog", "cat"],
        "categories": ["animal"],
        "folders": ["a/", "a/b/"],
    }


def test_filters_use_equality_on_the_metadata_lists():
    assert metadata_filter(None) is None and metadata_filter(VectorFilter()) is None
    assert metadata_filter(VectorFilter(tags=("dog",))) == {"tags": {"$eq": "dog"}}
    assert metadata_filter(VectorFilter(tags=("dog",), folder="a/")) == {
        "$and": [{"tags": {"$eq": "dog"}}, {"folders": {"$eq": "a/"}}]
    }


class MemoryIndex:
    """The VectorIndex port over a dict: what the vector step put, deleted and asked."""

    def __init__(self, fail: str = "") -> None:
        self.vectors: dict[str, VectorEntry] = {}
        self.fail = fail
        self.queries = 0

    def put_many(self, entries: list[VectorEntry]) -> None:
        if self.fail == "put":
            raise TransientError("throttled")
        self.vectors |= {e.ref: e for e in entries}

    def delete_many(self, refs: list[str]) -> None:
        for ref in refs:
            self.vectors.pop(ref, None)

    def get(self, ref: str) -> NDArray[np.float32] | None:
        return self.vectors[ref].embedding if ref in self.vectors else None

    def nearest(self, vector: NDArray[np.float32], limit: int, where: VectorFilter | None = None) -> list[Neighbour]:
        self.queries += 1
        if self.fail == "query":
            raise TransientError("throttled")
        held = [e for e in self.vectors.values() if where is None or where.space in (None, e.space)]
        ranked = sorted(held, key=lambda e: -float(e.embedding @ vector))[:limit]
        return [Neighbour(e.ref, e.content_id, round(float(e.embedding @ vector), 6), e.tags) for e in ranked]


class MemoryDuplicates:
    def __init__(self) -> None:
        self.pairs: list[DuplicatePair] = []

    def record(self, pairs: list[DuplicatePair]) -> None:
        self.pairs += pairs

    def of(self, ref: str) -> list[DuplicatePair]:
        return [p for p in self.pairs if p.ref == ref]


def unit(*values: float) -> NDArray[np.float32]:
    v = np.array(values, dtype=np.float32)
    return v / np.linalg.norm(v)


def item(kind: str, key: str, outcome: str, vector: NDArray[np.float32] | None, seq: str | None, msg: str) -> Item:
    it = Item(ObjectEvent(kind, "b", key, sequencer=seq), msg, content_id=f"c-{key}-{seq}")  # type: ignore[arg-type]
    it.outcome = outcome
    if vector is not None:
        it.result = ContentRecord("embedded", vector)
        it.tags = (TagScore("dog", 0.3), TagScore("person", 0.2))
    return it


def run(sync: VectorSync, *items: Item) -> dict[str, TransientError]:
    plans = [MessagePlan(i.message_id, [i]) for i in items]
    with ThreadPoolExecutor(2) as pool:
        return sync.sync(plans, pool)


def test_the_last_event_of_a_key_decides_its_vector():
    index = MemoryIndex()
    sync = VectorSync(index, {"dog": "animal", "person": "people"})
    run(sync, item("created", "a.jpg", "tagged", unit(1, 0, 0), "0002", "m1"))
    assert index.vectors["b/a.jpg"].categories == ("animal", "people")
    # In one batch: an upload, then its delete (later sequencer): no vector stays.
    run(
        sync,
        item("removed", "a.jpg", "deleted", None, "0009", "m2"),
        item("created", "a.jpg", "tagged", unit(0, 1, 0), "0005", "m3"),
    )
    assert "b/a.jpg" not in index.vectors
    # A failed overwrite takes the object out of search; a re-tag puts it back with new tags.
    run(sync, item("created", "b.jpg", "tagged", unit(1, 0, 0), "0001", "m4"))
    run(sync, item("created", "b.jpg", "failed", None, "0002", "m5"))
    assert "b/b.jpg" not in index.vectors
    run(sync, item("retag", "c.jpg", "retagged", unit(0, 0, 1), None, "m6"))
    assert index.vectors["b/c.jpg"].tags == ("dog", "person")


def test_near_duplicates_are_other_contents_above_the_threshold_only():
    index, store = MemoryIndex(), MemoryDuplicates()
    sync = VectorSync(index, {}, duplicates=store, threshold=0.95)
    run(sync, item("created", "original.jpg", "tagged", unit(1, 0.1, 0), "1", "m1"))
    twin = item("created", "twin.jpg", "reused", unit(1, 0.1, 0), "1", "m2")
    twin.content_id = "c-original.jpg-1"  # the same bytes: an exact duplicate, not a near one
    close = item("created", "close.jpg", "tagged", unit(1, 0.12, 0), "1", "m3")
    far = item("created", "far.jpg", "tagged", unit(0.7, 0.7, 0), "1", "m4")
    run(sync, twin, close, far)
    found = {(p.ref, p.other_ref) for p in store.pairs}
    assert ("b/close.jpg", "b/original.jpg") in found and ("b/close.jpg", "b/twin.jpg") in found
    assert not any("far.jpg" in pair for pair in map(" ".join, found))
    assert not any({"b/twin.jpg", "b/original.jpg"} == {a, b} for a, b in found)
    assert close.near_duplicates == 2 and far.near_duplicates == 0


def test_a_retag_never_looks_for_near_duplicates():
    index, store = MemoryIndex(), MemoryDuplicates()
    run(
        VectorSync(index, {}, duplicates=store, threshold=0.5),
        item("retag", "a.jpg", "retagged", unit(1, 0), None, "m1"),
    )
    assert index.queries == 0 and "b/a.jpg" in index.vectors


@pytest.mark.parametrize("fail", ["put", "query"])
def test_an_index_failure_fails_only_the_messages_it_touched(fail: str):
    index = MemoryIndex(fail=fail)
    failed = run(
        VectorSync(index, {}, duplicates=MemoryDuplicates(), threshold=0.9),
        item("created", "a.jpg", "tagged", unit(1, 0), "1", "m1"),
        item("created", "b.jpg", "skipped", None, "1", "m2"),  # nothing to index: not failed
    )
    assert set(failed) == {"m1"} and isinstance(failed["m1"], TransientError)


class RefusingIndex(MemoryIndex):
    """Refuses any request that holds one particular object, as S3 Vectors refuses a bad vector."""

    def __init__(self, refused: str) -> None:
        super().__init__()
        self.refused = refused

    def put_many(self, entries: list[VectorEntry]) -> None:
        if any(e.ref == self.refused for e in entries):
            raise ValueError("ValidationException: metadata too large")  # not transient
        super().put_many(entries)


def test_a_vector_the_index_refuses_fails_only_its_own_message():
    index = RefusingIndex("b/bad.jpg")
    failed = run(
        VectorSync(index, {}),
        item("created", "good.jpg", "tagged", unit(1, 0), "1", "m1"),
        item("created", "bad.jpg", "tagged", unit(0, 1), "1", "m2"),
    )
    assert set(failed) == {"m2"} and "ValidationException" in str(failed["m2"])
    assert "b/good.jpg" in index.vectors and "b/bad.jpg" not in index.vectors


class Records:
    """The ObjectStore and ContentCache ports, as far as the vector step reads them."""

    def __init__(self, records: dict[str, ObjectRecord], embeddings: dict[str, NDArray[np.float32]]) -> None:
        self.records, self.embeddings = records, embeddings

    def get_many(self, ids: list[str]) -> dict[str, Any]:
        if ids and ids[0] in self.records:
            return {i: self.records[i] for i in ids if i in self.records}
        return {i: ContentRecord("embedded", self.embeddings[i]) for i in ids if i in self.embeddings}


def test_a_concurrent_newer_upload_gets_its_vector_back():
    """Batch X (older content c1) puts its vector after batch Y (newer c2) finished: X sees the
    record now holds c2 and puts c2's stored embedding back; a deleted object loses its vector."""
    newer = ObjectRecord("b", "k.jpg", "tagged", content_id="c2", tags=(TagScore("cat", 0.4),))
    store = Records({"b/k.jpg": newer}, {"c2": unit(0, 1)})
    index = MemoryIndex()
    older = item("created", "k.jpg", "tagged", unit(1, 0), "1", "m1")
    gone = item("created", "deleted-meanwhile.jpg", "tagged", unit(1, 0), "1", "m2")
    failed = run(VectorSync(index, {"cat": "animal"}, store, store), older, gone)  # type: ignore[arg-type]
    assert failed == {}
    assert index.vectors["b/k.jpg"].content_id == "c2" and np.allclose(index.vectors["b/k.jpg"].embedding, unit(0, 1))
    assert index.vectors["b/k.jpg"].tags == ("cat",) and "b/deleted-meanwhile.jpg" not in index.vectors
