"""The API's reads, each one call for its handler: an object's record, a page of a tag's objects,
a page of failed objects.

A page continues from a signed token (``cliptag.tokens``) bound to the query that issued it; the
indexes' shards and positions stay behind this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from cliptag import keys
from cliptag.ports import FailureIndex, ObjectStore, TagIndex
from cliptag.records import DOCUMENTED, ObjectRecord
from cliptag.tokens import PageTokens


@dataclass(frozen=True)
class TaggedImage:
    __pydantic_config__ = DOCUMENTED

    bucket: str
    key: str
    score: float
    """the tag's score on this image (a category's: its best tag's), as in its record"""
    source: Literal["model", "person", "examples", "caption", "gps"] = "model"
    """person: a person confirmed the tag (listed before the others); examples: a tag taught by
    example; caption: a keyword of the photo's caption; gps: a place tag from its GPS position"""


@dataclass(frozen=True)
class TagPage:
    """Objects carrying a tag (or a tag of a category), highest score first."""

    __pydantic_config__ = DOCUMENTED

    tag: str
    """the tag (or category) as the vocabulary names it"""
    images: tuple[TaggedImage, ...]
    next_token: str | None = None
    """pass back as next_token for the next page; absent on the last page"""


@dataclass(frozen=True)
class FailurePage:
    """Objects that could not be tagged, most recent first, each with its reason in 'error'."""

    __pydantic_config__ = DOCUMENTED

    images: tuple[ObjectRecord, ...]
    next_token: str | None = None
    """pass back as next_token for the next page; absent on the last page"""


class TagQueries:
    def __init__(
        self, bucket: str, objects: ObjectStore, index: TagIndex, failures: FailureIndex, tokens: PageTokens
    ) -> None:
        self.bucket = bucket
        self.objects, self.index, self.failures, self.tokens = objects, index, failures, tokens

    def image(self, key: str) -> ObjectRecord | None:
        """The record of one object of the stack's bucket."""
        return self.objects.get(self.bucket, key)

    def images_with_tag(
        self, tag: str, min_score: float, limit: int, next_token: str | None, taught: bool = False
    ) -> TagPage:
        """One page of the objects carrying ``tag`` (BadToken for a token this query did not issue);
        ``taught``: a tag taught by example, whose unconfirmed images say so."""
        # A token only continues the query that issued it, in the model's partitions it read.
        query = f"{tag}\n{min_score!r}\n{self.index.space}"
        positions = self.tokens.decode(next_token, query, self.index.shards)
        rows, following = self.index.page(tag, min_score, limit, positions)
        images = tuple(
            TaggedImage(*keys.split_ref(ref), score, "person" if confirmed else "examples" if taught else "model")
            for ref, score, confirmed in rows
        )
        return TagPage(tag, images, self.tokens.encode(following, query) if following else None)

    def images_with_open_tag(self, tag: str, min_score: float, limit: int, next_token: str | None) -> TagPage:
        """One page of the objects carrying ``tag``, a name outside the vocabulary (a place tag),
        each as its record says now: who gave the tag is read from the records (the index's
        keys do not say), and an entry its record no longer backs is left out."""
        query = f"open:{tag}\n{min_score!r}\n{self.index.space}"
        positions = self.tokens.decode(next_token, query, self.index.shards)
        rows, following = self.index.page(tag, min_score, limit, positions)
        records = self.objects.get_many([ref for ref, _, _ in rows]) if rows else {}
        images = []
        for ref, score, confirmed in rows:
            given = next((t for t in records[ref].tags if t.tag == tag), None) if ref in records else None
            if given is not None:
                images.append(TaggedImage(*keys.split_ref(ref), score, "person" if confirmed else given.source))
        return TagPage(tag, tuple(images), self.tokens.encode(following, query) if following else None)

    def images_in_category(
        self, category: str, tags: list[str], min_score: float, limit: int, next_token: str | None
    ) -> TagPage:
        """One page of the objects with any of ``tags`` (the category's), each once, by its best
        tag in the category: read from the tags' index partitions together, at read time.

        An object carrying several of the tags is met once per tag; it is listed where its best
        one is met (its record says which), so it never appears twice, across pages too.
        """
        query = f"category:{category}\n{min_score!r}\n{self.index.space}"
        (cursor,) = self.tokens.decode(next_token, query, 1)
        listed: list[TaggedImage] = []
        seen: set[str] = set()
        wanted = set(tags)
        more = True
        while len(listed) < limit and more:
            rows, more = self.index.merged(tags, min_score, limit, cursor)
            if not rows:
                break
            records = self.objects.get_many(list(dict.fromkeys(ref for _, ref, _ in rows)))
            for sk, ref, score in rows:
                cursor = sk
                record = records.get(ref)
                # Its best tag in the category: a confirmed one first (as the index orders them).
                ranks = ((t.source == "person", t.score) for t in record.tags if t.tag in wanted) if record else ()
                best = max(ranks, default=None)
                confirmed = keys.confirmed_in_index_sk(sk)
                # Else: listed at its best tag, or the entry is stale. Two of its tags tied at its
                # best score share one sort key: the first is listed.
                if best == (confirmed, score) and ref not in seen:
                    seen.add(ref)
                    listed.append(TaggedImage(*keys.split_ref(ref), score, "person" if confirmed else "model"))
                    if len(listed) == limit:
                        more = more or sk != rows[-1][0]
                        break
        token = self.tokens.encode([cursor], query) if more and cursor else None
        return TagPage(category, tuple(listed), token)

    def failed_images(self, limit: int, next_token: str | None) -> FailurePage:
        """One page of the bucket's failed objects, newest failure first."""
        query = f"failed\n{self.bucket}"
        (position,) = self.tokens.decode(next_token, query, 1, valid=keys.is_failure_index_sk)
        records, following = self.failures.page(self.bucket, limit, position)
        return FailurePage(tuple(records), self.tokens.encode([following], query) if following else None)
