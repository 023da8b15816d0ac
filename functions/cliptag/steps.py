"""The per-object steps of tagging a batch; each needs only what it is given."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import numpy as np

from cliptag import keys
from cliptag.batch import Item, Message
from cliptag.content import content_id
from cliptag.decisions import HOLDERS_MAX, decided_tags
from cliptag.errors import ObjectChanged, ObjectGone, PermanentError, TransientError
from cliptag.imaging import Limits, Preprocessing, load_pixels
from cliptag.places import PlaceTagger
from cliptag.ports import ContentCache, DecisionStore, ObjectReader, ObjectStore
from cliptag.records import ContentRecord, ObjectEvent, ObjectRecord
from cliptag.scoring import TagScorer, categorise
from cliptag.taught import TaughtSet


def read_revisions(objects: ObjectStore, items: list[Item]) -> None:
    """For each message without a sequencer, the revision of the object's record before its S3
    read: its write applies only if the record is still at that revision (cliptag.ordering)."""
    unordered = [item for item in items if item.event.sequencer is None and not item.transient]
    if not unordered:
        return
    try:
        states = objects.states([item.event.ref for item in unordered])
    except TransientError as exc:
        for item in unordered:
            item.retry(str(exc))
        return
    for item in unordered:
        found = states.get(item.event.ref)
        item.revision = found[0].revision if found else 0


def resolve_retags(objects: ObjectStore, contents: ContentCache, items: list[Item], places: bool = False) -> None:
    """Start each re-tag from the object's record and its content's stored embedding: no S3 read,
    no inference. Failed or unknown objects have nothing to re-tag; a content the deployed model
    never embedded (the model itself changed) is read and embedded again like a new upload, and
    so, with ``places``, is an object never located (tagged before PlaceTags was on): read for its
    GPS position, its embedding reused from the cache."""
    if not items:
        return
    try:
        records = objects.get_many([item.event.ref for item in items])
        cached = contents.get_many([r.content_id for r in records.values() if r.status == "tagged"])
    except TransientError as exc:
        for item in items:
            item.retry(str(exc))
        return
    for item in items:
        record = records.get(item.event.ref)
        if record is None or record.status != "tagged":
            item.skip()
            continue
        item.content_id, item.size, item.etag = record.content_id, record.size, record.etag
        item.last_modified = record.last_modified
        item.place, item.place_missing = record.place, record.place_missing  # no S3 read: kept as found
        content = cached.get(record.content_id)
        unlocated = places and record.place is None and record.place_missing is None
        if content is not None and content.embedding is not None and not unlocated:
            item.cached = item.result = content
        else:
            item.event, item.content_id = replace(item.event, kind="created"), ""


def read(reader: ObjectReader, limits: Limits, item: Item) -> None:
    """The object's bytes; for a message that saw a listing, only those very bytes (If-Match)."""
    event = item.event
    try:
        got = reader.read(event.bucket, event.key, limits.max_bytes, if_match=event.seen.etag if event.seen else "")
    except ObjectGone:
        if event.kind == "recheck":
            item.found_gone = True  # a removal to record
        else:
            item.skip()  # its delete event follows
        return
    except ObjectChanged:
        item.gone, item.outcome = True, "changed"  # overwritten since it was listed: its own event decides
        return
    except TransientError as exc:
        item.retry(str(exc))
        return
    except PermanentError as exc:
        item.result, item.size = ContentRecord(status="failed", error=str(exc)), event.size or 0
        return
    item.size, item.etag, item.last_modified = len(got.data), got.etag, int(got.last_modified)
    item.content_id, item.data = content_id(got.data), got.data


def locate(places: PlaceTagger, item: Item) -> None:
    """The photo's place from the GPS position in its bytes, or why it has none: never a failure."""
    if not item.data:
        return
    try:
        found = places.locate(item.data)
    except Exception as exc:  # the gazetteer unreadable: the photo is still tagged
        found = f"place lookup failed: {type(exc).__name__}: {exc}"
    item.place, item.place_missing = (None, found) if isinstance(found, str) else (found, None)


def decode(preprocessing: Preprocessing, limits: Limits, fast: bool, item: Item) -> None:
    data, item.data = item.data, b""
    try:
        decoded, pixels = load_pixels(data, preprocessing, limits, fast=fast)
    except PermanentError as exc:
        item.result = ContentRecord(status="failed", error=str(exc))
        return
    item.pixels = pixels
    item.result = ContentRecord(status="pending", width=decoded.width, height=decoded.height, format=decoded.format)


def resolve_decided(
    decisions: DecisionStore | None, messages: list[Message]
) -> dict[str, list[ObjectEvent] | TransientError]:
    """A decision's late round: message id -> a re-tag event for every object holding its
    contents now (the content index), or the error that must have it retried."""
    found: dict[str, list[ObjectEvent] | TransientError] = {}
    seen: set[str] = set()  # two late rounds for one photo in a batch re-tag each object once
    for m in messages:
        try:
            refs = [r for c in m.contents for r in (decisions.holders(c, HOLDERS_MAX) if decisions else [])]
        except TransientError as exc:
            found[m.id] = exc
            continue
        fresh = [ref for ref in dict.fromkeys(refs) if ref not in seen]
        seen.update(fresh)
        found[m.id] = [ObjectEvent("retag", *keys.split_ref(ref)) for ref in fresh]
    return found


def read_decisions(decisions: DecisionStore | None, items: list[Item]) -> None:
    """People's decisions on the batch's contents, in one read (most contents have none)."""
    decided = [item for item in items if item.content_id and not item.transient]
    if decisions is None or not decided:
        return
    try:
        found = decisions.of_many([item.content_id for item in decided])
    except TransientError as exc:
        for item in decided:
            item.retry(str(exc))
        return
    for item in decided:
        item.decisions = found.get(item.content_id, {})


def score(scorer: TagScorer, taught: TaughtSet, items: list[Item], places: PlaceTagger | None = None) -> None:
    """Tags for every embedded item of the batch, new, cached or re-tagged: one matrix product;
    an item whose content has people's decisions is scored under them. Taught tags that pass
    come before the model's (they are outside its TopK); then the caption's keywords not given
    already, then place tags; none a person rejected."""
    embedded = [(i, i.result.embedding) for i in items if i.result and i.result.embedding is not None]
    if embedded:
        vectors = np.stack([vector for _, vector in embedded])
        scored, own = scorer.tags(vectors), taught.scores(vectors)
        for (item, vector), tags, row in zip(embedded, scored, own, strict=True):
            if item.decisions:
                item.tags = decided_tags(scorer, vector, item.decisions, taught)
            else:
                item.tags = (*taught.tags_of(row), *tags)
            rejected = frozenset(t for t, d in item.decisions.items() if d.verdict == "rejected")
            given = {t.tag for t in item.tags} | rejected
            keywords = item.result.keywords if item.result is not None else ()
            item.tags += tuple(k for k in keywords if k.tag not in given)
            if places is not None:  # a place a keyword named already is listed once
                item.tags += places.tags(item.place, rejected | {t.tag for t in item.tags})


def object_record(
    item: Item, model_key: str, vocabulary_version: str, scoring: str, categories: Mapping[str, str]
) -> ObjectRecord:
    """What the object's record says after this event: its tags and their categories, or why it failed."""
    result = item.result
    if result is None:  # defensive: plan() always sets a result for readable objects
        raise TransientError(f"{item.event.ref}: no result computed")
    embedded = result.status == "embedded" and result.embedding is not None
    return ObjectRecord(
        bucket=item.event.bucket,
        key=item.event.key,
        status="tagged" if embedded else "failed",
        content_id=item.content_id,
        tags=item.tags if embedded else (),
        categories=categorise(item.tags, categories) if embedded else (),
        model=model_key,
        vocabulary_version=vocabulary_version,
        scoring=scoring,
        width=result.width,
        height=result.height,
        format=result.format,
        size=item.size,
        etag=item.etag,
        last_modified=item.last_modified,
        error=None if embedded else (result.error or "no embedding"),
        caption=result.caption or None if embedded else None,
        place=item.place if embedded else None,
        place_missing=item.place_missing if embedded else None,
    )
