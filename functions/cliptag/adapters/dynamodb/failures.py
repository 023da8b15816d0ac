"""Failed objects, newest first, from the sparse failure index (only failed META items carry its
keys, so listing them never reads a tagged object)."""

from __future__ import annotations

from cliptag import keys
from cliptag.adapters.dynamodb import items
from cliptag.adapters.dynamodb.table import Table
from cliptag.records import ObjectRecord


class DynamoFailureIndex:
    def __init__(self, table: Table) -> None:
        self.table = table

    def page(self, bucket: str, limit: int, position: str | None) -> tuple[list[ObjectRecord], str | None]:
        """Up to ``limit`` failed objects of ``bucket`` after ``position``; and the next position."""
        partition = keys.failure_index_pk(bucket)
        start = None
        if position:
            ref = keys.ref_from_index_sk(position)
            start = {**items.object_key(ref), keys.FAILURE_INDEX_PK: partition, keys.FAILURE_INDEX_SK: position}
        found = self.table.query_page(
            f"{keys.FAILURE_INDEX_PK} = :pk",
            {":pk": partition},
            start=start,
            IndexName=keys.FAILURE_INDEX,
            ScanIndexForward=False,
            Limit=limit + 1,
        )
        records = [r for item in found[:limit] if (r := items.record_from_meta(item)) is not None]
        following = found[limit - 1][keys.FAILURE_INDEX_SK] if len(found) > limit else None
        return records, following
