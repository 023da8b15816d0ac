"""S3 event notifications as they arrive in SQS message bodies, read with Powertools' data classes.

Keys arrive URL-encoded (``+`` for spaces, ``%xx`` for non-ASCII; Powertools' ``S3Object.key``
leaves them so); one message may hold several records; S3 sends ``s3:TestEvent`` when
notifications are configured (no data class covers it); S3 -> SNS -> SQS wraps the notification
in an SNS envelope. Anything else is a MalformedEvent. Sequencers are normalised here, once.
"""

from __future__ import annotations

import json
from typing import Any, Literal
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.data_classes import S3Event, SQSRecord
from aws_lambda_powertools.utilities.data_classes.s3_event import S3EventRecord

from cliptag.errors import MalformedEvent
from cliptag.pipeline import Message
from cliptag.records import ObjectEvent


def message(record: SQSRecord) -> Message:
    """One SQS record -> its object events, or the reason it cannot be understood."""
    try:
        return Message(record.message_id, parse_body(record.body))
    except MalformedEvent as exc:
        return Message(record.message_id, [], malformed=str(exc))


def parse_body(body: str) -> list[ObjectEvent]:
    """All object events of one SQS message body ([] for a test event)."""
    doc = _json_object(body, "message body")
    if doc.get("Type") == "Notification" and isinstance(doc.get("Message"), str):  # via SNS
        doc = _json_object(doc["Message"], "SNS message")
    if doc.get("Event") == "s3:TestEvent":
        return []
    if not isinstance(doc.get("Records"), list):
        raise MalformedEvent("no 'Records' list: not an S3 event notification")
    return [event for record in S3Event(doc).records if (event := _object_event(record)) is not None]


def normalise_sequencer(sequencer: str | None) -> str | None:
    """Sequencers of one key compare as hex numbers: left-pad so string order is numeric order."""
    return sequencer.upper().rjust(32, "0") if sequencer else None


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
    if not bucket or not key:
        raise MalformedEvent("S3 record has an empty bucket or key")
    return ObjectEvent(
        kind=kind,
        bucket=str(bucket),
        key=key,
        size=int(size) if isinstance(size, int | float | str) and str(size).isdigit() else None,
        sequencer=normalise_sequencer(str(sequencer)) if sequencer else None,
    )
