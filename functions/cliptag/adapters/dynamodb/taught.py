"""Tags taught by example, in the table (the TaughtStore port): a small head item listing every
taught tag (name -> vector digest, model, category), read on every tagging batch, and one item per
taught version of a tag (its vector and how it was taught), keyed by name and digest and never
rewritten, read only when the head changes.

A teach writes the new version's item first, then points the head at it, then deletes the
versions the head no longer names; a removal takes the name off the head first. So a head always
names items that exist, whatever fails or interleaves (two teaches of one name: the head names
one of them, both items exist until the later clean-up). BatchGetItem only: the tagger's role has
no GetItem.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import numpy as np

from cliptag import keys
from cliptag.adapters.dynamodb.table import Table, typed
from cliptag.taught import TaughtEntry, TaughtTag, entry_json

PARTITION = "TAUGHT"
HEAD = {keys.PK: PARTITION, keys.SK: "SET"}


def tag_key(name: str, digest: str) -> dict[str, str]:
    return {keys.PK: PARTITION, keys.SK: f"TAG#{name}#{digest}"}


def _entry(value: Any) -> TaughtEntry | None:
    if not isinstance(value, dict) or not isinstance(value.get("digest"), str):
        return None  # not ours: ignored rather than trusted
    try:
        return TaughtEntry(
            digest=value["digest"],
            model=str(value.get("model", "")),
            category=str(value.get("category", "")),
            method=str(value.get("method", "")),
            examples=int(value.get("examples", 0)),
            threshold=float(value.get("threshold", 0)),
            precision=float(value.get("precision", 0)),
            recall=float(value.get("recall", 0)),
            at=int(value.get("at", 0)),
        )
    except (TypeError, ValueError):
        return None


def _numbers(value: dict[str, Any]) -> dict[str, Any]:
    """Floats as DynamoDB takes them (Decimal, from their shortest repr)."""
    return {k: Decimal(repr(v)) if isinstance(v, float) else v for k, v in value.items()}


def tag_item(tag: TaughtTag) -> dict[str, Any]:
    return _numbers(
        {
            **tag_key(tag.name, tag.digest),
            "name": tag.name,
            "vector": np.asarray(tag.vector, "<f4").tobytes(),
            "threshold": tag.threshold,
            "model": tag.model,
            "category": tag.category,
            "method": tag.method,
            "examples": list(tag.examples),
            "negatives": list(tag.negatives),
            "precision": tag.precision,
            "recall": tag.recall,
            "by": tag.by,
            "at": tag.at,
        }
    )


def tag_from_item(item: dict[str, Any]) -> TaughtTag:
    raw = getattr(item["vector"], "value", item["vector"])
    return TaughtTag(
        name=str(item["name"]),
        vector=np.frombuffer(bytes(raw), "<f4").astype(np.float32),
        threshold=float(item["threshold"]),
        model=str(item["model"]),
        category=str(item.get("category", "")),
        method=str(item.get("method", "prototype")),
        examples=tuple(item.get("examples") or ()),
        negatives=tuple(item.get("negatives") or ()),
        precision=float(item.get("precision", 0)),
        recall=float(item.get("recall", 0)),
        by=str(item.get("by", "")),
        at=int(item.get("at", 0)),
    )


class DynamoTaughtTags:
    def __init__(self, table: Table) -> None:
        self.table = table

    def head(self) -> dict[str, TaughtEntry]:
        """Every taught tag, any model's (one consistent read of one small item)."""
        found = self.table.batch_get([HEAD])
        listed = found[0].get("tags", {}) if found else {}
        return {name: entry for name, value in listed.items() if (entry := _entry(value)) is not None}

    def load(self, wanted: Mapping[str, str]) -> list[TaughtTag]:
        """The taught tags ``wanted`` (name -> digest), with their vectors."""
        found = self.table.batch_get([tag_key(name, digest) for name, digest in wanted.items()])
        return [tag_from_item(item) for item in found]

    def put(self, tag: TaughtTag) -> None:
        """Add or replace one taught tag: the new version's item, then the head, then the clean-up."""
        self.table.put(tag_item(tag))
        self._head_update("SET #t.#n = :e", {"#n": tag.name}, {":e": _numbers(entry_json(tag))})
        self._drop_versions(tag.name)

    def remove(self, name: str) -> bool:
        """Forget one taught tag (the head first); False when there was none."""
        if name not in self.head():
            return False
        self._head_update("REMOVE #t.#n", {"#n": name}, None)
        self._drop_versions(name)
        return True

    def _drop_versions(self, name: str) -> None:
        """Delete the items of ``name`` the head does not name (read after it was written)."""
        current = self.head().get(name)
        keep = f"TAG#{name}#{current.digest}" if current else None
        for item in self.table.query(
            f"{keys.PK} = :p AND begins_with({keys.SK}, :t)", {":p": PARTITION, ":t": f"TAG#{name}#"}
        ):
            if item[keys.SK] != keep and item[keys.SK].count("#") == 2:  # not another name's ("a#b")
                self.table.delete({keys.PK: PARTITION, keys.SK: item[keys.SK]})

    def _head_update(self, expression: str, names: dict[str, str], values: dict[str, Any] | None) -> None:
        # The map must exist before a name can be set inside it (DynamoDB refuses a path through
        # a missing map): created empty once, never overwritten.
        self.table.call(
            "update_item",
            TableName=self.table.name,
            Key=typed(HEAD),
            UpdateExpression="SET #t = if_not_exists(#t, :empty)",
            ExpressionAttributeNames={"#t": "tags"},
            ExpressionAttributeValues=typed({":empty": {}}),
        )
        params: dict[str, Any] = {
            "TableName": self.table.name,
            "Key": typed(HEAD),
            "UpdateExpression": expression,
            "ExpressionAttributeNames": {"#t": "tags", **names},
        }
        if values:
            params["ExpressionAttributeValues"] = typed(values)
        self.table.call("update_item", **params)
