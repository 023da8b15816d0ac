"""Our own requests to the tagger, through its queue (the RetagRequests port): the API asks it
to re-score the objects a person's decision concerns, from their stored embeddings."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

from cliptag import keys
from cliptag.adapters.aws import errors_mapped
from cliptag.adapters.notifications import RETAG_MAX_OBJECTS, retag_body
from cliptag.errors import TransientError

SEND_BATCH_MAX = 10  # entries per SendMessageBatch (SQS's limit)
TRANSIENT_CODES = {"ThrottlingException", "RequestThrottled", "ServiceUnavailable", "InternalError"}


class SqsRetagRequests:
    def __init__(self, queue_url: str, sqs: Any = None) -> None:
        self.queue_url = queue_url
        self.client = sqs or boto3.client(
            "sqs", config=Config(retries={"mode": "standard", "max_attempts": 4}, connect_timeout=3, read_timeout=10)
        )

    def request(self, refs: list[str]) -> None:
        """Re-tag requests of RETAG_MAX_OBJECTS objects each, sent ten to a call; an entry SQS
        did not take fails the whole request (TransientError): the caller may repeat it, since a
        re-tag twice changes nothing."""
        objects = [keys.split_ref(ref) for ref in dict.fromkeys(refs)]
        bodies = [retag_body(objects[at : at + RETAG_MAX_OBJECTS]) for at in range(0, len(objects), RETAG_MAX_OBJECTS)]
        for start in range(0, len(bodies), SEND_BATCH_MAX):
            entries: list[Any] = [
                {"Id": str(i), "MessageBody": b} for i, b in enumerate(bodies[start : start + SEND_BATCH_MAX])
            ]
            with errors_mapped("SQS", TRANSIENT_CODES, server_errors=True):
                sent = self.client.send_message_batch(QueueUrl=self.queue_url, Entries=entries)
            if sent.get("Failed"):
                reasons = "; ".join(f"{f.get('Code')}: {f.get('Message', '')}" for f in sent["Failed"])
                raise TransientError(f"SQS did not take {len(sent['Failed'])} re-tag request(s): {reasons}")
