"""What the local AWS must do like the real one and moto does not (yet).

- S3 event notifications as AWS documents them (devstack/s3_events.py): a ``sequencer`` on every
  record (from a strictly increasing clock), ``versionId`` in versioned buckets, the events of
  delete markers and of every deleted version, and EventBridge's reason and deletion-type.
- A DynamoDB Query reads one partition; moto sorts the whole table for every base-table Query,
  which makes a table of 10,000 items answer in tens of milliseconds (the soak's 1,000 objects
  slowed to a crawl). Here a base-table Query sees only its partition, as in DynamoDB.
- GetBucketNotificationConfiguration returns the EventBridgeConfiguration that was put (moto
  drops it from the answer, so a read-modify-write of the configuration would lose it).
- moto's SQS ReceiveMessage computes every queue attribute (each a pass over all messages) for
  each message it considers: quadratic in the queue's depth. Here the retention check reads
  the one attribute it needs. SendMessage does the same to read one flag (content-based
  deduplication); here the message counts are not computed for it.
- moto's S3 Vectors has no QueryVectors and drops an index's metadataConfiguration; devstack/s3vectors.py
  adds the query (with AWS's metadata filters and limits) and the PutVectors/ListVectors checks AWS makes.

``python -m devstack.moto_patches -H 127.0.0.1 -p PORT`` runs moto's server with the patch.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

from devstack import s3_events, s3vectors

_partition = threading.local()


def _install_partition_query() -> None:
    from moto.dynamodb.models.table import Table

    if getattr(Table.query, "reads_one_partition", False):
        return
    original_query, original_all_items = Table.query, Table.all_items

    def query(self: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        index_name = kwargs.get("index_name", args[6] if len(args) > 6 else None)
        _partition.key = None if index_name or hash_key is None else hash_key
        try:
            return original_query(self, hash_key, *args, **kwargs)
        finally:
            _partition.key = None

    def all_items(self: Any) -> Any:
        key = getattr(_partition, "key", None)
        if key is None or not self.range_key_attr:
            return original_all_items(self)
        return sorted(self.items.get(key, {}).values(), key=lambda item: item.range_key)

    query.reads_one_partition = True  # type: ignore[attr-defined]
    setattr(Table, "query", query)  # noqa: B010 - mypy forbids assigning to a method
    setattr(Table, "all_items", all_items)  # noqa: B010


def _install_linear_receive() -> None:
    from moto.core.utils import unix_time
    from moto.sqs.models import SQSBackend

    def is_message_valid_based_on_retention_period(self: Any, queue_name: str, message: Any) -> bool:
        retention = int(self.get_queue(queue_name).message_retention_period)
        return bool(retention + message.sent_timestamp / 1000 > unix_time())

    setattr(SQSBackend, "is_message_valid_based_on_retention_period", is_message_valid_based_on_retention_period)  # noqa: B010
    _install_linear_send(SQSBackend)


_sending = threading.local()


def _install_linear_send(backend: Any) -> None:
    from moto.sqs.models import Queue

    original_send = backend.send_message
    if getattr(original_send, "linear", False):
        return

    def send_message(self: Any, *args: Any, **kwargs: Any) -> Any:
        _sending.active = True  # the counts below are not what SendMessage reads
        try:
            return original_send(self, *args, **kwargs)
        finally:
            _sending.active = False

    for name in ("approximate_number_of_messages", "approximate_number_of_messages_not_visible",
                 "approximate_number_of_messages_delayed"):  # fmt: skip
        count = getattr(Queue, name).fget

        def counted(self: Any, count: Any = count) -> int:
            return 0 if getattr(_sending, "active", False) else int(count(self))

        setattr(Queue, name, property(counted))
    send_message.linear = True  # type: ignore[attr-defined]
    setattr(backend, "send_message", send_message)  # noqa: B010


def install() -> None:
    s3vectors.install()
    s3_events.install()
    _install_partition_query()
    _install_linear_receive()
    _install_eventbridge_configuration_read()


def _install_eventbridge_configuration_read() -> None:
    from moto.s3.responses import S3Response

    original = S3Response.get_bucket_notification
    if getattr(original, "returns_eventbridge", False):
        return

    def get_bucket_notification(self: Any) -> Any:
        config = self.backend.get_bucket_notification_configuration(self.bucket_name)
        if config is None or config.event_bridge is None:
            return original(self)
        serialize = self.serialized

        def with_eventbridge(result: Any) -> Any:
            result.result["EventBridgeConfiguration"] = {}
            return serialize(result)

        self.serialized = with_eventbridge
        try:
            return original(self)
        finally:
            del self.serialized

    get_bucket_notification.returns_eventbridge = True  # type: ignore[attr-defined]
    setattr(S3Response, "get_bucket_notification", get_bucket_notification)  # noqa: B010


if __name__ == "__main__":
    install()
    from moto.server import main

    main(sys.argv[1:])
