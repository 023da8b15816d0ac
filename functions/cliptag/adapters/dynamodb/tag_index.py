"""Objects by tag, best first, from the tag index (the TagIndex port); and several tags' objects
read together in one order (a category's).

A tag's entries live in one index partition, or in ``shards`` of them for very popular tags;
each page reads every unfinished shard in order and merges them. A position per shard says where
the next page starts (None: not started, "": exhausted); ``cliptag.queries`` carries positions
between pages inside signed tokens.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from cliptag import keys
from cliptag.adapters.dynamodb import items
from cliptag.adapters.dynamodb.table import Table

PARALLEL_QUERIES = 16  # a category's partitions are read concurrently (one Query each)


class DynamoTagIndex:
    def __init__(self, table: Table, shards: int = 1, space: str | Callable[[], str] = "") -> None:
        """``space``: the deployed model's partitions (keys.tag_space), or how to find them at each
        query: only its records are read."""
        self.table = table
        self.shards = max(1, shards)
        self._space = space
        self._pool: ThreadPoolExecutor | None = None

    @property
    def space(self) -> str:
        return self._space() if callable(self._space) else self._space

    def page(
        self, tag: str, min_score: float, limit: int, positions: list[str | None]
    ) -> tuple[list[tuple[str, float, bool]], list[str | None] | None]:
        """Objects with ``tag`` and score >= min_score, those a person confirmed first, then best
        first: (page of (ref, score, confirmed), next positions)."""
        space = self.space
        heads = [
            self._shard_head(tag, shard, space, min_score, limit, positions[shard]) for shard in range(self.shards)
        ]
        merged = sorted(((sk, shard) for shard, rows in enumerate(heads) for sk in rows), reverse=True)
        page = merged[:limit]
        following = list(positions)
        for shard, rows in enumerate(heads):
            taken = [sk for sk, s in page if s == shard]
            if following[shard] == "" or len(taken) == len(rows):
                # Each shard was asked for limit+1 rows: taking all of them means it is exhausted.
                following[shard] = ""
            elif taken:
                following[shard] = taken[-1]
        results = [
            (keys.ref_from_index_sk(sk), keys.score_from_index_sk(sk), keys.confirmed_in_index_sk(sk)) for sk, _ in page
        ]
        return results, following if any(p != "" for p in following) else None

    def _shard_head(
        self, tag: str, shard: int, space: str, min_score: float, limit: int, position: str | None
    ) -> list[str]:
        """Up to limit+1 index sort keys of one shard after ``position``, best first."""
        if position == "":  # exhausted
            return []
        partition = keys.tag_index_pk(tag, shard, self.shards, space)
        start: dict[str, Any] | None = None
        if position:
            ref = keys.ref_from_index_sk(position)
            start = {
                **items.object_key(ref, keys.tag_sk(tag)),
                keys.TAG_INDEX_PK: partition,
                keys.TAG_INDEX_SK: position,
            }
        found = self.table.query_page(
            f"{keys.TAG_INDEX_PK} = :pk AND {keys.TAG_INDEX_SK} >= :floor",
            {":pk": partition, ":floor": keys.encode_score(min_score)},
            start=start,
            IndexName=keys.TAG_INDEX,
            ScanIndexForward=False,
            Limit=limit + 1,
        )
        return [item[keys.TAG_INDEX_SK] for item in found]

    def merged(
        self, tags: list[str], min_score: float, limit: int, after: str | None
    ) -> tuple[list[tuple[str, str, float]], bool]:
        """Entries of any of ``tags`` after the index sort key ``after``, best first, as
        (index sort key, ref, score); and whether more may follow.

        Every partition's sort keys are ``<score>#<ref>``, so one key orders them all and one
        cursor continues them all. Each partition gives up to ``limit`` entries; those below the
        last entry of a partition that had more cannot be placed yet, so they wait for the next
        call (which starts after the last key returned).
        """
        space = self.space
        partitions = [keys.tag_index_pk(tag, shard, self.shards, space) for tag in tags for shard in range(self.shards)]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(PARALLEL_QUERIES, thread_name_prefix="index")
        # limit+1 rows a partition: one more than kept tells a finished partition from a cut one.
        heads = list(self._pool.map(lambda p: self._partition_head(p, min_score, limit + 1, after), partitions))
        truncated = [rows[limit - 1][keys.TAG_INDEX_SK] for rows in heads if len(rows) > limit]
        boundary = max(truncated, default="")
        ordered = sorted((item[keys.TAG_INDEX_SK] for rows in heads for item in rows[:limit]), reverse=True)
        placed = [(sk, keys.ref_from_index_sk(sk), keys.score_from_index_sk(sk)) for sk in ordered if sk >= boundary]
        return placed, bool(truncated)

    def _partition_head(self, partition: str, min_score: float, limit: int, after: str | None) -> list[dict[str, Any]]:
        condition = f"{keys.TAG_INDEX_PK} = :pk AND {keys.TAG_INDEX_SK} BETWEEN :floor AND :below"
        # BETWEEN is inclusive: "<score>#" sorts below every key of that score, the cursor excluded
        # below by dropping it from the answer.
        below = after or "9" * (keys.SCORE_WIDTH + 1)
        found = self.table.query_page(
            condition,
            {":pk": partition, ":floor": keys.encode_score(min_score), ":below": below},
            IndexName=keys.TAG_INDEX,
            ScanIndexForward=False,
            Limit=limit + (1 if after else 0),
        )
        return [item for item in found if item[keys.TAG_INDEX_SK] != after][:limit]
