"""Every file in events/ runs through the handler of the function it names (what
`sam local invoke TaggerFunction -e events/tagger-....json` does), not only through the parser."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from cliptag import wiring
from cliptag.adapters.notifications import parse_body

from devstack.stack import FakeContext
from tests.conftest import real_photos

EVENTS = Path(__file__).resolve().parents[2] / "events"
SAMPLE_BUCKET = "cliptag-00000000-0000-0000-0000-000000000000"
# The order a bucket would see them in: created, more created, a test event, then the removals.
TAGGER_EVENTS = [
    "tagger-s3-put.json",
    "tagger-s3-batch.json",
    "tagger-eventbridge-put.json",  # a bucket the stack did not create (ExistingBucketName)
    "tagger-s3-test-event.json",
    "tagger-s3-delete.json",
    "tagger-s3-lifecycle-expiration.json",  # a Lifecycle rule expired one (S3 notification)
    "tagger-eventbridge-delete.json",  # a delete marker on the user's versioned bucket (EventBridge)
]


def localised(name: str, bucket: str) -> dict[str, Any]:
    """The sample event, aimed at ``bucket`` instead of the placeholder bucket name."""
    doc: dict[str, Any] = json.loads((EVENTS / name).read_text("utf-8").replace(SAMPLE_BUCKET, bucket))
    return doc


def test_the_tagger_events_cover_every_file(stack):
    assert sorted(TAGGER_EVENTS) == sorted(p.name for p in EVENTS.glob("tagger-*.json"))
    assert all(p.name.startswith(("tagger-", "api-")) for p in EVENTS.glob("*.json")), "each names its function"


def test_every_tagger_event_runs_through_the_handler(stack, s3):
    from handlers import tagger

    # A bucket of its own with no notifications, so only these events reach the tagger.
    bucket = f"sample-events-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    photos = iter(real_photos(6))
    expected: dict[str, str] = {}  # key -> "tagged" | "deleted"
    for name in TAGGER_EVENTS:
        event = localised(name, bucket)
        for record in event["Records"]:
            for ev in parse_body(record["body"]):
                if ev.kind == "created":
                    s3.put_object(Bucket=bucket, Key=ev.key, Body=next(photos).read_bytes())
                else:  # the bucket as it is after a removal (a recheck reads it)
                    s3.delete_object(Bucket=bucket, Key=ev.key)
                expected[ev.key] = "tagged" if ev.kind == "created" else "deleted"
        result = tagger.handler(event, FakeContext("cliptag-tagger"))
        assert result == {"batchItemFailures": []}, (name, result)
    assert len(expected) == 4 and list(expected.values()).count("deleted") == 3
    for key, state in expected.items():
        record = wiring.objects().get(bucket, key)
        if state == "deleted":
            assert record is None, key
        else:
            assert record is not None and record.status == "tagged" and record.tags, key
