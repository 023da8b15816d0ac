"""Tagging one SQS batch: the domain flow, with AWS behind the ports of ``cliptag.ports``.

``plan`` does everything that can be shared across the batch: read, hash, look up the content
cache, claim, decode, and one encoder call for every image that needs inference (each content
once), then one matrix product scores them all. ``commit_all`` writes each message's results;
a TransientError fails only that message, so SQS redelivers just it. Permanent problems become
"failed" records, never exceptions.

Network calls of a batch run concurrently on a small thread pool and decoding runs on one thread
per vCPU (Pillow releases the GIL while decoding): a batch costs about one round trip per stage
instead of ten.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial

import numpy as np

from cliptag import codec
from cliptag.batch import BatchStats, Item, Message, MessagePlan
from cliptag.config import vcpus
from cliptag.encoder import ImageEncoder
from cliptag.errors import TransientError
from cliptag.imaging import Limits, Preprocessing
from cliptag.ordering import Claim
from cliptag.places import PlaceTagger
from cliptag.ports import CaptionRequests, ContentCache, DecisionStore, ObjectReader, ObjectStore
from cliptag.records import ContentRecord, ObjectEvent, StaleEvent
from cliptag.scoring import TagScorer
from cliptag.steps import (
    decode,
    locate,
    object_record,
    read,
    read_decisions,
    read_revisions,
    resolve_decided,
    resolve_retags,
    score,
)
from cliptag.taught import EMPTY, TaughtCache, with_taught
from cliptag.vectors import VectorSync
from cliptag.writeback import WriteBack, is_sidecar

RETAG_WORKERS = 8  # a late round's objects written at once


@dataclass
class TaggingPipeline:
    encoder: ImageEncoder
    scorer: TagScorer
    preprocessing: Preprocessing
    model_key: str
    vocabulary_version: str
    scoring: str  # vocabulary version + TopK + minimum score: what a re-tag compares
    reader: ObjectReader
    contents: ContentCache
    objects: ObjectStore
    categories: Mapping[str, str] = field(default_factory=dict)  # tag -> its vocabulary category
    vectors: VectorSync | None = None  # the search index and near-duplicates; None: not deployed
    decisions: DecisionStore | None = None  # people's decisions on tags; None: none are applied
    taught: TaughtCache | None = None  # tags taught by example; None: none are scored
    places: PlaceTagger | None = None  # place tags from GPS positions (PlaceTags=On); None: none
    write_back: WriteBack | None = None  # tags written to S3 object tags and sidecars (WriteBack); None: Off
    sidecar_prefix: str = ""  # keys under it are sidecars (SidecarPrefix), whether WriteBack writes them now or not
    captions: CaptionRequests | None = None  # new contents go to the caption function (Captions=On); None: Off
    limits: Limits = field(default_factory=Limits)
    fast_decode: bool = True
    io_workers: int = 10
    decode_workers: int = 0  # 0: one per vCPU
    claim_lease_s: int = 300  # how long a crashed claimer blocks others from embedding its content
    # Objects whose bytes a batch holds at once (0: all): the function's memory over MaxObjectBytes
    # (cliptag.config.objects_in_memory), so a batch of large objects is read in waves.
    read_wave: int = 0

    def __post_init__(self) -> None:
        # Created once per container; threads idle between invocations cost nothing.
        self._io = ThreadPoolExecutor(max_workers=self.io_workers, thread_name_prefix="io")
        self._cpu = ThreadPoolExecutor(max_workers=self.decode_workers or vcpus(), thread_name_prefix="decode")

    def plan(self, messages: Sequence[Message]) -> tuple[list[MessagePlan], BatchStats]:
        # The taught set first: a batch is scored, and its records stamped, under one set.
        taught = self.taught.refresh(time.monotonic()) if self.taught is not None else EMPTY
        held = resolve_decided(self.decisions, [m for m in messages if m.contents])
        plans = [self._message_plan(m, held.get(m.id, m.events)) for m in messages]
        retags = [item for p in plans for item in p.items if item.event.kind == "retag"]
        resolve_retags(self.objects, self.contents, retags, self.places is not None)  # stored embeddings; or "created"
        if self.places is None:  # PlaceTags switched off: a re-tag drops what it found
            for item in retags:
                item.place = item.place_missing = None
        items = [item for p in plans for item in p.items if item.event.kind in ("created", "recheck")]
        read_revisions(self.objects, items)  # before S3 is read, for the messages without a sequencer
        todo: dict[str, list[Item]] = {}  # content id -> the items that carry it; the first is decoded
        wave = self.read_wave or len(items) or 1
        for start in range(0, len(items), wave):  # at most `wave` objects' bytes held at once
            self._read_and_decode(items[start : start + wave], todo)
        stats = self._embed([group[0] for group in todo.values() if group[0].pixels is not None])
        for group in todo.values():
            for other in group[1:]:
                other.result, other.outcome = group[0].result, "reused"
        scored = items + [item for item in retags if item.event.kind == "retag" and item.result]
        read_decisions(self.decisions, scored)
        score(self.scorer, taught, scored, self.places)
        return plans, stats

    def _message_plan(self, message: Message, events: list[ObjectEvent] | TransientError) -> MessagePlan:
        if isinstance(events, TransientError):
            return MessagePlan(message.id, transient=str(events))
        independent = bool(message.contents)  # a late round: distinct objects, no order among them
        photos = [e for e in events if not is_sidecar(e.key, self.sidecar_prefix)]  # our own writes: never photos
        return MessagePlan(
            message.id,
            [Item(e, message.id) for e in photos],
            message.malformed,
            independent=independent,
            sidecars=len(events) - len(photos),
        )

    def commit_all(self, plans: Sequence[MessagePlan]) -> dict[str, TransientError | None]:
        """Cache new contents (one batched write), commit every message concurrently, then update
        the search index.

        Returns message id -> its transient error, if any.
        """
        new = {
            item.content_id: item.result
            for plan in plans
            for item in plan.items
            if item.content_id and item.cached is None and item.result is not None and not item.transient
        }
        try:
            self._request_captions(plans, new)  # before the cache entry: a retry still finds them new
            self.contents.put_many(new)
        except TransientError as exc:
            # Without the cache entry a retry would only redo inference: fail just those messages.
            for item in (i for plan in plans for i in plan.items if i.content_id in new):
                item.transient = str(exc)

        def attempt(plan: MessagePlan) -> TransientError | None:
            try:
                self.commit(plan)
            except TransientError as exc:
                return exc
            except Exception as exc:  # a bug or an unforeseen AWS error: fail this message only
                # Redelivered like a transient failure, so after MaxReceives it waits in the
                # dead-letter queue with its reason logged instead of failing its neighbours.
                return TransientError(f"unexpected {type(exc).__name__}: {exc}")
            return None

        errors = dict(zip((p.message_id for p in plans), self._io.map(attempt, plans), strict=True))
        if self.vectors is not None:  # after the records: a vector never points at a missing record
            errors.update(self.vectors.sync([p for p in plans if errors[p.message_id] is None], self._io))
        return errors

    def commit(self, plan: MessagePlan) -> list[Item]:
        """Write one message's results; raise TransientError to have SQS redeliver it."""
        retry = [plan.transient] if plan.transient else []
        retry += [item.transient for item in plan.items if item.transient]

        def one(item: Item) -> str | None:
            try:
                self._commit_item(item)
            except StaleEvent:
                item.outcome = "stale"
            except TransientError as exc:
                return str(exc)
            return None

        todo = [i for i in plan.items if not i.transient]
        if plan.independent and len(todo) > 1:
            # A late round's re-tags: up to 1,000 distinct objects, written RETAG_WORKERS at a time
            # (a pool of their own: this runs on one of the batch's I/O threads).
            with ThreadPoolExecutor(max_workers=RETAG_WORKERS, thread_name_prefix="retag") as pool:
                retry += [error for error in pool.map(one, todo) if error]
        else:  # in order: a message's events on one key follow each other
            retry += [error for error in map(one, todo) if error]
        if retry:
            raise TransientError("; ".join(retry))
        return plan.items

    def _request_captions(self, plans: Sequence[MessagePlan], new: Mapping[str, ContentRecord]) -> None:
        """Each new embedded content once, with a key it can be read from (exact duplicates, here or
        later, are never captioned again: they are not new). A transient failure retries those
        messages (TransientError); a refusal (the queue's policy, a deleted queue) costs those
        contents their captions, never their tags."""
        if self.captions is None:
            return
        where: dict[str, tuple[str, str]] = {}
        for item in (i for plan in plans for i in plan.items):
            if item.content_id in new and new[item.content_id].status == "embedded":
                where.setdefault(item.content_id, (item.event.bucket, item.event.key))
        if not where:
            return
        try:
            self.captions.request([(content, *ref) for content, ref in where.items()])
        except TransientError:
            raise
        except Exception as exc:
            logging.getLogger(__name__).error(
                "caption requests refused, %d contents left uncaptioned: %s", len(where), exc
            )

    @property
    def scored_by(self) -> str:
        """The scoring version records are stamped with: the deployment's, and the taught set's
        the last plan() scored under (one invocation at a time per container)."""
        return with_taught(self.scoring, self.taught.current.version if self.taught is not None else "")

    # -- batch-wide steps ----------------------------------------------------------------------
    def _read_and_decode(self, items: list[Item], todo: dict[str, list[Item]]) -> None:
        """Read ``items``, find which contents need inference, claim and decode each once (however
        many keys carry it, in this wave or an earlier one); their bytes are freed on the way."""
        list(self._io.map(partial(read, self.reader, self.limits), items))
        if self.places is not None:  # from the bytes, before the cache drops them (a header read)
            list(self._cpu.map(partial(locate, self.places), items))
        self._look_up_cache([item for item in items if item.content_id])  # read, even if empty
        new: dict[str, list[Item]] = {}
        for item in items:
            if item.transient or item.gone or item.found_gone or item.result is not None:
                continue
            if item.content_id in todo or item.content_id in new:
                item.data = b""  # its bytes are the first carrier's: only that one is decoded
            (todo if item.content_id in todo else new).setdefault(item.content_id, []).append(item)
        self._claim(new)
        new = {cid: group for cid, group in new.items() if not group[0].transient}
        decode_one = partial(decode, self.preprocessing, self.limits, self.fast_decode)
        list(self._cpu.map(decode_one, [group[0] for group in new.values()]))
        todo.update(new)

    def _look_up_cache(self, items: list[Item]) -> None:
        """One batched read for the whole batch: which contents were embedded before?"""
        try:
            cached = self.contents.get_many([item.content_id for item in items])
        except TransientError as exc:
            for item in items:
                item.retry(str(exc))
            return
        for item in (i for i in items if i.content_id in cached):
            item.cached = item.result = cached[item.content_id]
            item.outcome, item.data = "reused", b""

    def _claim(self, todo: dict[str, list[Item]]) -> None:
        """Claim every content about to be embedded; what another invocation holds is retried later
        (by then its embedding is cached and gets reused)."""

        def claim(group: list[Item]) -> bool | str:
            try:
                return self.contents.claim(group[0].content_id, group[0].message_id, self.claim_lease_s)
            except TransientError as exc:
                return str(exc)

        groups = list(todo.values())
        for group, claimed in zip(groups, self._io.map(claim, groups), strict=True):
            if claimed is not True:
                reason = claimed if isinstance(claimed, str) else "content is being embedded by another invocation"
                for item in group:
                    item.retry(reason)

    def _embed(self, firsts: list[Item]) -> BatchStats:
        """One encoder call for every content of the batch that needs it."""
        if not firsts:
            return BatchStats()
        start = time.perf_counter()
        embeddings = self.encoder.embed(np.stack([item.pixels for item in firsts]))  # type: ignore[misc]
        stats = BatchStats(len(firsts), (time.perf_counter() - start) * 1000)
        for item, vector in zip(firsts, embeddings, strict=True):
            assert item.result is not None
            # Tag from what is stored, so every key with these bytes gets exactly the same tags.
            item.result = ContentRecord(
                "embedded", codec.round_trip(vector), item.result.width, item.result.height, item.result.format
            )
            item.pixels = None  # free the tensor before commit
        return stats

    def _commit_item(self, item: Item) -> None:
        """Write what this event says, if it is not older than what is stored (cliptag.ordering)."""
        event = item.event
        claim = Claim(event.sequencer, event.sent_sequencer, item.revision)
        if event.kind == "removed" or item.found_gone:
            self.objects.delete(event.bucket, event.key, claim)
            item.outcome = "deleted"
            if self.write_back is not None:
                self.write_back.removed(event.bucket, event.key)
        elif item.gone:
            return
        else:
            record = object_record(item, self.model_key, self.vocabulary_version, self.scored_by, self.categories)
            plan = self.write_back.plan(record) if self.write_back is not None else None
            record = plan.record if plan is not None else record  # with what could not be written back
            if event.kind == "retag":
                self.objects.put(record, Claim(expect_content=item.content_id))  # unless re-uploaded since
                item.outcome = "retagged"
            else:
                self.objects.put(record, claim)
                item.outcome = "failed" if record.status == "failed" else item.outcome or "tagged"
            if plan is not None and self.write_back is not None:  # after the record: it is what is written
                self.write_back.apply(plan)
