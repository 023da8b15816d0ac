"""S3 events as they arrive in SQS message bodies, read with Powertools' data classes.

Two routes deliver them: S3 event notifications (the stack's own bucket) and Amazon EventBridge
(a bucket the user already has, whose notification configuration the stack leaves alone). Keys
arrive URL-encoded on both (``+`` for spaces, ``%xx`` for non-ASCII; Powertools' ``S3Object.key``
leaves them so, its EventBridge ``key`` decodes them); one notification may hold several records;
S3 sends ``s3:TestEvent`` when notifications are configured (no data class covers it); S3 -> SNS
-> SQS wraps the notification in an SNS envelope. Anything else is a MalformedEvent. Sequencers,
which both routes carry, are normalised here, once.

Our own messages travel the same queue: a re-tag request (``retag_body``: objects to re-score
from their stored embeddings) and a ping (``PING_BODY``: wakes a tagger, which records what it
runs). This module is the one place that knows their format.
"""

from __future__ import annotations

import json
from typing import Any, Literal
from urllib.parse import quote_plus, unquote_plus

from aws_lambda_powertools.utilities.data_classes import S3Event, S3EventBridgeNotificationEvent, SQSRecord
from aws_lambda_powertools.utilities.data_classes.s3_event import S3EventRecord

from cliptag.batch import Message
from cliptag.errors import MalformedEvent
from cliptag.records import EventKind, ObjectEvent


def message(record: SQSRecord) -> Message:
    """One SQS record -> its object events, or the reason it cannot be understood."""
    try:
        return Message(record.message_id, parse_body(record.body))
    except MalformedEvent as exc:
        return Message(record.message_id, [], malformed=str(exc))


PING_BODY = json.dumps({"cliptag": "ping"})
# Per message. A message's objects are committed one after another while the batch's messages
# commit concurrently, so ten per message keeps a batch of ten messages (100 objects) in flight at once.
RETAG_MAX_OBJECTS = 10


def created_body(bucket: str, key: str, size: int, etag: str) -> str:
    """An S3 "object created" notification for an object that was there before the stack (a
    backfill): the tagger handles it like an upload's."""
    obj = {"key": quote_plus(key, safe="/"), "size": size, "eTag": etag}
    record = {
        "eventSource": "aws:s3",
        "eventName": "ObjectCreated:Backfill",
        "s3": {"bucket": {"name": bucket}, "object": obj},
    }
    return json.dumps({"Records": [record]})


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


EVENTBRIDGE_KINDS: dict[str, Literal["created", "removed"]] = {"Object Created": "created", "Object Deleted": "removed"}


def _eventbridge_event(event: S3EventBridgeNotificationEvent) -> ObjectEvent | None:
    """One EventBridge S3 event -> ObjectEvent; None for types we do not act on (restore, tags...)."""
    kind = EVENTBRIDGE_KINDS.get(event.detail_type)
    if kind is None:
        return None
    try:
        bucket, obj = event.detail.bucket.name, event.detail.object
        key, size, sequencer = obj.key, obj.size, obj.get("sequencer")
    except (KeyError, TypeError, AttributeError) as exc:
        raise MalformedEvent(f"EventBridge S3 event lacks {exc}") from exc
    return _checked(kind, bucket, key, size, sequencer)


def normalise_sequencer(sequencer: str | None) -> str | None:
    """Sequencers of one key compare as hex numbers: left-pad so string order is numeric order."""
    return sequencer.upper().rjust(32, "0") if sequencer else None


def _own_message(doc: dict[str, Any]) -> list[ObjectEvent]:
    if doc["cliptag"] == "ping":
        return []
    objects = doc.get("objects")
    if doc["cliptag"] != "retag" or not isinstance(objects, list):
        raise MalformedEvent(f"unknown cliptag message {doc['cliptag']!r}")
    try:
        return [_checked("retag", o["bucket"], o["key"], None, None) for o in objects]
    except (KeyError, TypeError) as exc:
        raise MalformedEvent(f"re-tag request lacks {exc}") from exc


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
        kind: Literal["created", "removed"]
        if name.startswith("ObjectCreated:"):
            kind = "created"
        elif name.startswith("ObjectRemoved:"):
            kind = "removed"
        else:
            return None
        bucket, obj = record.s3.bucket.name, record.s3.get_object
        key = unquote_plus(obj.key)
        size = obj.get("size")  # absent on deletes
        sequencer = obj.get("sequencer")  # absent on some emulators
    except (KeyError, TypeError, AttributeError) as exc:
        raise MalformedEvent(f"S3 record lacks {exc}") from exc
    return _checked(kind, bucket, key, size, sequencer)


def _checked(kind: EventKind, bucket: Any, key: Any, size: Any, sequencer: Any) -> ObjectEvent:
    if not bucket or not key:
        raise MalformedEvent("S3 event has an empty bucket or key")
    return ObjectEvent(
        kind=kind,
        bucket=str(bucket),
        key=str(key),
        size=int(size) if isinstance(size, int | float | str) and str(size).isdigit() else None,
        sequencer=normalise_sequencer(str(sequencer)) if sequencer else None,
    )
