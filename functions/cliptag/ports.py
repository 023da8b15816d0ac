"""The ports the domain needs from the outside world; adapters in ``cliptag.adapters`` fill them.

Each port speaks in the domain's records (``cliptag.records``) and its two failure kinds
(``cliptag.errors``): TransientError for "try again later", PermanentError / ObjectGone /
ObjectChanged for "this input cannot be read (as asked)"; a write that lost to newer state
raises StaleEvent.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from cliptag.ordering import Claim, Stored
from cliptag.records import (
    ContentRecord,
    Decision,
    Deployment,
    DuplicatePair,
    Neighbour,
    ObjectBytes,
    ObjectRecord,
    VectorEntry,
    VectorFilter,
)


class ObjectReader(Protocol):
    """Reads uploaded objects (S3): their bytes, ETag and LastModified; with ``if_match``, only
    while the object still has that ETag (ObjectChanged otherwise)."""

    def read(self, bucket: str, key: str, max_bytes: int, if_match: str = "") -> ObjectBytes: ...


class ContentCache(Protocol):
    """Embeddings (or failures) per content id, under the one model it was built for."""

    def get_many(self, content_ids: list[str]) -> dict[str, ContentRecord]: ...
    def claim(self, content_id: str, owner: str, lease_s: int) -> bool: ...
    def put_many(self, contents: dict[str, ContentRecord]) -> None: ...


class ObjectStore(Protocol):
    """Each object's record and its entries in the tag index, written so they converge."""

    def get(self, bucket: str, key: str) -> ObjectRecord | None: ...
    def get_many(self, refs: list[str]) -> dict[str, ObjectRecord]: ...
    def states(self, refs: list[str]) -> dict[str, tuple[Stored, ObjectRecord | None]]: ...
    def put(self, record: ObjectRecord, claim: Claim) -> None: ...
    def delete(self, bucket: str, key: str, claim: Claim) -> None: ...


class FailureIndex(Protocol):
    """Failed objects of a bucket, newest first."""

    def page(self, bucket: str, limit: int, position: str | None) -> tuple[list[ObjectRecord], str | None]: ...


class Deployments(Protocol):
    """What the deployed tagger runs (model, vocabulary, scoring settings)."""

    def get(self) -> Deployment | None: ...
    def record(self, deployment: Deployment) -> bool: ...


class TagIndex(Protocol):
    """Objects by tag, best first, over ``shards`` index partitions per tag, of one model's
    records (``space``: keys.tag_space)."""

    shards: int

    @property
    def space(self) -> str: ...

    def page(
        self, tag: str, min_score: float, limit: int, positions: list[str | None]
    ) -> tuple[list[tuple[str, float, bool]], list[str | None] | None]: ...

    def merged(
        self, tags: list[str], min_score: float, limit: int, after: str | None
    ) -> tuple[list[tuple[str, str, float]], bool]: ...


class VectorIndex(Protocol):
    """One vector per object (S3 Vectors): nearest neighbours by cosine, filtered by metadata."""

    def put_many(self, entries: list[VectorEntry]) -> None: ...
    def delete_many(self, refs: list[str]) -> None: ...
    def get(self, ref: str) -> NDArray[np.float32] | None: ...
    def nearest(
        self, vector: NDArray[np.float32], limit: int, where: VectorFilter | None = None
    ) -> list[Neighbour]: ...


class DuplicateStore(Protocol):
    """Near-duplicate pairs, listed under both objects."""

    def record(self, pairs: list[DuplicatePair]) -> None: ...
    def of(self, ref: str) -> list[DuplicatePair]: ...


class DecisionStore(Protocol):
    """People's decisions on tags, per content; and which tagged objects hold a content."""

    def of_many(self, content_ids: list[str]) -> dict[str, dict[str, Decision]]: ...
    def record(self, content_id: str, decision: Decision) -> None: ...
    def holders(self, content_id: str, limit: int) -> list[str]: ...


class RetagRequests(Protocol):
    """Asks the tagger to re-score objects from their stored embeddings (no model, no S3 read):
    these objects now, and whatever holds a content once batches in flight have finished."""

    def request(self, refs: list[str]) -> None: ...
    def later(self, content_id: str) -> None: ...


class MetadataStore(Protocol):
    """Where tags are written back (S3): an object's ETag and version id (None: gone) and its
    tags (of that version when one is given), and the small files beside it (sidecars: None when
    absent)."""

    def head(self, bucket: str, key: str) -> tuple[str, str] | None: ...
    def object_tags(self, bucket: str, key: str, version_id: str) -> dict[str, str]: ...
    def put_object_tags(self, bucket: str, key: str, tags: dict[str, str], version_id: str) -> None: ...
    def read(self, bucket: str, key: str) -> bytes | None: ...
    def write(self, bucket: str, key: str, data: bytes) -> None: ...
    def delete(self, bucket: str, key: str) -> None: ...


class CaptionRequests(Protocol):
    """Asks the caption function to caption new contents: (content id, bucket, key) each."""

    def request(self, contents: list[tuple[str, str, str]]) -> None: ...
