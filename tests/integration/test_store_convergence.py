"""The store's write path against the local DynamoDB: crashes, duplicates, out-of-order events."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from cliptag import keys, wiring
from cliptag.store import ObjectRecord, StaleEvent, TagStore


@pytest.fixture
def store(stack) -> TagStore:
    return wiring.store()


def record(key: str, tags: list[tuple[str, float]], content: str = "c1") -> ObjectRecord:
    return ObjectRecord(bucket="b", key=key, status="tagged", content_id=content, tags=tags, model="m", vocabulary="v")


def stored_tag_items(store: TagStore, ref: str) -> dict[str, str]:
    return store._object_state(ref)[1]


def index_refs(store: TagStore, tag: str) -> list[str]:
    page, _ = store.query_tag(tag, -1.0, 100, None)
    return [ref for ref, _ in page]


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


def test_crash_half_way_then_retry_converges(store: TagStore):
    key = f"crash-{uuid.uuid4().hex[:6]}.jpg"
    first = record(key, [("dog", 0.31), ("beach", 0.27)])
    store.put_object(first, "0A")
    second = record(key, [("cat", 0.30), ("beach", 0.25)], content="c2")
    crashing = TagStore(store.table, CountingClient(store.client, crash_on_put=1))  # type: ignore[arg-type]
    with pytest.raises(RuntimeError):
        crashing.put_object(second, "0B")
    store.put_object(second, "0B")  # SQS redelivers: the retry repairs
    assert set(stored_tag_items(store, f"b/{key}")) == {"TAG#cat", "TAG#beach"}
    got = store.get_object("b", key)
    assert got is not None and got.tags == [("cat", 0.30), ("beach", 0.25)]
    assert f"b/{key}" not in index_refs(store, "dog")
    assert index_refs(store, "beach").count(f"b/{key}") == 1


def test_duplicate_delivery_writes_nothing(store: TagStore):
    key = f"dup-{uuid.uuid4().hex[:6]}.jpg"
    store.put_object(record(key, [("dog", 0.31)]), "01")
    counting = TagStore(store.table, CountingClient(store.client))  # type: ignore[arg-type]
    counting.put_object(record(key, [("dog", 0.31)]), "01")
    assert counting.client.writes == 0  # type: ignore[attr-defined]


def test_older_event_changes_nothing_and_leaves_no_orphans(store: TagStore):
    key = f"order-{uuid.uuid4().hex[:6]}.jpg"
    store.put_object(record(key, [("cat", 0.3)], content="new"), "00FF")
    with pytest.raises(StaleEvent):
        store.put_object(record(key, [("dog", 0.3)], content="old"), "00FE")
    assert set(stored_tag_items(store, f"b/{key}")) == {"TAG#cat"}
    # A delete that is older than the stored create is dropped too.
    with pytest.raises(StaleEvent):
        store.delete_object("b", key, "00FD")
    assert store.get_object("b", key) is not None
    # ... and a newer delete wins, leaving a tombstone that blocks older creates.
    store.delete_object("b", key, "0100")
    assert store.get_object("b", key) is None and stored_tag_items(store, f"b/{key}") == {}
    with pytest.raises(StaleEvent):
        store.put_object(record(key, [("cat", 0.3)], content="new"), "00FF")
    assert f"b/{key}" not in index_refs(store, "cat")


def test_index_sort_key_orders_by_score(store: TagStore):
    tag = f"t{uuid.uuid4().hex[:6]}"
    for i, score in enumerate([0.1, 0.5, -0.2, 0.3]):
        store.put_object(record(f"o{i}.jpg", [(tag, score)]), None)
    page, token = store.query_tag(tag, 0.0, 2, None)
    assert [s for _, s in page] == [0.5, 0.3] and token
    rest, token = store.query_tag(tag, 0.0, 2, token)
    assert [s for _, s in rest] == [0.1] and token is None
    assert keys.decode_score(keys.encode_score(0.123456)) == 0.123456
