"""Images with every tag of ``all`` and none of ``none``, best first by the weakest of their
``all`` scores (``GET /images?all=&none=``). No AWS here.

The plan is chosen per query, and the answer says which and what it read:

- **index**: each ``all`` tag's index partitions are read from the top down to ``min_score`` (a
  first look of ``PROBE`` entries each, then up to ``bound``). The rarest tag whose partitions end
  within the bound drives: its images are checked against their records (every ``all`` tag at
  ``min_score`` or confirmed by a person, no ``none`` tag), ranked, and paged. Exact.
- **vector**: every ``all`` tag has more than ``bound`` images above ``min_score``. With a search
  index, one query near the tags' combined meaning under the metadata filter (every ``all``
  tag, none of ``none``), its hits checked and ranked the same way: the best of those 100, not of
  the library (``exact: false``; a higher ``min_score`` makes the index plan possible).
- otherwise the query is refused (``TooBroad``, a 400 saying why), never left to time out.

Each page reads its plan again and cuts its slice (a signed token holds the offset), so every
page of a query costs about what the first did.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from cliptag.ports import ObjectStore, TagIndex
from cliptag.records import DOCUMENTED, Neighbour, ObjectRecord, TagScore
from cliptag.tokens import PageTokens

BOUND = 1000  # images of the driving tag a query may read and check against their records
PROBE = 100  # the first look at each tag's partitions: a rare tag ends within it
VECTOR_TOP_K = 100  # S3 Vectors' most nearest neighbours per query
INDEX_ENTRY_BYTES = 140  # a keys-only tag index entry (its keys and the table's), as DynamoDB sizes it
MAX_TAGS = 5  # in all and in none


class TooBroad(ValueError):
    """The query would read more than the bound allows."""


@dataclass(frozen=True)
class CombinedImage:
    __pydantic_config__ = DOCUMENTED

    bucket: str
    key: str
    score: float
    """the weakest of its scores for the tags asked for"""
    tags: tuple[TagScore, ...]
    """its scores for the tags asked for, as in its record (source person: confirmed)"""


@dataclass(frozen=True)
class QueryPlan:
    __pydantic_config__ = DOCUMENTED

    kind: Literal["index", "vector"]
    """index: the rarest tag's partitions checked against the records; vector: the search index's filter"""
    exact: bool
    """false: ranked among the images nearest the tags' meaning, not the whole library"""
    driving_tag: str | None
    """index: the rarest tag, whose images were checked"""
    index_entries: int
    """tag index entries read"""
    records: int
    """records read to check them"""
    vector_queries: int
    read_units: float
    """DynamoDB read units this page cost: index entries (eventually consistent) and records (consistent)"""
    note: str = ""


@dataclass(frozen=True)
class CombinedPage:
    """Images with every tag asked for and none of those excluded, best first by their weakest score."""

    __pydantic_config__ = DOCUMENTED

    all: tuple[str, ...]
    none: tuple[str, ...]
    plan: QueryPlan
    images: tuple[CombinedImage, ...]
    next_token: str | None = None
    """pass back as next_token for the next page; absent on the last page"""


# The vector plan: (tags wanted, tags excluded, how many) -> nearest neighbours under the filter.
NearTags = Callable[[Sequence[str], Sequence[str], int], list[Neighbour]]


def _qualifies(record: ObjectRecord, wanted: Sequence[str], excluded: Sequence[str], min_score: float) -> bool:
    held = {t.tag: t for t in record.tags}
    if any(tag in held for tag in excluded):
        return False
    return all(tag in held and (held[tag].score >= min_score or held[tag].source == "person") for tag in wanted)


def _read_units(entries: int, records: int) -> float:
    # A Query is charged 0.5 unit per 4 KB it reads (eventually consistent, as a GSI is); each
    # record of the consistent BatchGetItem one unit (META items stay under 4 KB).
    return round(entries * INDEX_ENTRY_BYTES / 4096 * 0.5 + records, 2)


class CombinedQueries:
    def __init__(
        self,
        index: TagIndex,
        objects: ObjectStore,
        tokens: PageTokens,
        near_tags: NearTags | None = None,
        bound: int = BOUND,
    ) -> None:
        self.index, self.objects, self.tokens, self.near_tags, self.bound = index, objects, tokens, near_tags, bound

    def images(
        self, wanted: Sequence[str], excluded: Sequence[str], min_score: float, limit: int, next_token: str | None
    ) -> CombinedPage:
        wanted, excluded = tuple(dict.fromkeys(wanted)), tuple(t for t in dict.fromkeys(excluded) if t not in wanted)
        candidates, plan = self._plan(wanted, excluded, min_score)
        # A token continues its query under the plan that issued it: if the plan changed between
        # pages (a tag crossed the bound), its offset would skip or repeat images.
        query = (
            f"all:{','.join(wanted)}\nnone:{','.join(excluded)}\n{min_score!r}\n{self.index.space}\n"
            f"{plan.kind}:{plan.driving_tag or ''}"
        )
        (position,) = self.tokens.decode(next_token, query, 1, valid=str.isdigit)
        offset = int(position or 0)
        records = self.objects.get_many(candidates) if candidates else {}
        ranked = []
        for ref in candidates:
            record = records.get(ref)
            if record is None or record.status != "tagged" or not _qualifies(record, wanted, excluded, min_score):
                continue  # gone, overwritten, or an index entry older than its record
            held = {t.tag: t for t in record.tags}
            mine = tuple(held[tag] for tag in wanted)
            ranked.append(CombinedImage(record.bucket, record.key, min(t.score for t in mine), mine))
        ranked.sort(key=lambda image: (-image.score, image.bucket, image.key))
        page = tuple(ranked[offset : offset + limit])
        more = offset + limit < len(ranked)
        token = self.tokens.encode([str(offset + limit)], query) if more else None
        return CombinedPage(wanted, excluded, plan, page, token)

    def _plan(self, wanted: Sequence[str], excluded: Sequence[str], min_score: float) -> tuple[list[str], QueryPlan]:
        read = 0
        found: dict[str, list[str]] = {}
        open_positions: dict[str, list[str | None]] = {}
        for limit in (min(PROBE, self.bound + 1), self.bound + 1):  # a rare tag is found in the first look
            for tag in wanted:
                if tag in found and tag not in open_positions:
                    continue
                start = open_positions.get(tag, [None] * self.index.shards)
                rows, following = self.index.page(tag, min_score, limit - len(found.get(tag, [])), start)
                read += len(rows)
                found.setdefault(tag, []).extend(ref for ref, _, _ in rows)
                if following is None:
                    open_positions.pop(tag, None)
                else:
                    open_positions[tag] = following
            complete = [tag for tag in wanted if tag not in open_positions and len(found[tag]) <= self.bound]
            if complete:
                driving = min(complete, key=lambda tag: (len(found[tag]), tag))
                candidates = list(dict.fromkeys(found[driving]))
                plan = QueryPlan("index", True, driving, read, len(candidates), 0, _read_units(read, len(candidates)))
                return candidates, plan
        if self.near_tags is None:
            raise TooBroad(
                f"every tag asked for has more than {self.bound:,} images scoring at least {min_score:g}: "
                "raise min_score (or require a rarer tag)"
            )
        neighbours = self.near_tags(wanted, excluded, VECTOR_TOP_K)
        candidates = list(dict.fromkeys(n.ref for n in neighbours))
        note = (
            f"every tag asked for has more than {self.bound:,} images scoring at least {min_score:g}: these are the "
            f"best of the {VECTOR_TOP_K} images nearest the tags' meaning; raise min_score for an exact answer"
        )
        plan = QueryPlan("vector", False, None, read, len(candidates), 1, _read_units(read, len(candidates)), note)
        return candidates, plan


def parse_tags(text: str | None) -> list[str]:
    """``dog, beach`` -> ["dog", "beach"] (blank items dropped)."""
    return [part.strip() for part in (text or "").split(",") if part.strip()]
