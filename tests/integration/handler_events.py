"""S3 events written by hand and delivered to the tagger's handler, as the event source mapping
would deliver them; and what the object then holds in the table and the search index."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote_plus

from cliptag import keys, wiring
from cliptag.ordering import Seen

from devstack.stack import FakeContext


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def s3_event(bucket: str, key: str, name: str, sequencer: str | None, version_id: str | None = None) -> str:
    obj: dict[str, Any] = {"key": quote_plus(key)}
    if sequencer is not None:
        obj["sequencer"] = sequencer
    if version_id is not None:
        obj["versionId"] = version_id
    record = {"eventVersion": "2.1", "eventSource": "aws:s3", "eventTime": now_iso(), "eventName": name}
    return json.dumps({"Records": [{**record, "s3": {"bucket": {"name": bucket}, "object": obj}}]})


def deliver(*bodies: str) -> None:
    """One invocation of the tagger's handler with these SQS message bodies."""
    from handlers import tagger

    envelope = {"receiptHandle": "r", "attributes": {}, "messageAttributes": {}, "eventSource": "aws:sqs"}
    records = [{**envelope, "messageId": str(uuid.uuid4()), "body": body} for body in bodies]
    assert tagger.handler({"Records": records}, FakeContext("cliptag-tagger")) == {"batchItemFailures": []}


def state(bucket: str, key: str) -> tuple[Any, bool]:
    """(the object's record or None, whether the search index holds a vector for it)."""
    index = wiring.vector_index()
    assert index is not None
    return wiring.objects().get(bucket, key), index.get(keys.object_ref(bucket, key)) is not None


def listed(s3: Any, bucket: str, key: str) -> Seen:
    (obj,) = s3.list_objects_v2(Bucket=bucket, Prefix=key)["Contents"]
    return Seen(obj["ETag"].strip('"'), obj["Size"], obj["LastModified"].timestamp())
