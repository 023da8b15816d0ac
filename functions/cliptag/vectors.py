"""After a batch's records are written: each object's vector in the search index, and its
near-duplicates.

The vector is the content's stored embedding, so this step never runs the model. Near-duplicates
are the nearest neighbours of a new upload above a cosine threshold, other contents only: the
same bytes under another key are an exact duplicate, already handled by the content cache.
A near-duplicate is recorded under both objects, never skipped or merged.

Each message's objects end in one state (the last event of a key in the batch wins, by S3
sequencer), and what fails here fails only the messages it came from: SQS redelivers them, the
record writes converge to nothing and the vector calls are repeated (a put overwrites).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass

from cliptag.batch import Item, MessagePlan
from cliptag.errors import TransientError
from cliptag.ports import DuplicateStore, VectorIndex
from cliptag.records import DuplicatePair, VectorEntry
from cliptag.scoring import categorise

INDEXED = {"tagged", "reused", "retagged"}  # outcomes whose object has a vector
UNINDEXED = {"deleted", "failed"}  # outcomes whose object must have none
UPLOADED = {"tagged", "reused"}  # a new upload: its near-duplicates are looked for


@dataclass
class VectorSync:
    index: VectorIndex
    categories: Mapping[str, str]  # tag -> category
    duplicates: DuplicateStore | None = None  # None: near-duplicates are not looked for
    threshold: float = 1.0  # cosine at or above which another content is a near-duplicate
    neighbours: int = 10  # how many nearest objects a new upload is compared with

    def sync(self, plans: Sequence[MessagePlan], pool: Executor) -> dict[str, TransientError]:
        """Bring the index in line with ``plans`` (whose records are written); message id ->
        error for the messages to redeliver."""
        finals = self._final_items(plans)
        puts = [item for item in finals if item.outcome in INDEXED]
        failed: dict[str, TransientError] = {}
        try:
            self.index.put_many([self.entry(item) for item in puts])
            self.index.delete_many([item.event.ref for item in finals if item.outcome in UNINDEXED])
        except TransientError as exc:
            return {item.message_id: exc for item in finals}
        if self.duplicates is None:
            return failed
        uploads = [item for item in puts if item.outcome in UPLOADED]
        found = list(pool.map(self._near_duplicates, uploads))
        pairs = [pair for result in found if not isinstance(result, TransientError) for pair in result]
        for item, result in zip(uploads, found, strict=True):
            if isinstance(result, TransientError):
                failed[item.message_id] = result
        try:
            self.duplicates.record(pairs)
        except TransientError as exc:
            failed.update({item.message_id: exc for item in uploads})
        for item, result in zip(uploads, found, strict=True):
            if not isinstance(result, TransientError):
                item.near_duplicates = len(result)
        return failed

    def entry(self, item: Item) -> VectorEntry:
        assert item.result is not None and item.result.embedding is not None
        return VectorEntry(
            ref=item.event.ref,
            content_id=item.content_id,
            embedding=item.result.embedding,
            tags=tuple(t.tag for t in item.tags),
            categories=tuple(c.category for c in categorise(item.tags, self.categories)),
        )

    def _near_duplicates(self, item: Item) -> list[DuplicatePair] | TransientError:
        assert item.result is not None and item.result.embedding is not None
        try:
            # One more than wanted: the object itself is its own nearest neighbour.
            found = self.index.nearest(item.result.embedding, self.neighbours + 1)
        except TransientError as exc:
            return exc
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
