"""S3's event notifications as AWS documents them, where moto's differ (installed by moto_patches).

Each fix follows a sentence of the Amazon S3 User Guide (docs/testing.md lists them):

- "Event message structure": every record carries a ``sequencer`` ("used to determine event
  sequence; only used with PUT and DELETE requests") and, in a versioning-enabled bucket, the
  object's ``versionId``. moto's records have neither: here the sequencer comes from a strictly
  increasing clock, and versioned buckets' records carry the version.
- "Event notification types": a DELETE without a version in a versioning-enabled bucket sends
  ``s3:ObjectRemoved:DeleteMarkerCreated``; a DELETE of a version sends ``s3:ObjectRemoved:Delete``
  (each time: deleting the current version makes the previous one current again). moto sends
  nothing for a delete marker and Delete only when a key's last version goes.
- "Using EventBridge" / "EventBridge event message structure": S3 events on EventBridge carry the
  same increasing sequencer, a URL-encoded key, the ``version-id`` of versioned objects, the
  ``reason`` (PutObject, CopyObject, CompleteMultipartUpload, DeleteObject, Lifecycle Expiration)
  and, for Object Deleted, the ``deletion-type`` (Permanently Deleted, Delete Marker Created).
  moto sends one constant sequencer, the raw key and neither field.
"""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote_plus

_lock = threading.Lock()
_last = 0
_local = threading.local()  # the S3 event being sent to EventBridge; moto's own deletes muted
EMPTY_ETAG = "d41d8cd98f00b204e9800998ecf8427e"  # what S3 reports for a delete marker
REASONS = {
    "ObjectCreated:Put": "PutObject",
    "ObjectCreated:Post": "POST Object",
    "ObjectCreated:Copy": "CopyObject",
    "ObjectCreated:CompleteMultipartUpload": "CompleteMultipartUpload",
}


def next_sequencer() -> str:
    global _last
    with _lock:
        _last = max(_last + 1, time.time_ns())
        return f"{_last:016X}"


def install() -> None:
    from moto.s3 import notifications

    original = notifications._get_s3_event
    if getattr(original, "as_documented", False):
        return

    def documented(event_name: str, bucket: Any, key: Any, notification_id: str) -> dict[str, Any]:
        event: dict[str, Any] = original(event_name, bucket, key, notification_id)
        for record in event["Records"]:
            record["s3"]["object"]["sequencer"] = next_sequencer()
            if bucket.is_versioned and getattr(key, "version_id", None):
                record["s3"]["object"]["versionId"] = key.version_id
        return event

    documented.as_documented = True  # type: ignore[attr-defined]
    notifications._get_s3_event = documented
    _install_versioned_deletes(notifications)
    _install_eventbridge_events(notifications)


def _install_versioned_deletes(notifications: Any) -> None:
    from moto.s3.models import S3Backend

    original_delete, original_send = S3Backend.delete_object, notifications.send_event

    def send_event(account_id: str, event_name: Any, bucket: Any, key: Any) -> None:
        if not getattr(_local, "muted", False):
            original_send(account_id, event_name, bucket, key)

    def delete_object(self: Any, bucket_name: str, key_name: str, version_id: str | None = None, **kw: Any) -> Any:
        bucket = self.get_bucket(bucket_name)
        if not bucket.is_versioned:
            return original_delete(self, bucket_name, key_name, version_id=version_id, **kw)
        _local.muted = True
        try:
            done, meta = original_delete(self, bucket_name, key_name, version_id=version_id, **kw)
        finally:
            _local.muted = False
        if done and meta.get("version-id"):
            marker = version_id is None
            name = "ObjectRemoved:DeleteMarkerCreated" if marker else "ObjectRemoved:Delete"
            removed = SimpleNamespace(name=key_name, size=0, etag=EMPTY_ETAG, version_id=meta["version-id"])
            original_send(self.account_id, f"s3:{name}", bucket, removed)
        return done, meta

    if not getattr(S3Backend.delete_object, "as_documented", False):
        delete_object.as_documented = True  # type: ignore[attr-defined]
        setattr(S3Backend, "delete_object", delete_object)  # noqa: B010
        notifications.send_event = send_event


def _install_eventbridge_events(notifications: Any) -> None:
    """moto builds the EventBridge event inside the function that sends it, so the event name is
    noted on the way in and the fix-up sits in the one call every rule goes through."""
    from moto.events.models import Rule

    original_message, original_targets = notifications._send_event_bridge_message, Rule.send_to_targets
    if getattr(original_targets, "fixes_s3_events", False):
        return

    def send_event_bridge_message(account_id: str, bucket: Any, event_name: str, key: Any) -> None:
        _local.s3_event = (str(event_name).removeprefix("s3:"), bool(bucket.is_versioned))
        try:
            original_message(account_id, bucket, event_name, key)
        finally:
            _local.s3_event = None

    def send_to_targets(self: Any, event: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        obj = event.get("detail", {}).get("object") if event.get("source") == "aws.s3" else None
        if isinstance(obj, dict) and "key" in obj:
            event = {**event, "detail": {**event["detail"], "object": {**obj}}}
            detail, fixed = event["detail"], event["detail"]["object"]
            fixed["sequencer"] = next_sequencer()
            fixed["key"] = quote_plus(obj["key"], safe="/")
            name, versioned = getattr(_local, "s3_event", None) or ("", False)
            if not versioned:
                fixed.pop("version-id", None)
            if name.startswith("ObjectCreated:"):
                detail["reason"] = REASONS.get(name, "PutObject")
            elif name.startswith(("ObjectRemoved:", "LifecycleExpiration:")):
                fixed.pop("size", None)  # delete events carry none
                detail["reason"] = "Lifecycle Expiration" if name.startswith("Lifecycle") else "DeleteObject"
                marker = name.endswith(":DeleteMarkerCreated")
                detail["deletion-type"] = "Delete Marker Created" if marker else "Permanently Deleted"
        return original_targets(self, event, *args, **kwargs)  # type: ignore[arg-type]

    send_to_targets.fixes_s3_events = True  # type: ignore[attr-defined]
    setattr(Rule, "send_to_targets", send_to_targets)  # noqa: B010
    notifications._send_event_bridge_message = send_event_bridge_message
