"""DynamoDB write request units per new image, metered from the items the handler writes.

``stages`` runs the handler with the table's client wrapped in a WriteMeter; this measure reports
the mean units per image over its batches (and the tags per image of the last batch).
"""

from __future__ import annotations

import statistics
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from cliptag import keys

from bench.context import Bench, Measure

if TYPE_CHECKING:
    from cliptag.adapters.dynamodb import Table


def item_bytes(item: dict[str, Any]) -> int:
    """DynamoDB's billed item size: attribute names plus values (serialized form)."""
    size = 0
    for name, value in item.items():
        size += len(name.encode())
        ((kind, raw),) = value.items()
        if kind in ("S", "N"):
            size += len(str(raw).encode())
        elif kind == "B":
            size += len(raw)
        elif kind in ("L", "M"):
            size += 3 + item_bytes(raw if kind == "M" else {str(i): v for i, v in enumerate(raw)})
        else:
            size += 1
    return size


class WriteMeter:
    """Wraps the table's DynamoDB client and counts the write request units it consumes (from
    the handler's I/O threads too: a batch commits its messages concurrently)."""

    def __init__(self, client: Any) -> None:
        self.client, self.units = client, 0.0
        self._lock = threading.Lock()

    def _charge(self, item: dict[str, Any] | None, deleted: bool = False, new: bool = False) -> None:
        units = 1 if deleted else -(-item_bytes(item or {}) // 1024)
        if deleted or (item and keys.TAG_INDEX_PK in item):
            units += 1  # the index write (KEYS_ONLY projection: one unit)
        if new and item and keys.CONTENT_INDEX_PK in item:
            # A new record's entry in the content index (GSI3 on content_id, keys only). A rewrite
            # that keeps the content writes nothing there (DynamoDB writes an index only when an
            # item's indexed attributes change); an overwrite with new bytes would cost two.
            units += 1
        with self._lock:
            self.units += units

    def put_item(self, **kwargs: Any) -> Any:
        self._charge(kwargs["Item"], new="attribute_not_exists" in kwargs.get("ConditionExpression", ""))
        return self.client.put_item(**kwargs)

    def batch_write_item(self, **kwargs: Any) -> Any:
        for requests in kwargs["RequestItems"].values():
            for r in requests:
                self._charge(r["PutRequest"]["Item"]) if "PutRequest" in r else self._charge(None, deleted=True)
        return self.client.batch_write_item(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


@contextmanager
def metering(table: Table) -> Iterator[WriteMeter]:
    """Meter every write through ``table`` while the block runs."""
    meter = WriteMeter(table.client)
    table.client = meter  # type: ignore[assignment]
    try:
        yield meter
    finally:
        table.client = meter.client


def run(bench: Bench) -> None:
    units = statistics.mean(bench.results["write_units"])
    bench.data["write_units_per_image"] = units
    tags = bench.results["tags_per_image"]
    bench.row("floor", "DynamoDB write units per new image (measured)", f"{units:8.1f} WRU ({tags:.0f} tags/image)")


MEASURE = Measure("writes", "DynamoDB write units per new image (WriteMeter on the handler runs)", run, ("stages",))
