"""S3's event rules through the tagger's handler, each sequence written out as it reaches the queue.

The bucket here sends no notifications: only the events written in each test reach the tagger,
in the order written, as SQS may deliver them (at least once, out of order). The rules are AWS's
(tests/unit/test_ordering.py quotes them); where a test needs two deliveries to overlap, it pauses
one invocation at the exact point (after its S3 read, or after its read of the record) and runs
the other to completion meanwhile, as two Lambda invocations would interleave.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from cliptag import keys, wiring
from cliptag.adapters.dynamodb import DynamoObjectStore
from cliptag.adapters.notifications import recheck_body

from tests.integration.handler_events import deliver, listed, s3_event, state


def test_a_duplicate_still_advances_the_sequencer_so_a_late_delete_cannot_remove_a_live_object(bucket, s3, photos):
    # S3: PUT X (s1), DELETE (s2), PUT X again (s3). Delivered: s1, s3, s2.
    key = "again.jpg"
    s3.put_object(Bucket=bucket, Key=key, Body=photos[0])  # what the bucket holds after the three
    deliver(s3_event(bucket, key, "ObjectCreated:Put", "0062F3A1B2C3D4E5F1"))
    deliver(s3_event(bucket, key, "ObjectCreated:Put", "0062F3A1B2C3D4E5F3"))  # same bytes: nothing else changes
    deliver(s3_event(bucket, key, "ObjectRemoved:Delete", "0062F3A1B2C3D4E5F2"))  # late: older than s3
    record, vector = state(bucket, key)
    assert record is not None and record.status == "tagged" and record.tags and vector


def test_sequencers_of_different_lengths_compare_right_padded(bucket, s3, photos):
    # "1" vs "05": right-padded, "10" > "05", so the delete is the later event (left-padding said
    # the opposite and kept the object).
    key = "lengths.jpg"
    s3.put_object(Bucket=bucket, Key=key, Body=photos[1])
    deliver(s3_event(bucket, key, "ObjectCreated:Put", "05"))
    assert state(bucket, key)[0] is not None
    s3.delete_object(Bucket=bucket, Key=key)
    deliver(s3_event(bucket, key, "ObjectRemoved:Delete", "1"))
    assert state(bucket, key) == (None, False)
    s3.put_object(Bucket=bucket, Key=key, Body=photos[1])  # (only so a stray read would find bytes)
    deliver(s3_event(bucket, key, "ObjectCreated:Put", "05"))  # the create delivered again, late
    assert state(bucket, key) == (None, False)


class Pause:
    """Hold one invocation at its first call of a wrapped method for one object, until the other
    invocation has run (the calls run on the pipeline's worker threads, so the object decides)."""

    def __init__(self, ref_of: Callable[..., str], ref: str) -> None:
        self.ref_of, self.ref = ref_of, ref
        self.reached, self.go = threading.Event(), threading.Event()

    def wrap(self, call: Callable[..., Any]) -> Callable[..., Any]:
        def paused(*args: Any, **kwargs: Any) -> Any:
            try:
                return call(*args, **kwargs)
            finally:  # (a read that finds nothing raises: it is held all the same)
                if self.ref_of(*args) == self.ref and not self.reached.is_set():
                    self.reached.set()
                    assert self.go.wait(60), "never released"

        return paused

    @contextmanager
    def holding(self, invocation: Callable[[], None]) -> Iterator[None]:
        """Start ``invocation``, wait until it is held, run the body, then let it finish."""
        errors: list[BaseException] = []

        def body() -> None:
            try:
                invocation()
            except BaseException as exc:  # reported in the test's thread
                errors.append(exc)

        thread = threading.Thread(target=body)
        thread.start()
        assert self.reached.wait(60), "the held invocation never got there"
        try:
            yield
        finally:
            self.go.set()
            thread.join(60)
        assert not errors, errors


def after_read(monkeypatch: pytest.MonkeyPatch, bucket: str, key: str) -> Pause:
    """A pause right after the tagger's S3 read of ``key``."""
    pause = Pause(lambda b, k, *_: keys.object_ref(b, k), keys.object_ref(bucket, key))
    reader = wiring.pipeline().reader
    monkeypatch.setattr(reader, "read", pause.wrap(reader.read))
    return pause


def test_a_backfill_that_read_an_object_before_it_was_deleted_does_not_bring_it_back(bucket, s3, photos, monkeypatch):
    key = "backfilled-then-deleted.jpg"
    s3.put_object(Bucket=bucket, Key=key, Body=photos[2])
    body = recheck_body(bucket, key, listed(s3, bucket, key))  # what the backfill sends
    with after_read(monkeypatch, bucket, key).holding(lambda: deliver(body)):  # read; now the user deletes:
        s3.delete_object(Bucket=bucket, Key=key)
        deliver(s3_event(bucket, key, "ObjectRemoved:Delete", "0062F3A1B2C3D4E6A0"))
    assert state(bucket, key) == (None, False)  # no record with a vector and no expiry


def test_a_backfill_that_read_older_bytes_never_replaces_a_newer_upload(bucket, s3, photos, monkeypatch):
    key = "backfilled-then-overwritten.jpg"
    s3.put_object(Bucket=bucket, Key=key, Body=photos[3])
    body = recheck_body(bucket, key, listed(s3, bucket, key))
    with after_read(monkeypatch, bucket, key).holding(lambda: deliver(body)):
        s3.put_object(Bucket=bucket, Key=key, Body=photos[4])
        deliver(s3_event(bucket, key, "ObjectCreated:Put", "0062F3A1B2C3D4E6B0"))
        newer = wiring.objects().get(bucket, key)
    record, vector = state(bucket, key)
    assert newer is not None and record == newer and vector  # the newer upload's tags, untouched


def test_a_backfill_after_the_upload_is_gone_and_back_tags_the_new_bytes(bucket, s3, photos):
    # The object was deleted (tombstone) and uploaded again; a backfill lists the new bytes. The
    # tombstone was there before the tagger read them: they are newer, it may write.
    key = "deleted-then-new.jpg"
    s3.put_object(Bucket=bucket, Key=key, Body=photos[0])
    deliver(s3_event(bucket, key, "ObjectCreated:Put", "0062F3A1B2C3D4E7A0"))
    deliver(s3_event(bucket, key, "ObjectRemoved:Delete", "0062F3A1B2C3D4E7B0"))
    s3.put_object(Bucket=bucket, Key=key, Body=photos[5])
    deliver(recheck_body(bucket, key, listed(s3, bucket, key)))
    record, vector = state(bucket, key)
    assert record is not None and record.status == "tagged" and vector


def test_two_writers_with_overlapping_tags_leave_the_winners_scores(bucket, s3, photos, monkeypatch):
    """The older event's invocation reads the record, pauses, and writes its TAG items after the
    newer one finished: the index must end with the newer record's scores, or a category listing
    (which reads the index against the record) drops the object."""
    first, second = overlapping(bucket, s3, photos)
    key = "race.jpg"
    s3.put_object(Bucket=bucket, Key=key, Body=first)
    store = wiring.objects()
    pause = Pause(lambda ref: ref, keys.object_ref(bucket, key))  # after its read of the record
    monkeypatch.setattr(store, "_state", pause.wrap(store._state))
    older = s3_event(bucket, key, "ObjectCreated:Put", "0062F3A1B2C3D4E8A0")
    with pause.holding(lambda: deliver(older)):
        s3.put_object(Bucket=bucket, Key=key, Body=second)
        deliver(s3_event(bucket, key, "ObjectCreated:Put", "0062F3A1B2C3D4E8B0"))
    record = store.get(bucket, key)
    assert record is not None and record.content_id == hashlib.sha256(second).hexdigest()
    assert index_scores(store, bucket, key) == {t.tag: t.score for t in record.tags}


def overlapping(bucket: str, s3: Any, photos: list[bytes]) -> tuple[bytes, bytes]:
    """Two photos whose tags share a tag with different scores (tagged once under probe keys)."""
    tagged: list[tuple[bytes, dict[str, float]]] = []
    for i, data in enumerate(photos):
        s3.put_object(Bucket=bucket, Key=f"probe/{i}.jpg", Body=data)
        deliver(s3_event(bucket, f"probe/{i}.jpg", "ObjectCreated:Put", "01"))
        record = wiring.objects().get(bucket, f"probe/{i}.jpg")
        assert record is not None
        tagged.append((data, {t.tag: t.score for t in record.tags}))
    for a, tags_a in tagged:
        for b, tags_b in tagged:
            if a is not b and any(tags_a[t] != tags_b[t] for t in tags_a.keys() & tags_b.keys()):
                return a, b
    pytest.skip("no two photos share a tag with different scores")


def index_scores(store: DynamoObjectStore, bucket: str, key: str) -> dict[str, float]:
    ref = keys.object_ref(bucket, key)
    items = store.table.query(f"{keys.PK} = :pk", {":pk": keys.object_pk(ref)}, ConsistentRead=True)
    return {
        tag: keys.score_from_index_sk(item[keys.TAG_INDEX_SK])
        for item in items
        if (tag := keys.tag_from_sk(item[keys.SK])) is not None
    }


def test_a_removal_found_by_reading_never_hides_an_upload_applied_meanwhile(bucket, s3, photos, monkeypatch):
    # A lifecycle expiration (no promise of a sequencer: read first) finds the key empty; before it
    # commits, an upload's event is applied by another invocation. The upload wins.
    key = "expired-then-uploaded.jpg"
    expired = s3_event(bucket, key, "LifecycleExpiration:Delete", None)
    with after_read(monkeypatch, bucket, key).holding(lambda: deliver(expired)):
        s3.put_object(Bucket=bucket, Key=key, Body=photos[1])
        deliver(s3_event(bucket, key, "ObjectCreated:Put", "0062F3A1B2C3D4E9A0"))
    record, vector = state(bucket, key)
    assert record is not None and record.status == "tagged" and vector
