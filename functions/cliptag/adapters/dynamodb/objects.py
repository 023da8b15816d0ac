"""Each object's META and TAG items, written so that they converge (the ObjectStore port).

An object's writes converge on what it should hold (see ``_converge``): a retry after a crash
repairs whatever was half-written, an overwrite replaces tags instead of merging them, and a
duplicate delivery writes nothing. A delete leaves a short-lived tombstone carrying the S3
sequencer, so an older event that arrives late cannot resurrect the object.
"""

from __future__ import annotations

from typing import Any

from cliptag import keys
from cliptag.adapters.dynamodb import items
from cliptag.adapters.dynamodb.table import Table
from cliptag.errors import TransientError
from cliptag.records import ObjectRecord, StaleEvent

MAX_WRITERS = 5  # rounds of "read, converge" before giving up to SQS's redelivery


class DynamoObjectStore:
    def __init__(self, table: Table, shards: int = 1) -> None:
        self.table = table
        self.shards = max(1, shards)

    def get(self, bucket: str, key: str) -> ObjectRecord | None:
        item = self.table.get(items.object_key(keys.object_ref(bucket, key)))
        return items.record_from_meta(item) if item else None

    def get_many(self, refs: list[str]) -> dict[str, ObjectRecord]:
        """Records of these objects (ref -> record; absent and deleted ones left out)."""
        found = self.table.batch_get([items.object_key(ref) for ref in refs])
        records = (items.record_from_meta(item) for item in found)
        return {record.ref: record for record in records if record is not None}

    def put(self, record: ObjectRecord, sequencer: str | None, expect_content: str | None = None) -> None:
        """Replace the object's tags with ``record``'s (a failed record has none).

        ``expect_content``: write only while the stored record still holds that content (a re-tag
        must not overwrite what a newer upload wrote meanwhile; StaleEvent otherwise).
        """
        meta, tag_items = items.meta_item(record), items.tag_items(record, self.shards)
        self._converge(record.ref, meta, tag_items, sequencer, expect_content)

    def delete(self, bucket: str, key: str, sequencer: str | None) -> None:
        self._converge(keys.object_ref(bucket, key), items.tombstone(bucket, key), [], sequencer)

    def _converge(
        self,
        ref: str,
        meta: dict[str, Any],
        tag_items: list[dict[str, Any]],
        seq: str | None,
        expect_content: str | None = None,
    ) -> None:
        """Make the object's items exactly ``meta`` + ``tag_items``, whatever state they are in.

        Query, then converge: one consistent Query of the object's partition returns its META and
        the TAG items that really exist; missing or changed TAG items are put and unwanted ones
        deleted (BatchWriteItem, 1 WRU each: no transaction, which would bill every item twice);
        META goes last, conditional on the revision read. A crash anywhere leaves a state the
        retry reads and repairs; a concurrent writer makes the loser re-read and converge; an
        event older than the stored sequencer (normalised when parsed) is dropped; a duplicate
        event writes nothing.
        """
        wanted = {item[keys.SK]: item for item in tag_items}
        written: set[str] = set()
        for _attempt in range(MAX_WRITERS):
            current, existing = self._state(ref)
            if current and seq and current.get("sequencer") and current["sequencer"] > seq:
                self._drop_unlisted(ref, written, current)
                raise StaleEvent(f"{ref}: event {seq} is older than stored {current['sequencer']}")
            if expect_content and (current or {}).get("content_id") != expect_content:
                self._drop_unlisted(ref, written, current or {})
                raise StaleEvent(f"{ref}: no longer holds content {expect_content[:12]}")
            puts = [item for sk, item in wanted.items() if existing.get(sk) != item[keys.TAG_INDEX_SK]]
            deletes = [items.object_key(ref, sk) for sk in existing if sk not in wanted]
            if current and not puts and not deletes and items.same_meta(current, meta):
                return  # a duplicate delivery: nothing to change
            self.table.batch_write(puts, deletes)
            written |= {item[keys.SK] for item in puts}
            revision = int(current.get("revision", 0)) if current else 0
            sequencer = seq or (current or {}).get("sequencer")
            item = {**meta, "revision": revision + 1, "sequencer": sequencer}
            if current:
                done = self.table.put(item, "revision = :rev", values={":rev": revision})
            else:
                done = self.table.put(item, f"attribute_not_exists({keys.PK})")
            if done:
                return
            # Another writer got there between our Query and our put: read again, converge.
        raise TransientError(f"{ref}: too many concurrent writers")

    def _state(self, ref: str) -> tuple[dict[str, Any] | None, dict[str, str]]:
        """(META or None, {TAG sort key: its index sort key}) as stored right now (near-duplicate
        items share the partition and are left alone: they are checked when read)."""
        meta: dict[str, Any] | None = None
        tags: dict[str, str] = {}
        partition = self.table.query(f"{keys.PK} = :pk", {":pk": keys.object_pk(ref)}, ConsistentRead=True)
        for item in partition:
            if item[keys.SK] == keys.META:
                meta = item
            elif keys.tag_from_sk(item[keys.SK]) is not None:
                tags[item[keys.SK]] = item.get(keys.TAG_INDEX_SK, "")
        return meta, tags

    def _drop_unlisted(self, ref: str, written: set[str], current: dict[str, Any]) -> None:
        """After losing to a newer event, remove TAG items we wrote that the winner does not list."""
        listed = {keys.tag_sk(t["tag"]) for t in current.get("tags") or []}
        self.table.batch_write([], [items.object_key(ref, sk) for sk in written - listed])
