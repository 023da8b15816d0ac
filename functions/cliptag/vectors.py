"""After a batch's records are written: each object's vector in the search index, and its
near-duplicates.

The vector is the content's stored embedding, so this step never runs the model. Near-duplicates
are the nearest neighbours of a new upload above a cosine threshold, other contents only: the
same bytes under another key are an exact duplicate, already handled by the content cache.
A near-duplicate is recorded under both objects, never skipped or merged.

Each message's objects end in one state (the last event of a key in the batch wins, by S3
sequencer), and what fails here fails only the messages it came from: SQS redelivers them, the
record writes converge to nothing and the vector calls are repeated (a put overwrites). Two
batches writing one key concurrently could leave the older content's vector last; so after its
writes each batch reads its objects' records again and puts back what they now hold (records
are written before vectors: whichever batch checks last sees the newest record).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

from cliptag.batch import Item, MessagePlan
from cliptag.errors import TransientError
from cliptag.ports import ContentCache, DuplicateStore, ObjectStore, VectorIndex
from cliptag.records import DuplicatePair, ObjectRecord, VectorEntry, VectorFilter
from cliptag.scoring import categorise

INDEXED = {"tagged", "reused", "retagged"}  # outcomes whose object has a vector
UNINDEXED = {"deleted", "failed"}  # outcomes whose object must have none
UPLOADED = {"tagged", "reused"}  # a new upload: its near-duplicates are looked for
T = TypeVar("T")


def guarded(call: Callable[[], T]) -> T | TransientError:
    """``call()``, or the error that must fail its messages: anything the index or the table
    refuses becomes a retry, so it costs its own messages and never the batch."""
    try:
        return call()
    except TransientError as exc:
        return exc
    except Exception as exc:  # a refused request (a bug, a wrong deployment): logged with its message
        return TransientError(f"search index: unexpected {type(exc).__name__}: {exc}")


@dataclass
class VectorSync:
    index: VectorIndex
    categories: Mapping[str, str]  # tag -> category
    objects: ObjectStore | None = None  # to check what was written against the records
    contents: ContentCache | None = None
    duplicates: DuplicateStore | None = None  # None: near-duplicates are not looked for
    threshold: float = 1.0  # cosine at or above which another content is a near-duplicate
    # Nearest objects a new upload is compared with: a query costs the same whatever its topK, and
    # exact copies of the upload (same bytes, skipped) must not crowd the near ones out.
    neighbours: int = 50
    # The deployed model and each model's space in the index (keys.tag_space): during a switch of
    # model its vectors are compared only with its own; by default all share one (tests).
    model: str = ""
    space_of: Callable[[str], str] = lambda model: ""

    def sync(self, plans: Sequence[MessagePlan], pool: Executor) -> dict[str, TransientError]:
        """Bring the index in line with ``plans`` (whose records are written); message id ->
        error for the messages to redeliver."""
        finals = self._final_items(plans)
        puts = [item for item in finals if item.outcome in INDEXED]
        failed = self._write(puts, [item for item in finals if item.outcome in UNINDEXED])
        if failed:
            return failed
        failed = self._reconcile(finals)
        if self.duplicates is None or failed:
            return failed
        # New uploads only: a recheck (a backfill, a repair, a deleted version) found nothing new.
        uploads = [item for item in puts if item.outcome in UPLOADED and item.event.kind == "created"]
        found = list(pool.map(lambda item: guarded(lambda: self._near_duplicates(item)), uploads))
        pairs = [pair for result in found if not isinstance(result, TransientError) for pair in result]
        for item, result in zip(uploads, found, strict=True):
            if isinstance(result, TransientError):
                failed[item.message_id] = result
            else:
                item.near_duplicates = len(result)
        duplicates = self.duplicates
        recorded = guarded(lambda: duplicates.record(pairs))
        if isinstance(recorded, TransientError):
            failed.update({item.message_id: recorded for item in uploads})
        return failed

    def entry(self, item: Item) -> VectorEntry:
        assert item.result is not None and item.result.embedding is not None
        return VectorEntry(
            ref=item.event.ref,
            content_id=item.content_id,
            embedding=item.result.embedding,
            tags=tuple(t.tag for t in item.tags),
            categories=tuple(c.category for c in categorise(item.tags, self.categories)),
            space=self.space_of(self.model),
        )

    def _write(self, puts: list[Item], deletes: list[Item]) -> dict[str, TransientError]:
        """One PutVectors and one DeleteVectors for the batch; if the index refuses them, each
        object alone, so that one bad vector fails only its own message."""
        result = guarded(lambda: self._apply([self.entry(i) for i in puts], [i.event.ref for i in deletes]))
        if result is None:
            return {}
        if len(puts) + len(deletes) == 1:
            return {(puts + deletes)[0].message_id: result}
        failed: dict[str, TransientError] = {}
        for item, put in [(i, True) for i in puts] + [(i, False) for i in deletes]:
            entries: list[VectorEntry] = [self.entry(item)] if put else []
            refs: list[str] = [] if put else [item.event.ref]
            alone = guarded(partial(self._apply, entries, refs))
            if alone is not None:
                failed[item.message_id] = alone
        return failed

    def _apply(self, entries: list[VectorEntry], refs: list[str]) -> None:
        if entries:
            self.index.put_many(entries)
        if refs:
            self.index.delete_many(refs)

    def _reconcile(self, finals: list[Item]) -> dict[str, TransientError]:
        """Put back the vector each object's record holds now, where a concurrent batch for the
        same key finished its writes between ours (one consistent BatchGetItem per batch)."""
        objects, contents = self.objects, self.contents
        if objects is None or contents is None or not finals:
            return {}
        records = guarded(lambda: objects.get_many([item.event.ref for item in finals]))
        if isinstance(records, TransientError):
            return {item.message_id: records for item in finals}
        stale_vectors: list[ObjectRecord] = []
        gone: list[str] = []
        for item in finals:
            record = records.get(item.event.ref)
            holds = record is not None and record.status == "tagged"
            if item.outcome in INDEXED and not holds:
                gone.append(item.event.ref)
            elif holds and record is not None and (item.outcome in UNINDEXED or record.content_id != item.content_id):
                stale_vectors.append(record)
        if not (stale_vectors or gone):
            return {}
        fixed = guarded(lambda: self._put_back(stale_vectors, gone))
        return {item.message_id: fixed for item in finals} if isinstance(fixed, TransientError) else {}

    def _put_back(self, records: list[ObjectRecord], gone: list[str]) -> None:
        assert self.contents is not None
        stored = self.contents.get_many([r.content_id for r in records])
        entries = [
            VectorEntry(
                r.ref,
                r.content_id,
                content.embedding,
                tuple(t.tag for t in r.tags),
                tuple(c.category for c in r.categories),
                self.space_of(r.model),
            )
            for r in records
            if (content := stored.get(r.content_id)) is not None and content.embedding is not None
        ]
        self._apply(entries, gone)

    def _near_duplicates(self, item: Item) -> list[DuplicatePair]:
        assert item.result is not None and item.result.embedding is not None
        # One more than wanted: the object itself is its own nearest neighbour.
        own_model = VectorFilter(space=self.space_of(self.model))
        found = self.index.nearest(item.result.embedding, self.neighbours + 1, own_model)
        return [
            DuplicatePair(item.event.ref, item.content_id, n.ref, n.content_id, n.similarity)
            for n in found
            if n.ref != item.event.ref and n.content_id != item.content_id and n.similarity >= self.threshold
        ]

    @staticmethod
    def _final_items(plans: Sequence[MessagePlan]) -> list[Item]:
        """Per object, the item of its last event in the batch (by sequencer; re-tags, which have
        none, lose to an upload or a delete of the same key)."""
        last: dict[str, Item] = {}
        for item in (i for plan in plans for i in plan.items if i.outcome in INDEXED | UNINDEXED):
            ref = item.event.ref
            if ref not in last or (item.event.sequencer or "") >= (last[ref].event.sequencer or ""):
                last[ref] = item
        return list(last.values())
