"""Switch a bucket's Amazon EventBridge notifications on, keeping everything else it notifies."""

from __future__ import annotations

from typing import Any


def enable_eventbridge(s3: Any, bucket: str) -> bool:
    """Add ``EventBridgeConfiguration`` to the bucket's notification configuration; its queue,
    topic and Lambda notifications are written back unchanged. False when it was already on."""
    current = s3.get_bucket_notification_configuration(Bucket=bucket)
    current.pop("ResponseMetadata", None)
    if "EventBridgeConfiguration" in current:
        return False
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={**current, "EventBridgeConfiguration": {}},
        SkipDestinationValidation=True,  # the existing destinations were validated when they were set
    )
    return True
