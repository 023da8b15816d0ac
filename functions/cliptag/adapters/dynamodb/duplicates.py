"""Near-duplicate pairs (the DuplicateStore port): one DUP item under each object of a pair.

A pair names both contents as they were when it was found; readers keep it only while both
objects still hold them (an overwrite or a delete makes it stale without a write here).
"""

from __future__ import annotations

from cliptag import keys
from cliptag.adapters.dynamodb import items
from cliptag.adapters.dynamodb.table import Table
from cliptag.records import DuplicatePair


class DynamoDuplicates:
    def __init__(self, table: Table) -> None:
        self.table = table

    def record(self, pairs: list[DuplicatePair]) -> None:
        # Two new near-duplicates of one batch find each other: each pair once (BatchWriteItem
        # refuses a request that names one item twice).
        unique = {(i[keys.PK], i[keys.SK]): i for pair in pairs for i in items.duplicate_items(pair)}
        self.table.batch_write(list(unique.values()))

    def of(self, ref: str) -> list[DuplicatePair]:
        found = self.table.query(
            f"{keys.PK} = :pk AND begins_with({keys.SK}, :dup)",
            {":pk": keys.object_pk(ref), ":dup": keys.DUPLICATE_PREFIX},
        )
        return [items.duplicate_from_item(item) for item in found]
