"""Reads the whole tags table (a Scan: a test and soak tool, never used by the API) and checks
the invariants every object must satisfy, whatever faults happened while it was written."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cliptag import keys
from cliptag.adapters.dynamodb.table import plain


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
            wrong = [t for t in both if self.tags[t] != self.tag_items[t]]  # one score, stored once
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
            item = plain(raw)
            ref = keys.ref_from_object_pk(item[keys.PK])
            if ref is None:
                continue
            state = objects.setdefault(ref, ObjectState(ref))
            tag = keys.tag_from_sk(item[keys.SK])
            if item[keys.SK] == keys.META:
                state.status = item["status"]
                state.revision = int(item.get("revision", 0))
                state.content_id = item.get("content_id", "")
                state.error = item.get("error", "")
                state.tags = {t["tag"]: float(t["score"]) for t in item.get("tags", [])}
            elif tag is not None:
                sk = item.get(keys.TAG_INDEX_SK)
                state.tag_items[tag] = keys.score_from_index_sk(sk) if sk else float("inf")
    return objects


def read_vectors(s3vectors: Any, bucket: str, index: str) -> dict[str, str]:
    """Every vector of the search index: ref -> the content id it was written from."""
    found: dict[str, str] = {}
    token: str | None = None
    while True:
        page = s3vectors.list_vectors(
            vectorBucketName=bucket, indexName=index, returnMetadata=True, **({"nextToken": token} if token else {})
        )
        found |= {v["metadata"]["ref"]: v["metadata"]["content_id"] for v in page.get("vectors", [])}
        token = page.get("nextToken")
        if not token:
            return found


def vector_problems(objects: dict[str, ObjectState], vectors: dict[str, str]) -> list[str]:
    """The search index must hold exactly the tagged objects, each with its current content."""
    found = []
    for ref, state in objects.items():
        held = vectors.get(ref)
        if state.status == "tagged" and held != state.content_id:
            found.append(f"{ref}: tagged ({state.content_id[:12]}) but its vector holds {held and held[:12]}")
        elif state.status != "tagged" and held is not None:
            found.append(f"{ref}: {state.status or 'no META'} but still in the search index")
    found += [f"{ref}: in the search index without a record" for ref in vectors.keys() - objects.keys()]
    return found
