"""S3 events as they arrive in SQS message bodies, read with Powertools' data classes.

Two routes deliver them: S3 event notifications (the stack's own bucket) and Amazon EventBridge
(a bucket the user already has, whose notification configuration the stack leaves alone). Keys
arrive URL-encoded on both (``+`` for spaces, ``%xx`` for non-ASCII; Powertools' ``S3Object.key``
leaves them so, its EventBridge ``key`` decodes them); one notification may hold several records;
S3 sends ``s3:TestEvent`` when notifications are configured (no data class covers it); S3 -> SNS
-> SQS wraps the notification in an SNS envelope. Anything else is a MalformedEvent. Sequencers,
which both routes carry, are normalised here, once.

Every way an object leaves the bucket is a removal: deletes, delete markers and S3 Lifecycle
expirations (``ObjectRemoved:*``, ``LifecycleExpiration:*``; EventBridge "Object Deleted" with
either reason). When a removal cannot say the key is now empty (one version was permanently
deleted, so an older one may show again; a lifecycle expiration; no sequencer), it becomes a
*recheck*: the tagger reads the key and records what it holds, or its removal.

Our own messages travel the same queue: a re-tag request (``retag_body``: objects to re-score
from their stored embeddings), a decision's late round (``decided_body``: re-tag whatever holds
some contents when it arrives), a recheck request (``recheck_body``: backfill and verify, with what
their sender saw of the object) and a ping (``PING_BODY``: wakes a tagger, which records what it
runs). Caption requests (``caption_body``) travel the caption queue. This module is the one place
that knows their format.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, fields
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.data_classes import S3Event, S3EventBridgeNotificationEvent, SQSRecord
from aws_lambda_powertools.utilities.data_classes.s3_event import S3EventRecord

from cliptag.batch import Message
from cliptag.errors import MalformedEvent
from cliptag.ordering import Seen, normalise_sequencer
from cliptag.records import EventKind, ObjectEvent


def message(record: SQSRecord) -> Message:
    """One SQS record -> its object events (or the contents of a decision's late round), or the
    reason it cannot be understood."""
    try:
        contents = decided_contents(record.body)
        if contents is not None:
            return Message(record.message_id, [], contents=contents)
        return Message(record.message_id, parse_body(record.body))
    except MalformedEvent as exc:
        return Message(record.message_id, [], malformed=str(exc))


def decided_body(content_ids: list[str]) -> str:
    """A decision's late round (sent delayed): re-tag every object that holds these contents when
    it arrives, found then, so that a copy recorded by a batch already in flight follows too."""
    return json.dumps({"cliptag": DECIDED, "contents": content_ids})


def decided_contents(body: str) -> list[str] | None:
    """The contents of a late-round message; None for any other message."""
    try:
        doc = json.loads(body)
    except json.JSONDecodeError:
        return None
    if not isinstance(doc, dict) or doc.get("cliptag") != DECIDED:
        return None
    contents = doc.get("contents")
    if not isinstance(contents, list) or not all(isinstance(c, str) and _SHA256.fullmatch(c) for c in contents):
        raise MalformedEvent("decided request: contents must be a list of SHA-256 hex digests")
    if not 0 < len(contents) <= DECIDED_MAX_CONTENTS:
        raise MalformedEvent(f"decided request: 1..{DECIDED_MAX_CONTENTS} contents, not {len(contents)}")
    return contents


PING_BODY = json.dumps({"cliptag": "ping"})
DECIDED = "decided"
DECIDED_MAX_CONTENTS = 10  # the API sends one; each may reach 1,000 objects
_SHA256 = re.compile(r"[0-9a-f]{64}")
# Per message. A message's objects are committed one after another while the batch's messages
# commit concurrently, so ten per message keeps a batch of ten messages (100 objects) in flight at once.
RETAG_MAX_OBJECTS = 10


def caption_body(content_id: str, bucket: str, key: str) -> str:
    """A request to caption one content, read from (bucket, key): the tagger's for a new content,
    ``cliptag captions`` for one embedded before Captions was switched on."""
    return json.dumps({"cliptag": "caption", "content_id": content_id, "bucket": bucket, "key": key})


def caption_request(body: str) -> tuple[str, str, str]:
    """(content id, bucket, key) of a caption request; MalformedEvent for anything else."""
    try:
        doc = json.loads(body)
        found = (doc["content_id"], doc["bucket"], doc["key"])
    except (ValueError, KeyError, TypeError) as exc:
        raise MalformedEvent(f"caption request: {exc}") from exc
    if not isinstance(found[0], str) or not _SHA256.fullmatch(found[0]):
        raise MalformedEvent("caption request: content_id must be a SHA-256 hex digest")
    if not all(isinstance(v, str) and v for v in found[1:]):
        raise MalformedEvent("caption request: bucket and key must be non-empty strings")
    return found


def recheck_body(bucket: str, key: str, seen: Seen | None = None) -> str:
    """A request to record what the key holds now (a backfill of an object that was there before
    the stack, or a repair): with ``seen``, only the bytes the listing showed (cliptag.ordering)."""
    listed = {"seen": asdict(seen)} if seen else {}
    return json.dumps({"cliptag": "recheck", "objects": [{"bucket": bucket, "key": key, **listed}]})


def retag_body(refs: list[tuple[str, str]]) -> str:
    """A message asking the tagger to re-tag these (bucket, key) objects from stored embeddings."""
    if not 0 < len(refs) <= RETAG_MAX_OBJECTS:
        raise ValueError(f"a re-tag message holds 1..{RETAG_MAX_OBJECTS} objects, not {len(refs)}")
    return json.dumps({"cliptag": "retag", "objects": [{"bucket": b, "key": k} for b, k in refs]})


def parse_body(body: str) -> list[ObjectEvent]:
    """All object events of one SQS message body ([] for a test event or a ping)."""
    doc = _json_object(body, "message body")
    if "cliptag" in doc:
        return _own_message(doc)
    if doc.get("Type") == "Notification" and isinstance(doc.get("Message"), str):  # via SNS
        doc = _json_object(doc["Message"], "SNS message")
    if doc.get("Event") == "s3:TestEvent":
        return []
    if doc.get("source") == "aws.s3" and "detail-type" in doc:
        event = _eventbridge_event(S3EventBridgeNotificationEvent(doc))
        return [event] if event else []
    if not isinstance(doc.get("Records"), list):
        raise MalformedEvent("no 'Records' list: not an S3 event notification")
    return [event for record in S3Event(doc).records if (event := _object_event(record)) is not None]


# Amazon S3 User Guide, "Using EventBridge": "When an unversioned object is deleted, or a
# versioned object is permanently deleted, the deletion-type field is set to Permanently Deleted.
# When a delete marker is created for a versioned object, the deletion-type field is set to
# Delete Marker Created." The reason is DeleteObject or Lifecycle Expiration: both remove.
DELETE_MARKER_CREATED = "Delete Marker Created"


def _eventbridge_event(event: S3EventBridgeNotificationEvent) -> ObjectEvent | None:
    """One EventBridge S3 event -> ObjectEvent; None for types we do not act on (restore, tags...)."""
    if event.detail_type not in ("Object Created", "Object Deleted"):
        return None
    try:
        bucket, obj = event.detail.bucket.name, event.detail.object
        key, size, sequencer = obj.key, obj.get("size"), obj.get("sequencer")
        version = obj.get("version-id")
        deletion = event.detail.get("deletion-type")
    except (KeyError, TypeError, AttributeError) as exc:
        raise MalformedEvent(f"EventBridge S3 event lacks {exc}") from exc
    kind: EventKind = "created"
    if event.detail_type == "Object Deleted":
        lifecycle = event.detail.get("reason") == "Lifecycle Expiration"
        kind = _removal(deletion == DELETE_MARKER_CREATED, version, sequencer, lifecycle)
    return _checked(kind, bucket, key, size, sequencer)


def _removal(marker: bool, version_id: Any, sequencer: Any, lifecycle: bool) -> EventKind:
    """A removal the key can be trusted to be empty after ("removed"): a DELETE request's delete
    marker, or its delete of an unversioned object, ordered by its sequencer. Otherwise
    ("recheck") the tagger reads the key and records what it holds: a version was permanently
    deleted (Amazon S3 User Guide, "Restoring previous versions": "When you delete the current
    object version, you, in effect, turn the previous version into the current version", with
    no created event); a lifecycle expiration (the guide's sequencer is "only used with PUT and
    DELETE requests"); or any removal without a sequencer to order it by."""
    if lifecycle or not sequencer:
        return "recheck"
    return "removed" if marker or not version_id else "recheck"


SEEN_FIELDS = {f.name for f in fields(Seen)}


def _own_message(doc: dict[str, Any]) -> list[ObjectEvent]:
    if doc["cliptag"] == "ping":
        return []
    objects = doc.get("objects")
    if doc["cliptag"] not in ("retag", "recheck") or not isinstance(objects, list):
        raise MalformedEvent(f"unknown cliptag message {doc['cliptag']!r}")
    try:
        if doc["cliptag"] == "retag":
            return [_checked("retag", o["bucket"], o["key"], None, None) for o in objects]
        seen = [_seen(o["seen"]) if o.get("seen") else None for o in objects]
        return [
            _checked("recheck", o["bucket"], o["key"], s.size if s else None, None, seen=s)
            for o, s in zip(objects, seen, strict=True)
        ]
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise MalformedEvent(f"{doc['cliptag']} request lacks {exc}") from exc


def _seen(doc: dict[str, Any]) -> Seen:
    values = {name: value for name, value in doc.items() if name in SEEN_FIELDS}
    return Seen(
        etag=str(values.get("etag", "")),
        size=int(values.get("size", 0)),
        last_modified=float(values.get("last_modified", 0.0)),
        version_id=str(values.get("version_id", "")),
    )


def _json_object(text: str, what: str) -> dict[str, Any]:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise MalformedEvent(f"{what} is not JSON: {exc.msg}") from exc
    if not isinstance(doc, dict):
        raise MalformedEvent(f"{what} is not a JSON object")
    return doc


def _object_event(record: S3EventRecord) -> ObjectEvent | None:
    """One S3 record -> ObjectEvent; None for event types we do not act on (restore, tagging...)."""
    try:
        if record.event_source != "aws:s3":
            raise MalformedEvent("record is not from aws:s3")
        name = record.event_name
        bucket, obj = record.s3.bucket.name, record.s3.get_object
        key = unquote_plus(obj.key)
        size = obj.get("size")  # absent on deletes
        sequencer = obj.get("sequencer")
        version = obj.get("versionId")  # versioned buckets only
    except (KeyError, TypeError, AttributeError) as exc:
        raise MalformedEvent(f"S3 record lacks {exc}") from exc
    kind: EventKind
    if name.startswith("ObjectCreated:"):
        kind = "created"
    elif name.startswith(REMOVAL_PREFIXES):
        lifecycle = name.startswith("LifecycleExpiration:")
        kind = _removal(name.endswith(":DeleteMarkerCreated"), version, sequencer, lifecycle)
    else:
        return None
    return _checked(kind, bucket, key, size, sequencer)


# Amazon S3 User Guide, "Event notification types": s3:ObjectRemoved:Delete and
# :DeleteMarkerCreated; "Configuring S3 Lifecycle event notifications": s3:LifecycleExpiration:Delete
# ("an object in an unversioned bucket is deleted ... an object version is permanently deleted")
# and :DeleteMarkerCreated. eventName drops the "s3:" prefix.
REMOVAL_PREFIXES = ("ObjectRemoved:", "LifecycleExpiration:")


def _checked(
    kind: EventKind, bucket: Any, key: Any, size: Any, sequencer: Any, seen: Seen | None = None
) -> ObjectEvent:
    if not bucket or not key:
        raise MalformedEvent("S3 event has an empty bucket or key")
    return ObjectEvent(
        kind=kind,
        bucket=str(bucket),
        key=str(key),
        size=int(size) if isinstance(size, int | float | str) and str(size).isdigit() else None,
        sequencer=normalise_sequencer(str(sequencer)) if sequencer else None,
        sent_sequencer=str(sequencer).strip().upper() if sequencer else None,
        seen=seen,
    )
