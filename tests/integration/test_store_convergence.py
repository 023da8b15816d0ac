"""The store's write path against the local DynamoDB: crashes, duplicates, out-of-order events."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from cliptag import keys, wiring
from cliptag.adapters.dynamodb import DynamoObjectStore, DynamoTagIndex, Table
from cliptag.ordering import Claim
from cliptag.records import ObjectRecord, StaleEvent, TagScore


@pytest.fixture
def store(stack) -> DynamoObjectStore:
    """The tagger's store, in a table whose first model is "m" (the records below)."""
    return DynamoObjectStore(wiring.table(), legacy_model="m")


def record(key: str, tags: list[tuple[str, float]], content: str = "c1", confirmed: str = "") -> ObjectRecord:
    scored = tuple(TagScore(t, s, "person" if t == confirmed else "model") for t, s in tags)
    return ObjectRecord(
        bucket="b", key=key, status="tagged", content_id=content, tags=scored, model="m", vocabulary_version="v"
    )


def stored_tag_items(store: DynamoObjectStore, ref: str) -> dict[str, str]:
    return store._state(ref)[1]


def index_refs(store: DynamoObjectStore, tag: str) -> list[str]:
    page, _ = DynamoTagIndex(store.table).page(tag, -1.0, 100, [None])
    return [ref for ref, _, _ in page]


def counting_store(store: DynamoObjectStore, client: CountingClient) -> DynamoObjectStore:
    return DynamoObjectStore(Table(store.table.name, client))  # type: ignore[arg-type]


class CountingClient:
    """Wraps the boto3 client to count writes, or to crash on the Nth META put."""

    def __init__(self, client: Any, crash_on_put: int = 0) -> None:
        self.client, self.crash_on_put, self.writes, self.puts = client, crash_on_put, 0, 0

    def put_item(self, **kwargs: Any) -> Any:
        self.writes += 1
        self.puts += 1
        if self.crash_on_put and self.puts == self.crash_on_put:
            raise RuntimeError("process killed between the TAG writes and the META write")
        return self.client.put_item(**kwargs)

    def batch_write_item(self, **kwargs: Any) -> Any:
        self.writes += 1
        return self.client.batch_write_item(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


def test_crash_half_way_then_retry_converges(store: DynamoObjectStore):
    key = f"crash-{uuid.uuid4().hex[:6]}.jpg"
    first = record(key, [("dog", 0.31), ("beach", 0.27)])
    store.put(first, Claim("0A"))
    second = record(key, [("cat", 0.30), ("beach", 0.25)], content="c2")
    crashing = counting_store(store, CountingClient(store.table.client, crash_on_put=1))
    with pytest.raises(RuntimeError):
        crashing.put(second, Claim("0B"))
    store.put(second, Claim("0B"))  # SQS redelivers: the retry repairs
    assert set(stored_tag_items(store, f"b/{key}")) == {keys.tag_sk("cat"), keys.tag_sk("beach")}
    got = store.get("b", key)
    assert got is not None and [(t.tag, t.score) for t in got.tags] == [("cat", 0.30), ("beach", 0.25)]
    assert f"b/{key}" not in index_refs(store, "dog")
    assert index_refs(store, "beach").count(f"b/{key}") == 1


def test_a_confirmation_that_changes_only_who_gave_a_tag_survives_a_crash_before_meta(store: DynamoObjectStore):
    """A person confirms a tag the model already gave, at the same score: only the TAG item's sort
    key and META's source change. The process dies after the TAG write; the retry must still
    write META, or the record would say "model" while the index says confirmed (and verify
    would put the index back)."""
    key = f"confirm-{uuid.uuid4().hex[:6]}.jpg"
    store.put(record(key, [("dog", 0.31), ("beach", 0.27)]), Claim(revision=0))
    confirmed = record(key, [("dog", 0.31), ("beach", 0.27)], confirmed="beach")
    crashing = counting_store(store, CountingClient(store.table.client, crash_on_put=1))
    with pytest.raises(RuntimeError):
        crashing.put(confirmed, Claim(expect_content="c1"))
    store.put(confirmed, Claim(expect_content="c1"))  # the re-tag message is redelivered
    got = store.get("b", key)
    assert got is not None and [(t.tag, t.source) for t in got.tags] == [("dog", "model"), ("beach", "person")]
    page, _ = DynamoTagIndex(store.table).page("beach", -1.0, 100, [None])
    assert (f"b/{key}", 0.27, True) in page


def test_duplicate_delivery_writes_nothing(store: DynamoObjectStore):
    key = f"dup-{uuid.uuid4().hex[:6]}.jpg"
    store.put(record(key, [("dog", 0.31)]), Claim("01"))
    client = CountingClient(store.table.client)
    counting_store(store, client).put(record(key, [("dog", 0.31)]), Claim("01"))
    assert client.writes == 0


def test_older_event_changes_nothing_and_leaves_no_orphans(store: DynamoObjectStore):
    key = f"order-{uuid.uuid4().hex[:6]}.jpg"
    store.put(record(key, [("cat", 0.3)], content="new"), Claim("00FF"))
    with pytest.raises(StaleEvent):
        store.put(record(key, [("dog", 0.3)], content="old"), Claim("00FE"))
    assert set(stored_tag_items(store, f"b/{key}")) == {keys.tag_sk("cat")}
    # A delete that is older than the stored create is dropped too.
    with pytest.raises(StaleEvent):
        store.delete("b", key, Claim("00FD"))
    assert store.get("b", key) is not None
    # ... and a newer delete wins, leaving a tombstone that blocks older creates.
    store.delete("b", key, Claim("0100"))
    assert store.get("b", key) is None and stored_tag_items(store, f"b/{key}") == {}
    with pytest.raises(StaleEvent):
        store.put(record(key, [("cat", 0.3)], content="new"), Claim("00FF"))
    assert f"b/{key}" not in index_refs(store, "cat")


def test_index_sort_key_orders_by_score(store: DynamoObjectStore):
    tag = f"t{uuid.uuid4().hex[:6]}"
    for i, score in enumerate([0.1, 0.5, -0.2, 0.3]):
        store.put(record(f"o{i}.jpg", [(tag, score)]), Claim(revision=0))
    index = DynamoTagIndex(store.table)
    page, token = index.page(tag, 0.0, 2, [None])
    assert [s for _, s, _ in page] == [0.5, 0.3] and token
    rest, token = index.page(tag, 0.0, 2, token)
    assert [s for _, s, _ in rest] == [0.1] and token is None
    assert keys.decode_score(keys.encode_score(0.123456)) == 0.123456


def test_a_record_of_another_model_moves_to_that_models_partitions(store: DynamoObjectStore):
    """A switch of model re-tags an object with the same tag, maybe the same score: its TAG item
    must still leave the old model's partition for the new one's (keys.tag_space), or the new
    model's pages would miss it and the old one's would keep it."""
    import dataclasses

    key = f"switch-{uuid.uuid4().hex[:6]}.jpg"
    ref = f"b/{key}"
    store.put(record(key, [("dog", 0.31)]), Claim("0A"))
    assert ref in index_refs(store, "dog")  # the table's first model: the original partitions
    store.put(dataclasses.replace(record(key, [("dog", 0.31)]), model="m2"), Claim("0B"))
    assert ref not in index_refs(store, "dog")
    space = keys.tag_space("m2", "m")
    assert space and keys.tag_index_pk("dog", space=space) != keys.tag_index_pk("dog")
    page, _ = DynamoTagIndex(store.table, space=space).page("dog", -1.0, 100, [None])
    assert [r for r, _, _ in page if r == ref] == [ref]
