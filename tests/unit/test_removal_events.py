"""Every way an object leaves the bucket is understood, from the event shapes AWS documents.

Sources (Amazon S3 User Guide): "Event notification types" (s3:ObjectRemoved:Delete,
:DeleteMarkerCreated), "Configuring S3 Lifecycle event notifications" (s3:LifecycleExpiration:Delete
"notifies you when an object in an unversioned bucket is deleted ... also ... when an object
version is permanently deleted", :DeleteMarkerCreated), "Event message structure" (eventName
without the "s3:" prefix, versionId in versioning-enabled buckets), "EventBridge event message
structure" (the Object Deleted examples below, as printed there) and "Using EventBridge"
(deletion-type Permanently Deleted / Delete Marker Created; reason DeleteObject / Lifecycle Expiration).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from cliptag.adapters.notifications import parse_body

# "Object deleted (using DeleteObject)", as printed on the EventBridge page.
EVENTBRIDGE_DELETE_OBJECT = {
    "version": "0",
    "id": "2ee9cc15-d022-99ea-1fb8-1b1bac4850f9",
    "detail-type": "Object Deleted",
    "source": "aws.s3",
    "account": "111122223333",
    "time": "2021-11-12T00:00:00Z",
    "region": "ca-central-1",
    "resources": ["arn:aws:s3:::DOC-EXAMPLE-BUCKET1"],
    "detail": {
        "version": "0",
        "bucket": {"name": "DOC-EXAMPLE-BUCKET1"},
        "object": {
            "key": "example-key",
            "etag": "d41d8cd98f00b204e9800998ecf8427e",
            "version-id": "1QW9g1Z99LUNbvaaYVpW9xDlOLU.qxgF",
            "sequencer": "617f0837b476e463",
        },
        "request-id": "0BH729840619AG5K",
        "requester": "123456789012",
        "source-ip-address": "1.2.3.4",
        "reason": "DeleteObject",
        "deletion-type": "Delete Marker Created",
    },
}
# "Object deleted (using lifecycle expiration)", as printed there.
EVENTBRIDGE_LIFECYCLE = {
    **EVENTBRIDGE_DELETE_OBJECT,
    "id": "ad1de317-e409-eba2-9552-30113f8d88e3",
    "detail": {
        "version": "0",
        "bucket": {"name": "DOC-EXAMPLE-BUCKET1"},
        "object": {
            "key": "example-key",
            "etag": "d41d8cd98f00b204e9800998ecf8427e",
            "version-id": "mtB0cV.jejK63XkRNceanNMC.qXPWLeK",
            "sequencer": "617b398000000000",
        },
        "request-id": "20EB74C14654DC47",
        "requester": "s3.amazonaws.com",
        "reason": "Lifecycle Expiration",
        "deletion-type": "Delete Marker Created",
    },
}


def eventbridge(doc: dict[str, Any], **changes: Any) -> str:
    detail = {**doc["detail"], "object": {**doc["detail"]["object"]}}
    for name, value in changes.items():
        target = detail["object"] if name in ("version-id", "sequencer") else detail
        if value is None:
            target.pop(name.replace("_", "-"), None)
        else:
            target[name.replace("_", "-")] = value
    return json.dumps({**doc, "detail": detail})


def notification(event_name: str, version_id: str | None = None, sequencer: str | None = "0055AED6DCD90281E5") -> str:
    obj: dict[str, Any] = {"key": "HappyFace.jpg", "eTag": "d41d8cd98f00b204e9800998ecf8427e"}
    if version_id is not None:
        obj["versionId"] = version_id
    if sequencer is not None:
        obj["sequencer"] = sequencer
    record = {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-west-2",
        "eventTime": "1970-01-01T00:00:00.000Z",
        "eventName": event_name,
        "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": "amzn-s3-demo-bucket"}, "object": obj},
    }
    return json.dumps({"Records": [record]})


def test_eventbridge_delete_marker_removes_the_object_and_a_lifecycle_expiration_is_read() -> None:
    (event,) = parse_body(json.dumps(EVENTBRIDGE_DELETE_OBJECT))
    assert (event.kind, event.bucket, event.key) == ("removed", "DOC-EXAMPLE-BUCKET1", "example-key")
    assert event.sequencer == "617F0837B476E463" and event.sent_sequencer == "617F0837B476E463"
    # S3's guide promises sequencers for PUT and DELETE requests: a rule's expiration is read first.
    (event,) = parse_body(json.dumps(EVENTBRIDGE_LIFECYCLE))
    assert (event.kind, event.key) == ("recheck", "example-key") and event.sequencer == "617B398"


def test_eventbridge_permanent_deletes() -> None:
    # An unversioned object: the key is empty now.
    unversioned = eventbridge(EVENTBRIDGE_DELETE_OBJECT, deletion_type="Permanently Deleted", **{"version-id": None})
    assert [e.kind for e in parse_body(unversioned)] == ["removed"]
    # A version permanently deleted: another version may be current now, so the key is read.
    for reason in ("DeleteObject", "Lifecycle Expiration"):
        version = eventbridge(EVENTBRIDGE_DELETE_OBJECT, deletion_type="Permanently Deleted", reason=reason)
        assert [e.kind for e in parse_body(version)] == ["recheck"]


@pytest.mark.parametrize(
    ("event_name", "version_id", "kind"),
    [
        ("ObjectRemoved:Delete", None, "removed"),  # unversioned bucket
        ("ObjectRemoved:DeleteMarkerCreated", "096fKKXTRTtl3on89fVO.nfljtsv6qko", "removed"),
        ("ObjectRemoved:Delete", "096fKKXTRTtl3on89fVO.nfljtsv6qko", "recheck"),  # a version: maybe another shows
        ("LifecycleExpiration:Delete", None, "recheck"),  # a rule's expiration: read before recorded
        ("LifecycleExpiration:Delete", "096fKKXTRTtl3on89fVO.nfljtsv6qko", "recheck"),  # a noncurrent version?
        ("LifecycleExpiration:DeleteMarkerCreated", "096fKKXTRTtl3on89fVO.nfljtsv6qko", "recheck"),
    ],
)
def test_notification_removals(event_name: str, version_id: str | None, kind: str) -> None:
    (event,) = parse_body(notification(event_name, version_id))
    assert (event.kind, event.key) == (kind, "HappyFace.jpg")
    assert event.sequencer == "0055AED6DCD90281E5"


def test_a_removal_without_a_sequencer_is_read_before_it_is_recorded() -> None:
    (event,) = parse_body(notification("LifecycleExpiration:Delete", sequencer=None))
    assert event.kind == "recheck"
    (event,) = parse_body(notification("ObjectRemoved:DeleteMarkerCreated", "v1", sequencer=None))
    assert event.kind == "recheck"


def test_other_lifecycle_events_are_not_removals() -> None:
    assert parse_body(notification("LifecycleTransition", sequencer=None)) == []
    assert parse_body(notification("ObjectTagging:Put")) == []
