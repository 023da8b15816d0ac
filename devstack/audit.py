"""Reads the whole tags table (a Scan: a test and soak tool, never used by the API) and checks
the invariants every object must satisfy, whatever faults happened while it was written."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from boto3.dynamodb.types import TypeDeserializer
from cliptag import keys

_de = TypeDeserializer()


@dataclass
class ObjectState:
    ref: str
    status: str = ""  # tagged | failed | deleted | "" (no META item)
    revision: int = 0  # how many times META was written
    content_id: str = ""
    error: str = ""
    tags: dict[str, float] = field(default_factory=dict)  # tag -> score, as META lists them
    tag_items: dict[str, float] = field(default_factory=dict)  # tag -> score, as the index holds them

    def problems(self) -> list[str]:
        """Why this object's items are inconsistent; empty when they are not."""
        found = []
        if self.status == "failed" and not self.error:
            found.append("failed without a reason")
        if self.status in ("failed", "deleted", "") and self.tag_items:
            found.append(f"{self.status or 'no META'} but {len(self.tag_items)} TAG items")
        if self.status == "tagged":
            if not self.tags:
                found.append("tagged with no tags")
            missing = self.tags.keys() - self.tag_items.keys()
            orphans = self.tag_items.keys() - self.tags.keys()
            both = self.tags.keys() & self.tag_items.keys()
            wrong = [t for t in both if abs(self.tags[t] - self.tag_items[t]) > 1e-5]
            if missing or orphans or wrong:
                found.append(
                    f"index differs from META: missing {sorted(missing)}, orphans {sorted(orphans)}, "
                    f"other score {sorted(wrong)}"
                )
        return found


def read_objects(ddb: Any, table: str) -> dict[str, ObjectState]:
    """Every object the table knows, by ``bucket/key``."""
    objects: dict[str, ObjectState] = {}
    for page in ddb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
        for raw in page["Items"]:
            item = {k: _de.deserialize(v) for k, v in raw.items()}
            pk, sk = item["PK"], item["SK"]
            if not pk.startswith("OBJ#"):
                continue
            ref = pk.removeprefix("OBJ#")
            state = objects.setdefault(ref, ObjectState(ref))
            if sk == keys.META:
                state.status = item["status"]
                state.revision = int(item.get("revision", 0))
                state.content_id = item.get("content_id", "")
                state.error = item.get("error", "")
                state.tags = {t["name"]: float(t["score"]) for t in item.get("tags", [])}
            elif sk.startswith("TAG#"):
                score = item.get("GSI1SK", "").split("#", 1)[0]
                state.tag_items[sk.removeprefix("TAG#")] = keys.decode_score(score) if score else float("inf")
    return objects
