"""Tagging one SQS batch: the domain flow, with AWS behind two small ports.

``plan`` does everything that can be shared across the batch: parse, read, hash, look up the
content cache, decode, and one encoder call for every image that needs inference (each content
once). ``commit`` then writes one message's results; it raises TransientError so that only that
message is redelivered. Permanent problems become "failed" records, never exceptions.

Network calls (S3 reads, DynamoDB writes) of a batch run concurrently on a small thread pool and
decoding runs on one thread per vCPU (Pillow releases the GIL while decoding): a batch costs
about one round trip per stage instead of ten.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from cliptag import codec
from cliptag.config import vcpus
from cliptag.content import content_id
from cliptag.encoder import ImageEncoder
from cliptag.errors import ObjectGone, PermanentError, TransientError
from cliptag.events import MalformedEvent, ObjectEvent, parse_body
from cliptag.imaging import Limits, Preprocessing, load_pixels
from cliptag.scoring import ScoredTag, TagScorer
from cliptag.store import CachedContent, ObjectRecord, StaleEvent


class Source(Protocol):
    def read(self, bucket: str, key: str, max_bytes: int) -> bytes: ...


class Store(Protocol):
    def get_contents(self, content_ids: list[str], model_key: str) -> dict[str, CachedContent]: ...
    def claim_content(self, content_id: str, model_key: str, owner: str, lease_s: int) -> bool: ...
    def put_contents(self, contents: dict[str, CachedContent], model_key: str) -> None: ...
    def put_object(self, record: ObjectRecord, sequencer: str | None) -> None: ...
    def delete_object(self, bucket: str, key: str, sequencer: str | None) -> None: ...


@dataclass
class Item:
    """One object event of a message and what became of it."""

    event: ObjectEvent
    content_id: str = ""
    size: int = 0
    cached: CachedContent | None = None  # known before this batch
    result: CachedContent | None = None  # embedding or failure, after plan()
    data: bytes = b""  # held only between read and decode
    pixels: NDArray[np.float32] | None = None
    tags: list[ScoredTag] = field(default_factory=list)  # scored in plan(), for the whole batch at once
    transient: str = ""  # set: this message must be retried
    gone: bool = False  # deleted before we read it
    outcome: str = ""  # tagged | reused | failed | deleted | skipped | stale


@dataclass
class MessagePlan:
    message_id: str
    items: list[Item] = field(default_factory=list)
    malformed: str = ""


@dataclass
class BatchStats:
    inference_images: int = 0
    inference_ms: float = 0.0


@dataclass
class Tagger:
    encoder: ImageEncoder
    scorer: TagScorer
    preprocessing: Preprocessing
    model_key: str
    vocabulary_version: str
    source: Source
    store: Store
    limits: Limits = field(default_factory=Limits)
    fast_decode: bool = True
    io_workers: int = 10
    decode_workers: int = 0  # 0: one per vCPU
    claim_lease_s: int = 300  # how long a crashed claimer blocks others from embedding its content

    def __post_init__(self) -> None:
        # Created once per container; threads idle between invocations cost nothing.
        self._io = ThreadPoolExecutor(max_workers=self.io_workers, thread_name_prefix="io")
        decoders = self.decode_workers or vcpus()
        self._cpu = ThreadPoolExecutor(max_workers=decoders, thread_name_prefix="decode")

    def plan(self, messages: Sequence[tuple[str, str]]) -> tuple[list[MessagePlan], BatchStats]:
        stats = BatchStats()
        plans = [self._parse(message_id, body) for message_id, body in messages]
        items = [item for p in plans for item in p.items if item.event.kind == "created"]

        list(self._io.map(self._read, items))
        self._look_up_cache([item for item in items if item.content_id])  # read, even if empty

        # Decode each content needing inference once, however many keys carry it.
        todo: dict[str, list[Item]] = {}
        for item in items:
            if item.transient or item.gone or item.result is not None:
                continue
            todo.setdefault(item.content_id, []).append(item)
        self._claim(todo, plans)
        todo = {cid: group for cid, group in todo.items() if not group[0].transient}
        list(self._cpu.map(self._decode, [group[0] for group in todo.values()]))

        batch = [group for group in todo.values() if group[0].pixels is not None]
        if batch:
            start = time.perf_counter()
            embeddings = self.encoder.embed(np.stack([group[0].pixels for group in batch]))  # type: ignore[misc]
            stats.inference_ms = (time.perf_counter() - start) * 1000
            stats.inference_images = len(batch)
            for group, vector in zip(batch, embeddings, strict=True):
                first = group[0]
                assert first.result is not None
                first.result = CachedContent(
                    status="embedded",
                    embedding=codec.round_trip(vector),  # tag from what is stored, like duplicates
                    width=first.result.width,
                    height=first.result.height,
                    format=first.result.format,
                )
        for group in todo.values():
            for other in group[1:]:
                other.result, other.outcome = group[0].result, "reused"
            group[0].pixels = None  # free the tensor before commit
        self._score(items)
        return plans, stats

    def commit_all(self, plans: Sequence[MessagePlan]) -> dict[str, TransientError | None]:
        """Cache new contents (one batched write), then commit every message concurrently.

        Returns message id -> its transient error, if any.
        """
        new = {
            item.content_id: item.result
            for plan in plans
            for item in plan.items
            if item.content_id and item.cached is None and item.result is not None and not item.transient
        }
        try:
            self.store.put_contents(new, self.model_key)
        except TransientError as exc:
            # Without the cache entry a retry would only redo inference: fail just those messages.
            for plan in plans:
                for item in plan.items:
                    if item.content_id in new:
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

        return dict(zip((p.message_id for p in plans), self._io.map(attempt, plans), strict=True))

    def commit(self, plan: MessagePlan) -> list[Item]:
        """Write one message's results; raise TransientError to have SQS redeliver it."""
        if plan.malformed:
            return []
        retry = [item.transient for item in plan.items if item.transient]
        for item in plan.items:
            if item.transient:
                continue
            try:
                self._commit_item(item)
            except StaleEvent:
                item.outcome = "stale"
            except TransientError as exc:
                retry.append(str(exc))
        if retry:
            raise TransientError("; ".join(retry))
        return plan.items

    # -- steps -----------------------------------------------------------------------------
    def _parse(self, message_id: str, body: str) -> MessagePlan:
        try:
            return MessagePlan(message_id, [Item(event) for event in parse_body(body)])
        except MalformedEvent as exc:
            return MessagePlan(message_id, malformed=str(exc))

    def _read(self, item: Item) -> None:
        event = item.event
        try:
            data = self.source.read(event.bucket, event.key, self.limits.max_bytes)
        except ObjectGone:
            item.gone, item.outcome = True, "skipped"
            return
        except TransientError as exc:
            item.transient = str(exc)
            return
        except PermanentError as exc:
            item.result = CachedContent(status="failed", error=str(exc))
            item.size = event.size or 0
            return
        item.size = len(data)
        item.content_id = content_id(data)
        item.data = data

    def _look_up_cache(self, items: list[Item]) -> None:
        """One batched read for the whole batch: which contents were embedded before?"""
        try:
            cached = self.store.get_contents([item.content_id for item in items], self.model_key)
        except TransientError as exc:
            for item in items:
                item.transient, item.data = str(exc), b""
            return
        for item in items:
            if item.content_id in cached:
                item.cached = item.result = cached[item.content_id]
                item.outcome, item.data = "reused", b""

    def _claim(self, todo: dict[str, list[Item]], plans: list[MessagePlan]) -> None:
        """Claim every content about to be embedded; what another invocation holds is retried later
        (by then its embedding is cached and gets reused)."""
        owner_of = {id(item): plan.message_id for plan in plans for item in plan.items}

        def claim(group: list[Item]) -> tuple[list[Item], bool | str]:
            try:
                owner = owner_of[id(group[0])]
                return group, self.store.claim_content(group[0].content_id, self.model_key, owner, self.claim_lease_s)
            except TransientError as exc:
                return group, str(exc)

        for group, claimed in self._io.map(claim, list(todo.values())):
            if claimed is not True:
                reason = claimed if isinstance(claimed, str) else "content is being embedded by another invocation"
                for item in group:
                    item.transient, item.data = reason, b""

    def _decode(self, item: Item) -> None:
        data, item.data = item.data, b""
        try:
            decoded, pixels = load_pixels(data, self.preprocessing, self.limits, fast=self.fast_decode)
        except PermanentError as exc:
            item.result = CachedContent(status="failed", error=str(exc))
            return
        item.pixels = pixels
        item.result = CachedContent(status="pending", width=decoded.width, height=decoded.height, format=decoded.format)

    def _score(self, items: list[Item]) -> None:
        """Tags for every embedded item of the batch, new or cached: one matrix product."""
        embedded = [(i, i.result.embedding) for i in items if i.result and i.result.embedding is not None]
        if embedded:
            scored = self.scorer.tags(np.stack([vector for _, vector in embedded]))
            for (item, _), tags in zip(embedded, scored, strict=True):
                item.tags = tags

    def _commit_item(self, item: Item) -> None:
        event = item.event
        if event.kind == "removed":
            self.store.delete_object(event.bucket, event.key, event.sequencer)
            item.outcome = "deleted"
            return
        if item.gone:
            return
        result = item.result
        if result is None:  # defensive: plan() always sets a result for readable objects
            raise TransientError(f"{event.ref}: no result computed")
        if result.status == "failed" or result.embedding is None:
            record = ObjectRecord(
                bucket=event.bucket,
                key=event.key,
                status="failed",
                content_id=item.content_id,
                model=self.model_key,
                vocabulary=self.vocabulary_version,
                size=item.size,
                error=result.error or "no embedding",
            )
            item.outcome = "failed"
        else:
            record = ObjectRecord(
                bucket=event.bucket,
                key=event.key,
                status="tagged",
                content_id=item.content_id,
                tags=[(t.name, t.score) for t in item.tags],
                model=self.model_key,
                vocabulary=self.vocabulary_version,
                width=result.width,
                height=result.height,
                format=result.format,
                size=item.size,
            )
            item.outcome = item.outcome or "tagged"
        self.store.put_object(record, event.sequencer)
