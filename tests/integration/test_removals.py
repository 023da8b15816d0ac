"""Every way an object leaves the bucket removes its tags and its vector, and a removed version
that uncovers an older one brings that one's tags back.

Lifecycle expirations and EventBridge's deletions go through the tagger's handler as AWS's pages
print them (the local S3 runs no lifecycle rules); a versioned bucket's deletes go through the
local stack end to end: S3 (devstack/s3_events.py sends the events AWS documents for delete
markers and deleted versions), the queue, the tagger.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from cliptag import wiring

from tests.integration.handler_events import deliver, s3_event, state
from tests.unit.test_removal_events import EVENTBRIDGE_DELETE_OBJECT, EVENTBRIDGE_LIFECYCLE


def tagged(bucket: str, s3: Any, key: str, data: bytes, sequencer: str) -> None:
    s3.put_object(Bucket=bucket, Key=key, Body=data)
    deliver(s3_event(bucket, key, "ObjectCreated:Put", sequencer))
    record, vector = state(bucket, key)
    assert record is not None and record.status == "tagged" and vector


@pytest.mark.parametrize("name", ["LifecycleExpiration:Delete", "LifecycleExpiration:DeleteMarkerCreated"])
def test_a_lifecycle_expiration_removes_tags_and_vector(bucket, s3, photos, name):
    key = f"expiring/{name}.jpg"
    tagged(bucket, s3, key, photos[0], "0062F3A1B2C3D4E5F1")
    s3.delete_object(Bucket=bucket, Key=key)  # what the rule did
    deliver(s3_event(bucket, key, name, "0062F3A1B2C3D4E5F2"))
    assert state(bucket, key) == (None, False)


def eventbridge(doc: dict[str, Any], bucket: str, key: str, sequencer: str, **detail: Any) -> str:
    """The page's example, about ``bucket``/``key`` (keys arrive URL-encoded)."""
    obj = {**doc["detail"]["object"], "key": key, "sequencer": sequencer}
    return json.dumps({**doc, "detail": {**doc["detail"], "bucket": {"name": bucket}, "object": obj, **detail}})


@pytest.mark.parametrize(
    ("example", "deletion_type"),
    [
        (EVENTBRIDGE_DELETE_OBJECT, "Delete Marker Created"),
        (EVENTBRIDGE_LIFECYCLE, "Delete Marker Created"),
        (EVENTBRIDGE_DELETE_OBJECT, "Permanently Deleted"),
        (EVENTBRIDGE_LIFECYCLE, "Permanently Deleted"),
    ],
)
def test_eventbridge_object_deleted_of_every_kind_removes_tags_and_vector(bucket, s3, photos, example, deletion_type):
    key = f"gone/{uuid.uuid4().hex[:6]}.jpg"
    tagged(bucket, s3, key, photos[1], "617f08299329d189")
    s3.delete_object(Bucket=bucket, Key=key)
    deliver(eventbridge(example, bucket, key, "617f0837b476e463", **{"deletion-type": deletion_type}))
    assert state(bucket, key) == (None, False)


def test_a_permanently_deleted_noncurrent_version_leaves_the_object_tagged(bucket, s3, photos):
    # A lifecycle rule expired an old version; the current one is still there.
    key = "kept.jpg"
    tagged(bucket, s3, key, photos[2], "617f08299329d189")
    before = state(bucket, key)
    body = eventbridge(
        EVENTBRIDGE_LIFECYCLE, bucket, key, "617f0837b476e463", **{"deletion-type": "Permanently Deleted"}
    )
    deliver(body)
    assert state(bucket, key) == before


def test_a_removal_without_a_sequencer_is_checked_against_the_bucket(bucket, s3, photos):
    key = "unordered.jpg"
    tagged(bucket, s3, key, photos[0], "0062F3A1B2C3D4E5F1")
    deliver(s3_event(bucket, key, "ObjectRemoved:Delete", None))  # the object is still there
    assert state(bucket, key)[0] is not None
    s3.delete_object(Bucket=bucket, Key=key)
    deliver(s3_event(bucket, key, "ObjectRemoved:Delete", None))
    assert state(bucket, key) == (None, False)


def wait_until(check: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.2)


def test_a_versioned_bucket_end_to_end(stack, s3, photos):
    """Delete markers remove; deleting versions uncovers older ones (their tags come back, with no
    created event); deleting the last version removes."""
    bucket = f"versioned-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    events = ["s3:ObjectCreated:*", "s3:ObjectRemoved:*", "s3:LifecycleExpiration:*"]
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={"QueueConfigurations": [{"QueueArn": stack.queue_arn, "Events": events}]},
    )
    key, (a, b) = "album/photo.jpg", photos[:2]

    def holds(data: bytes | None) -> Callable[[], bool]:
        def check() -> bool:
            record, vector = state(bucket, key)
            if data is None:
                return record is None and not vector
            return record is not None and record.content_id == hashlib.sha256(data).hexdigest() and vector

        return check

    v1 = s3.put_object(Bucket=bucket, Key=key, Body=a)["VersionId"]
    wait_until(holds(a), "the first version is tagged")
    v2 = s3.put_object(Bucket=bucket, Key=key, Body=b)["VersionId"]
    wait_until(holds(b), "the second version is tagged")
    marker = s3.delete_object(Bucket=bucket, Key=key)["VersionId"]  # a delete marker
    wait_until(holds(None), "the delete marker removed it")
    s3.delete_object(Bucket=bucket, Key=key, VersionId=marker)  # undelete: the second version is back
    wait_until(holds(b), "the second version is back")
    s3.delete_object(Bucket=bucket, Key=key, VersionId=v2)  # the first version is current again
    wait_until(holds(a), "the first version is back")
    s3.delete_object(Bucket=bucket, Key=key, VersionId=v1)
    wait_until(holds(None), "the last version's removal removed it")
    assert wiring.objects().get(bucket, key) is None
