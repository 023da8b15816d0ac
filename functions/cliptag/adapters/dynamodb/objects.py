"""Each object's META and TAG items, written so that they converge (the ObjectStore port).

An object's writes converge on what it should hold (see ``_converge``): a retry after a crash
repairs whatever was half-written, an overwrite replaces tags instead of merging them, and a
duplicate delivery writes nothing. A delete leaves a short-lived tombstone carrying the S3
sequencer and a revision, so an older event, or a backfill that read the object before it was
deleted, cannot resurrect it (cliptag.ordering).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cliptag import keys, ordering
from cliptag.adapters.dynamodb import items
from cliptag.adapters.dynamodb.table import Table
from cliptag.errors import TransientError
from cliptag.ordering import Claim, Stored
from cliptag.records import ObjectRecord, StaleEvent

MAX_WRITERS = 5  # rounds of "read, converge" before giving up to SQS's redelivery


class DynamoObjectStore:
    def __init__(self, table: Table, shards: int = 1, legacy_model: str | Callable[[], str] | None = None) -> None:
        """``legacy_model``: the table's first model (keys.tag_space), or how to read it when the
        store first writes; None keeps every model's TAG items in the original partitions (a
        table of one model)."""
        self.table = table
        self.shards = max(1, shards)
        self.legacy_model = legacy_model

    def _tag_items(self, record: ObjectRecord) -> list[dict[str, Any]]:
        first = self.legacy_model() if callable(self.legacy_model) else self.legacy_model
        return items.tag_items(record, self.shards, record.model if first is None else first)

    def get(self, bucket: str, key: str) -> ObjectRecord | None:
        item = self.table.get(items.object_key(keys.object_ref(bucket, key)))
        return items.record_from_meta(item) if item else None

    def get_many(self, refs: list[str]) -> dict[str, ObjectRecord]:
        """Records of these objects (ref -> record; absent and deleted ones left out)."""
        found = self.table.batch_get([items.object_key(ref) for ref in refs])
        records = (items.record_from_meta(item) for item in found)
        return {record.ref: record for record in records if record is not None}

    def put(self, record: ObjectRecord, claim: Claim) -> None:
        """Replace the object's tags with ``record``'s (a failed record has none), unless the
        stored state is newer than ``claim`` (StaleEvent)."""
        meta, tag_items = items.meta_item(record), self._tag_items(record)
        self._converge(record.ref, meta, tag_items, claim)

    def delete(self, bucket: str, key: str, claim: Claim) -> None:
        """Leave a tombstone (no tags), unless the stored state is newer than ``claim``."""
        self._converge(keys.object_ref(bucket, key), items.tombstone(bucket, key), [], claim)

    def states(self, refs: list[str]) -> dict[str, tuple[Stored, ObjectRecord | None]]:
        """What each object's META holds now (consistent): its place in S3's order and, unless it
        is a tombstone, its record. Absent objects are left out."""
        found = self.table.batch_get([items.object_key(ref) for ref in refs])
        states: dict[str, tuple[Stored, ObjectRecord | None]] = {}
        for item in found:
            stored = items.stored_state(item)
            ref = keys.ref_from_object_pk(item[keys.PK])
            if stored is not None and ref is not None:
                states[ref] = (stored, items.record_from_meta(item))
        return states

    def _converge(self, ref: str, meta: dict[str, Any], tag_items: list[dict[str, Any]], claim: Claim) -> None:
        """Make the object's items exactly ``meta`` + ``tag_items``, whatever state they are in.

        Query, then converge: one consistent Query of the object's partition returns its META and
        the TAG items that really exist; whether this write may replace them is decided by
        ``cliptag.ordering`` (S3's sequencer, or the revision read before the object was);
        missing or changed TAG items are put and unwanted ones deleted (BatchWriteItem, 1 WRU
        each: no transaction, which would bill every item twice), with the near-duplicate items
        that name content the object no longer holds (and their mirrors); META goes last,
        conditional on the revision read. A crash anywhere leaves a state the retry reads and
        repairs; a concurrent writer makes the loser re-read and converge, or, if it lost to newer
        state, bring the TAG items in line with the winner's META; a duplicate that changes
        nothing writes nothing, or only META when it carries a greater sequencer.
        """
        wanted = {item[keys.SK]: item for item in tag_items}
        for _attempt in range(MAX_WRITERS):
            current, existing, duplicates = self._state(ref)
            stale = ordering.stale_reason(items.stored_state(current), claim)
            if stale:
                if self._restore(ref, current, existing):
                    raise StaleEvent(f"{ref}: {stale}")
                continue  # another writer moved META meanwhile: look again
            sequencer = ordering.later(claim.sequencer, (current or {}).get(items.SEQUENCER))
            legacy = None if sequencer else (current or {}).get(items.LEGACY_SEQUENCER)
            puts = [item for sk, item in wanted.items() if existing.get(sk) != _index_keys(item)]
            deletes = [items.object_key(ref, sk) for sk in existing if sk not in wanted]
            deletes += items.stale_duplicates(
                ref, meta.get("content_id") if meta.get("status") == "tagged" else None, duplicates
            )
            unchanged = current and not puts and not deletes and items.same_meta(current, meta)
            if unchanged and (current or {}).get(items.SEQUENCER) == sequencer:
                return  # a duplicate delivery: nothing to change
            self.table.batch_write(puts, deletes)
            if self._put_meta(current, {**meta, items.SEQUENCER: sequencer, items.LEGACY_SEQUENCER: legacy}):
                return
            # Another writer got there between our Query and our put: read again, converge.
        raise TransientError(f"{ref}: too many concurrent writers")

    def _put_meta(self, current: dict[str, Any] | None, meta: dict[str, Any]) -> bool:
        """META with the next revision, conditional on the one read (False: someone wrote first)."""
        if current is None:
            return self.table.put({**meta, "revision": 1}, f"attribute_not_exists({keys.PK})")
        revision = int(current.get("revision", 0))
        return self.table.put({**meta, "revision": revision + 1}, "revision = :rev", values={":rev": revision})

    def _restore(self, ref: str, current: dict[str, Any] | None, existing: dict[str, tuple[str, str]]) -> bool:
        """After losing to newer state: bring the TAG items in line with the winner's META (its
        tags and scores), whoever left them wrong (this writer before a crash or a lost race),
        then move the winner's revision on, so that a writer converging meanwhile re-reads
        instead of keeping what was overwritten. True when nothing was left to do or it was
        done; False when META changed first (the caller looks again)."""
        record = items.record_from_meta(current) if current else None
        winner = {item[keys.SK]: item for item in self._tag_items(record)} if record else {}
        puts = [item for sk, item in winner.items() if existing.get(sk) != _index_keys(item)]
        deletes = [items.object_key(ref, sk) for sk in existing if sk not in winner]
        if not (puts or deletes):
            return True
        self.table.batch_write(puts, deletes)
        return current is None or self._put_meta(current, current)

    def _state(self, ref: str) -> tuple[dict[str, Any] | None, dict[str, tuple[str, str]], list[dict[str, Any]]]:
        """(META or None, {TAG sort key: its index keys}, the near-duplicate items) as stored
        right now."""
        meta: dict[str, Any] | None = None
        tags: dict[str, tuple[str, str]] = {}
        duplicates: list[dict[str, Any]] = []
        partition = self.table.query(f"{keys.PK} = :pk", {":pk": keys.object_pk(ref)}, ConsistentRead=True)
        for item in partition:
            if item[keys.SK] == keys.META:
                meta = item
            elif keys.tag_from_sk(item[keys.SK]) is not None:
                tags[item[keys.SK]] = _index_keys(item)
            elif item[keys.SK].startswith(keys.DUPLICATE_PREFIX):
                duplicates.append(item)
        return meta, tags, duplicates


def _index_keys(item: dict[str, Any]) -> tuple[str, str]:
    """Where a TAG item sits in the tag index: its partition (tag, shard, model's space) and place."""
    return item.get(keys.TAG_INDEX_PK, ""), item.get(keys.TAG_INDEX_SK, "")
