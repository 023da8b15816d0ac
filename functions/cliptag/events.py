"""S3 event notifications as they arrive in SQS message bodies.

Keys arrive URL-encoded (``+`` for spaces, ``%xx`` for non-ASCII); one message may hold several
records; ``s3:TestEvent`` is sent when notifications are configured; S3 -> SNS -> SQS wraps the
notification in an SNS envelope. Anything else is a MalformedEvent (acknowledged and logged:
retrying cannot fix it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import unquote_plus


class MalformedEvent(ValueError):
    """The message body is not an S3 event notification we understand."""


@dataclass(frozen=True)
class ObjectEvent:
    kind: Literal["created", "removed"]
    bucket: str
    key: str  # decoded: exactly the S3 object key
    size: int | None = None
    etag: str | None = None
    version_id: str | None = None
    sequencer: str | None = None  # orders events on one key; absent on some emulators
    event_time: str = ""

    @property
    def ref(self) -> str:
        return f"{self.bucket}/{self.key}"


def parse_body(body: str | dict[str, Any]) -> list[ObjectEvent]:
    """All object events of one SQS message body ([] for a test event)."""
    if isinstance(body, str):
        try:
            doc = json.loads(body)
        except json.JSONDecodeError as exc:
            raise MalformedEvent(f"message body is not JSON: {exc.msg}") from exc
    else:
        doc = body
    if not isinstance(doc, dict):
        raise MalformedEvent("message body is not a JSON object")
    if doc.get("Type") == "Notification" and isinstance(doc.get("Message"), str):  # via SNS
        return parse_body(doc["Message"])
    if doc.get("Event") == "s3:TestEvent":
        return []
    records = doc.get("Records")
    if not isinstance(records, list):
        raise MalformedEvent("no 'Records' list: not an S3 event notification")
    return [event for record in records if (event := parse_record(record)) is not None]


def parse_record(record: Any) -> ObjectEvent | None:
    """One S3 record -> ObjectEvent; None for event types we do not act on (restore, tagging...)."""
    if not isinstance(record, dict) or record.get("eventSource") != "aws:s3":
        raise MalformedEvent("record is not from aws:s3")
    name = str(record.get("eventName", ""))
    if name.startswith("ObjectCreated:"):
        kind: Literal["created", "removed"] = "created"
    elif name.startswith("ObjectRemoved:"):
        kind = "removed"
    else:
        return None
    try:
        s3 = record["s3"]
        bucket = str(s3["bucket"]["name"])
        obj = s3["object"]
        key = unquote_plus(str(obj["key"]))
    except (KeyError, TypeError) as exc:
        raise MalformedEvent(f"S3 record lacks {exc}") from exc
    if not bucket or not key:
        raise MalformedEvent("S3 record has an empty bucket or key")
    size = obj.get("size")
    return ObjectEvent(
        kind=kind,
        bucket=bucket,
        key=key,
        size=int(size) if isinstance(size, int | float | str) and str(size).isdigit() else None,
        etag=obj.get("eTag"),
        version_id=obj.get("versionId"),
        sequencer=obj.get("sequencer"),
        event_time=str(record.get("eventTime", "")),
    )


def normalise_sequencer(sequencer: str | None) -> str:
    """Sequencers of one key compare as hex numbers: left-pad so string order is numeric order."""
    return (sequencer or "").upper().rjust(32, "0")
