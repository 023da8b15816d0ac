"""``cliptag failures``: the objects that could not be tagged, with their reasons, newest first.

Read from the sparse failure index (only failed objects are in it): no Scan of the table.
"""

from __future__ import annotations

from collections.abc import Iterator

from cliptag.adapters.dynamodb import DynamoFailureIndex
from cliptag.records import ObjectRecord


def failed_objects(index: DynamoFailureIndex, bucket: str, page_size: int = 100) -> Iterator[ObjectRecord]:
    position: str | None = None
    while True:
        records, position = index.page(bucket, page_size, position)
        yield from records
        if position is None:
            return


def format_failure(record: ObjectRecord) -> str:
    return f"{record.key}\t{record.size} bytes\t{record.error or 'no reason recorded'}"
