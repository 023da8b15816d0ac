"""Stored embeddings read from the table, for the commands that work on them without the model
(``cliptag teach``, ``cliptag calibrate``): the objects' own, and a sample of the library's."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
from cliptag import keys
from cliptag.adapters.dynamodb import Table
from cliptag.adapters.dynamodb.items import content_from_item, content_key
from cliptag.adapters.dynamodb.table import typed
from cliptag.records import Deployment
from numpy.typing import NDArray

BACKGROUND = 2048  # library photos sampled as negatives (the tag must not take them): ~4 MB of Scan
SEGMENTS = 16  # the Scan's segments: the sample starts in the one its seed names


class Unusable(Exception):
    """Objects whose stored embedding cannot be used (why, in words)."""


def stored(table: Table, model: str, content_ids: Iterable[str]) -> dict[str, NDArray[np.float32]]:
    """content id -> its stored unit embedding under ``model`` (contents without one left out)."""
    found = (content_from_item(item) for item in table.batch_get([content_key(c, model) for c in set(content_ids)]))
    return {c: record.embedding for c, record in filter(None, found) if record.embedding is not None}


def embeddings_of(table: Table, deployment: Deployment, refs: list[str]) -> dict[str, tuple[str, Any]]:
    """ref -> (content id, its stored unit embedding) for objects tagged by the deployed model."""
    metas = table.batch_get([{keys.PK: keys.object_pk(ref), keys.SK: keys.META} for ref in refs])
    content = {keys.ref_from_object_pk(m[keys.PK]): m for m in metas if m.get("status") == "tagged"}
    missing = [ref for ref in refs if ref not in content or content[ref].get("model") != deployment.model]
    if missing:
        raise Unusable(f"not tagged by the deployed model (upload or backfill them first): {', '.join(missing)}")
    ids = {ref: str(content[ref]["content_id"]) for ref in refs}
    found = stored(table, deployment.model, ids.values())
    lost = [ref for ref, c in ids.items() if c not in found]
    if lost:
        raise Unusable(f"no stored embedding for: {', '.join(lost)} (run `cliptag verify`)")
    return {ref: (ids[ref], found[ids[ref]]) for ref in refs}


def background(table: Table, model: str, exclude: set[str], seed: int, wanted: int = BACKGROUND) -> NDArray[np.float32]:
    """Up to ``wanted`` stored embeddings of library photos that are not examples: a Scan of the
    deployed model's content items, from segment ``seed`` on, until enough are found (the same
    sample for the same tag name, so teaching it again with the same examples changes nothing)."""
    vectors: list[NDArray[np.float32]] = []
    first = seed % SEGMENTS
    for segment in [(first + i) % SEGMENTS for i in range(SEGMENTS)]:
        start = None
        while len(vectors) < wanted:
            items, start, _ = table.scan_page(
                start,
                1000,
                Segment=segment,
                TotalSegments=SEGMENTS,
                FilterExpression="#sk = :sk",
                ExpressionAttributeNames={"#sk": keys.SK},
                ExpressionAttributeValues=typed({":sk": keys.content_sk(model)}),
            )
            for item in items:
                known = content_from_item(item)
                if known and known[0] not in exclude and known[1].embedding is not None:
                    vectors.append(known[1].embedding)
            if start is None:
                break
        if len(vectors) >= wanted:
            break
    return np.stack(vectors[:wanted]) if vectors else np.zeros((0, 0), np.float32)
