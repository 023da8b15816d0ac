"""Search by meaning: free text, images like one image, and an image's near-duplicates.

Free text is embedded by the text encoder into the space the image embeddings live in, then the
vector index answers nearest first. Every hit is checked against the object's record (one
BatchGetItem): a hit whose object was deleted or overwritten since its vector was written is
dropped, and the record gives each hit its top tags.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from cliptag import keys
from cliptag.combined import TooBroad
from cliptag.ports import DuplicateStore, ObjectStore, VectorIndex
from cliptag.records import DOCUMENTED, Neighbour, ObjectRecord, TagScore, VectorFilter

TOP_TAGS = 5
SPARE = 5  # asked for beyond the limit, so hits dropped as stale rarely shorten a page
MIN_NORM = 1e-3  # a combined query vector shorter than this has no direction left


@dataclass(frozen=True)
class SearchHit:
    __pydantic_config__ = DOCUMENTED

    bucket: str
    key: str
    score: float
    """cosine similarity of the query and the image, -1..1"""
    tags: tuple[TagScore, ...] = ()
    """the image's best tags"""
    caption: str | None = None
    """its caption (Captions=On)"""


@dataclass(frozen=True)
class SearchResults:
    """Images nearest the query, most similar first."""

    __pydantic_config__ = DOCUMENTED

    query: str
    """the text searched for, or the key of the image whose look-alikes these are"""
    images: tuple[SearchHit, ...]


@dataclass(frozen=True)
class NearDuplicate:
    __pydantic_config__ = DOCUMENTED

    bucket: str
    key: str
    similarity: float
    """cosine similarity of the two images' embeddings"""


@dataclass(frozen=True)
class Duplicates:
    """Other images whose content is almost the same (resized, recompressed, cropped, ...)."""

    __pydantic_config__ = DOCUMENTED

    key: str
    checked: bool
    """whether this deployment looks for near-duplicates (the NearDuplicates parameter)"""
    images: tuple[NearDuplicate, ...] = ()
    """most similar first; the same bytes under another key are not listed (exact duplicates
    share one embedding and one set of tags)"""


class Search:
    def __init__(
        self,
        bucket: str,
        index: VectorIndex,
        objects: ObjectStore,
        embed_text: Callable[[list[str]], NDArray[np.float32]],
        duplicates: DuplicateStore | None = None,
        model: str | None = None,
        space: Callable[[], str] | None = None,
        tag_vector: Callable[[str], NDArray[np.float32] | None] | None = None,
    ) -> None:
        """``model``: the deployed model's key; records of another one (a switch of model being
        re-tagged) are never answered: their vectors live in another embedding space. ``space``:
        that model's space in the index (keys.tag_space), so queries find only its vectors and
        a page is full even while most of the index still holds the previous model's."""
        self.bucket, self.index, self.objects = bucket, index, objects
        self.embed_text, self.duplicates_store, self.model = embed_text, duplicates, model
        self.space = space
        self.tag_vector = tag_vector  # a tag's text embedding (None: a taught tag, which has none here)

    def _scoped(self, where: VectorFilter | None) -> VectorFilter | None:
        if self.space is None:
            return where
        return dataclasses.replace(where or VectorFilter(), space=self.space())

    def _current(self, record: ObjectRecord | None) -> bool:
        return record is not None and record.status == "tagged" and self.model in (None, record.model)

    def text(self, query: str, limit: int, where: VectorFilter | None = None, min_score: float = -1.0) -> SearchResults:
        (vector,) = self.embed_text([query])
        found = self.index.nearest(vector, limit + SPARE, self._scoped(where))
        return SearchResults(query, self._hits(found, limit, min_score, where))

    def combined(
        self,
        query: str,
        limit: int,
        where: VectorFilter | None = None,
        min_score: float = -1.0,
        minus: Sequence[str] = (),
        like: str | None = None,
    ) -> SearchResults | None:
        """Words, minus words, plus an image, by arithmetic on unit embeddings (rclip's): the
        query's embedding, minus each of ``minus``'s, plus the stored vector of ``like``,
        normalised; the image itself and exact copies of it are left out of its answer. None:
        ``like`` has no vector."""
        if not minus and like is None:
            return self.text(query, limit, where, min_score)
        minus = list(dict.fromkeys(minus))  # a phrase repeated is subtracted once
        signs = [1.0] * bool(query) + [-1.0] * len(minus)
        texts = [query] * bool(query) + minus
        parts = [sign * e for sign, e in zip(signs, self.embed_text(texts), strict=True)] if texts else []
        own = None  # the liked image: it and exact copies of its bytes are no answer
        if like is not None:
            record = self.objects.get(self.bucket, like)
            stored = self.index.get(record.ref) if record is not None and self._current(record) else None
            if record is None or stored is None:
                return None
            own = record.content_id
            parts.append(stored)
        vector = np.sum(parts, axis=0)
        norm = float(np.linalg.norm(vector))
        if norm < MIN_NORM:
            raise CancelledQuery("the words and images given cancel each other out: nothing is left to search for")
        vector = (vector / norm).astype(np.float32)
        found = [n for n in self.index.nearest(vector, limit + SPARE + 1, self._scoped(where)) if n.content_id != own]
        label = " ".join([query, *(f"-{m}" for m in minus), *([f"+like:{like}"] if like is not None else [])]).strip()
        return SearchResults(label, self._hits(found, limit, min_score, where))

    def near_tags(self, wanted: Sequence[str], excluded: Sequence[str], limit: int) -> list[Neighbour]:
        """The ``limit`` images nearest the meaning of ``wanted`` (their tag embeddings' mean) that
        carry every one of them and none of ``excluded`` (the index's metadata filter)."""
        found = [self.tag_vector(tag) for tag in wanted] if self.tag_vector is not None else []
        vectors = [v for v in found if v is not None]
        if not vectors:
            raise TooBroad(
                "these tags are too common for the tag index, and taught and open tags (places, caption keywords) "
                "have no meaning to search by: add a vocabulary tag"
            )
        vector = np.sum(vectors, axis=0)
        vector = (vector / max(float(np.linalg.norm(vector)), MIN_NORM)).astype(np.float32)
        where = VectorFilter(tags=tuple(wanted), not_tags=tuple(excluded))
        return self.index.nearest(vector, limit, self._scoped(where))

    def similar(self, key: str, limit: int, where: VectorFilter | None = None) -> SearchResults | None:
        """Images like this one, from its stored vector; None when it has none (unknown, failed,
        or not indexed yet)."""
        record = self.objects.get(self.bucket, key)
        if record is None or not self._current(record):  # a vector left behind is not an image
            return None
        ref = record.ref
        vector = self.index.get(ref)
        if vector is None:
            return None
        found = [n for n in self.index.nearest(vector, limit + SPARE + 1, self._scoped(where)) if n.ref != ref]
        return SearchResults(key, self._hits(found, limit, -1.0, where))

    def duplicates(self, key: str) -> Duplicates | None:
        """The image's near-duplicates that still hold the content they were found with."""
        record = self.objects.get(self.bucket, key)
        if record is None:
            return None
        if self.duplicates_store is None:
            return Duplicates(key, checked=False)
        pairs = [p for p in self.duplicates_store.of(record.ref) if p.content_id == record.content_id]
        others = self.objects.get_many([p.other_ref for p in pairs])
        current = [p for p in pairs if p.other_ref in others and others[p.other_ref].content_id == p.other_content_id]
        current.sort(key=lambda p: (-p.similarity, p.other_ref))
        images = tuple(NearDuplicate(*keys.split_ref(p.other_ref), p.similarity) for p in current)
        return Duplicates(key, checked=True, images=images)

    def _hits(
        self, found: list[Neighbour], limit: int, min_score: float, where: VectorFilter | None = None
    ) -> tuple[SearchHit, ...]:
        found = [n for n in found if n.similarity >= min_score]
        records = self.objects.get_many([n.ref for n in found]) if found else {}
        hits = []
        for n in found:
            record = records.get(n.ref)
            if record is None or not self._current(record) or record.content_id != n.content_id:
                continue  # deleted, failed, overwritten or another model's since its vector was written
            if where is not None and not _holds_tags(record, where):
                continue  # the vector's metadata was trimmed to 2 KB: the record has the whole say
            hits.append(SearchHit(record.bucket, record.key, n.similarity, record.tags[:TOP_TAGS], record.caption))
        return tuple(hits[:limit])


class CancelledQuery(ValueError):
    """Words and images that add up to nothing (``dog`` minus ``dog``): there is no direction to search."""


def _holds_tags(record: ObjectRecord, where: VectorFilter) -> bool:
    held = {t.tag for t in record.tags}
    return set(where.tags) <= held and not held & set(where.not_tags)
