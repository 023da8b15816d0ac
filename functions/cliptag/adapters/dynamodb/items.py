"""Records <-> table items, field by field from the records' own definitions (``cliptag.records``).

The META item holds every field of ObjectRecord under its own name (tags as a list of
``{tag, score}``, categories as ``{category, score}``), plus the write bookkeeping (revision,
sequencer, updated_at); each tag is also one TAG item carrying its index keys. A near-duplicate
pair is one DUP item under each of the two objects.
A content's item holds its int8 embedding (one write unit), its image facts, or a claim while
it is being embedded.
"""

from __future__ import annotations

import time
from dataclasses import asdict, fields
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import Binary

from cliptag import codec, keys
from cliptag.ordering import Stored
from cliptag.records import CategoryScore, ContentRecord, Deployment, DuplicatePair, ObjectRecord, Place, TagScore

TOMBSTONE_TTL_SECONDS = 7 * 24 * 3600
RECORD_FIELDS = tuple(f.name for f in fields(ObjectRecord))
CLAIMED = "claimed"


def _decimal(score: float) -> Decimal:
    return Decimal(str(keys.round_score(score)))


# -- objects ----------------------------------------------------------------------------------
def object_key(ref: str, sk: str = keys.META) -> dict[str, str]:
    return {keys.PK: keys.object_pk(ref), keys.SK: sk}


def meta_item(record: ObjectRecord) -> dict[str, Any]:
    values: dict[str, Any] = {name: getattr(record, name) for name in RECORD_FIELDS}
    values["tags"] = [_tag_value(t) for t in record.tags]
    values["categories"] = [{"category": c.category, "score": _decimal(c.score)} for c in record.categories] or None
    values["place"] = _place_value(record.place) if record.place else None
    now = int(time.time())
    item = {**object_key(record.ref), **{k: (v if v != "" else None) for k, v in values.items()}, "updated_at": now}
    if record.status == "failed":  # listed in the sparse failure index until tagged again
        item[keys.FAILURE_INDEX_PK] = keys.failure_index_pk(record.bucket)
        item[keys.FAILURE_INDEX_SK] = keys.failure_index_sk(now, record.ref)
    return item


def _tag_value(t: TagScore) -> dict[str, Any]:
    value: dict[str, Any] = {"tag": t.tag, "score": _decimal(t.score)}
    return {**value, "source": t.source} if t.source != "model" else value


def _place_value(place: Place) -> dict[str, Any]:
    return {name: Decimal(str(v)) if isinstance(v, float) else v for name, v in asdict(place).items()}


def _place(value: dict[str, Any]) -> Place:
    numbers: dict[str, Any] = {
        f.name: float(value[f.name]) if f.type == "float" else value[f.name] for f in fields(Place)
    }
    return Place(**numbers)


TAG_SOURCES = ("person", "examples", "caption", "gps")  # "model" is stored as no source


def record_from_meta(item: dict[str, Any]) -> ObjectRecord | None:
    """The record a META item holds; None for a tombstone."""
    if item.get("status") == "deleted":
        return None
    values = {name: item[name] for name in RECORD_FIELDS if item.get(name) is not None}
    values["tags"] = tuple(
        TagScore(t["tag"], float(t["score"]), t["source"] if t.get("source") in TAG_SOURCES else "model")
        for t in item.get("tags", [])
    )
    values["categories"] = tuple(CategoryScore(c["category"], float(c["score"])) for c in item.get("categories") or [])
    if "place" in values:
        values["place"] = _place(values["place"])
    return ObjectRecord(**values)


def tag_items(record: ObjectRecord, shards: int, legacy_model: str) -> list[dict[str, Any]]:
    """One item per tag, in the index partitions of the record's model (keys.tag_space)."""
    shard, space = keys.shard_of(record.ref, shards), keys.tag_space(record.model, legacy_model)
    return [
        {
            **object_key(record.ref, keys.tag_sk(t.tag)),
            keys.TAG_INDEX_PK: keys.tag_index_pk(t.tag, shard, shards, space),
            keys.TAG_INDEX_SK: keys.tag_index_sk(t.score, record.ref, t.source == "person"),
            "score": _decimal(t.score),
        }
        for t in record.tags
    ]


def tombstone(bucket: str, key: str) -> dict[str, Any]:
    """What a deleted object leaves for a week: its sequencer and revision block older writes."""
    now = int(time.time())
    ref = keys.object_ref(bucket, key)
    return {
        **object_key(ref),
        "bucket": bucket,
        "key": key,
        "status": "deleted",
        "updated_at": now,
        "expires_at": now + TOMBSTONE_TTL_SECONDS,
    }


# META's S3 sequencer, normalised (cliptag.ordering); earlier releases wrote a left-padded one
# under the name "sequencer", still read until its object's next write replaces it.
SEQUENCER, LEGACY_SEQUENCER = "seq", "sequencer"


def stored_state(item: dict[str, Any] | None) -> Stored | None:
    """What a META item (record or tombstone) says about the object's place in S3's order."""
    if item is None:
        return None
    return Stored(
        deleted=item.get("status") == "deleted",
        revision=int(item.get("revision", 0)),
        sequencer=item.get(SEQUENCER) or None,
        legacy_sequencer=item.get(LEGACY_SEQUENCER) or None,
        content_id=item.get("content_id") or "",
    )


def same_meta(current: dict[str, Any], new: dict[str, Any]) -> bool:
    """True when writing ``new`` would change nothing a reader sees."""

    def scored(meta: dict[str, Any], name: str, label: str) -> list[tuple[str, float, str]]:
        # who gave a tag is part of it: a confirmation may change nothing else
        return [(t[label], keys.round_score(float(t["score"])), t.get("source", "model")) for t in meta.get(name) or []]

    def seen(meta: dict[str, Any]) -> tuple[Any, ...]:
        lists = {"tags": scored(meta, "tags", "tag"), "categories": scored(meta, "categories", "category")}
        return tuple(lists[name] if name in lists else meta.get(name) or None for name in RECORD_FIELDS)

    return seen(current) == seen(new)


def duplicate_items(pair: DuplicatePair) -> list[dict[str, Any]]:
    """The pair under both objects: each lists the other, with both contents as they were seen."""

    def one(ref: str, content: str, other: str, other_content: str) -> dict[str, Any]:
        return {
            **object_key(ref, keys.duplicate_sk(other)),
            "content_id": content,
            "other_ref": other,  # the sort key may only name it by digest (keys.duplicate_sk)
            "other_content_id": other_content,
            "similarity": _decimal(pair.similarity),
        }

    return [
        one(pair.ref, pair.content_id, pair.other_ref, pair.other_content_id),
        one(pair.other_ref, pair.other_content_id, pair.ref, pair.content_id),
    ]


def stale_duplicates(ref: str, content_id: str | None, duplicates: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The keys of an object's near-duplicate items that name content it no longer holds
    (``content_id`` None: it holds none: removed or failed), with their mirrors under the others."""
    stale = [item for item in duplicates if content_id is None or item.get("content_id") != content_id]
    return [
        key
        for item in stale
        for key in (object_key(ref, item[keys.SK]), object_key(item["other_ref"], keys.duplicate_sk(ref)))
    ]


def duplicate_from_item(item: dict[str, Any]) -> DuplicatePair:
    ref = keys.ref_from_object_pk(item[keys.PK]) or ""
    return DuplicatePair(
        ref=ref,
        content_id=item.get("content_id", ""),
        other_ref=item["other_ref"],
        other_content_id=item.get("other_content_id", ""),
        similarity=float(item["similarity"]),
    )


# -- contents ---------------------------------------------------------------------------------
def content_key(content_id: str, model_key: str) -> dict[str, str]:
    return {keys.PK: keys.content_pk(content_id), keys.SK: keys.content_sk(model_key)}


def content_item(content_id: str, model_key: str, content: ContentRecord) -> dict[str, Any]:
    values: dict[str, Any] = {
        **content_key(content_id, model_key),
        "status": content.status,
        "width": content.width,
        "height": content.height,
        "format": content.format or None,
        "error": content.error or None,
    }
    if content.embedding is not None:
        data, scale = codec.encode(content.embedding)
        values["embedding"], values["scale"] = Binary(data), Decimal(repr(scale))
    if content.caption:
        values.update(caption_values(content.caption, content.keywords))
    return values


def caption_values(caption: str, keywords: tuple[TagScore, ...]) -> dict[str, Any]:
    """A content's caption and its keywords, as its item holds them."""
    return {"caption": caption, "keywords": [{"tag": k.tag, "score": _decimal(k.score)} for k in keywords]}


def content_from_item(item: dict[str, Any]) -> tuple[str, ContentRecord] | None:
    """(content id, what is known); None while the content is only claimed (work in progress)."""
    if item.get("status") == CLAIMED:
        return None
    embedding = None
    if item.get("embedding") is not None:
        raw = getattr(item["embedding"], "value", item["embedding"])  # boto3 Binary or bytes
        embedding = codec.decode(bytes(raw), float(item["scale"]))
    record = ContentRecord(
        status=item.get("status", "embedded"),
        embedding=embedding,
        width=int(item.get("width", 0)),
        height=int(item.get("height", 0)),
        format=item.get("format", ""),
        error=item.get("error", ""),
        caption=item.get("caption", ""),
        keywords=tuple(TagScore(k["tag"], float(k["score"]), "caption") for k in item.get("keywords") or []),
    )
    return keys.content_id_from_pk(item[keys.PK]), record


def claim_item(content_id: str, model_key: str, owner: str, lease_until: int) -> dict[str, Any]:
    return {**content_key(content_id, model_key), "status": CLAIMED, "owner": owner, "lease_until": lease_until}


# -- the deployment --------------------------------------------------------------------------------
def deployment_item(deployment: Deployment) -> dict[str, Any]:
    values = {**asdict(deployment), "min_score": Decimal(repr(deployment.min_score))}
    return {**keys.DEPLOYMENT, **values, "updated_at": int(time.time())}


def deployment_from_item(item: dict[str, Any]) -> Deployment:
    return Deployment(
        model=item["model"],
        vocabulary_version=item["vocabulary_version"],
        scoring=item["scoring"],
        top_k=int(item["top_k"]),
        min_score=float(item["min_score"]),
        vector_index=item.get("vector_index") or "",
        # Written by a release before tag spaces: the model it ran tagged every record there is.
        legacy_model=item.get("legacy_model") or item["model"],
    )
