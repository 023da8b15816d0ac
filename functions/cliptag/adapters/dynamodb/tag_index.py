"""Objects by tag, best first, from the tag index (the TagIndex port).

A tag's entries live in one index partition, or in ``shards`` of them for very popular tags;
each page reads every unfinished shard in order and merges them. A position per shard says where
the next page starts (None: not started, "": exhausted); ``cliptag.queries`` carries positions
between pages inside signed tokens.
"""

from __future__ import annotations

from typing import Any

from cliptag import keys
from cliptag.adapters.dynamodb import items
from cliptag.adapters.dynamodb.table import Table


class DynamoTagIndex:
    def __init__(self, table: Table, shards: int = 1) -> None:
        self.table = table
        self.shards = max(1, shards)

    def page(
        self, tag: str, min_score: float, limit: int, positions: list[str | None]
    ) -> tuple[list[tuple[str, float]], list[str | None] | None]:
        """Objects with ``tag`` and score >= min_score, best first: (page of (ref, score), next positions)."""
        heads = [self._shard_head(tag, shard, min_score, limit, positions[shard]) for shard in range(self.shards)]
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
        results = [(keys.ref_from_index_sk(sk), keys.score_from_index_sk(sk)) for sk, _ in page]
        return results, following if any(p != "" for p in following) else None

    def _shard_head(self, tag: str, shard: int, min_score: float, limit: int, position: str | None) -> list[str]:
        """Up to limit+1 index sort keys of one shard after ``position``, best first."""
        if position == "":  # exhausted
            return []
        partition = keys.tag_index_pk(tag, shard, self.shards)
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
