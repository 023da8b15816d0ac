"""Our own requests to the tagger, through its queue (the RetagRequests port): the API asks it
to re-score the objects a person's decision concerns, from their stored embeddings."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

from cliptag import keys
from cliptag.adapters.aws import errors_mapped
from cliptag.adapters.notifications import RETAG_MAX_OBJECTS, caption_body, decided_body, retag_body
from cliptag.errors import TransientError

SEND_BATCH_MAX = 10  # entries per SendMessageBatch (SQS's limit)
MAX_DELAY_S = 900  # SQS's longest DelaySeconds
TRANSIENT_CODES = {"ThrottlingException", "RequestThrottled", "ServiceUnavailable", "InternalError"}


class SqsRetagRequests:
    def __init__(self, queue_url: str, sqs: Any = None, later_s: int = MAX_DELAY_S) -> None:
        """``later_s``: how long the late round waits (SQS allows up to 15 minutes): longer than a
        tagger invocation, so a batch that read a content's decisions before this one was made
        has committed by then (the stack passes the queue's visibility timeout)."""
        self.queue_url, self.later_s = queue_url, max(0, min(MAX_DELAY_S, later_s))
        self.client = sqs or boto3.client(
            "sqs", config=Config(retries={"mode": "standard", "max_attempts": 4}, connect_timeout=3, read_timeout=10)
        )

    def request(self, refs: list[str]) -> None:
        """Re-tag requests of RETAG_MAX_OBJECTS objects each, sent ten to a call; an entry SQS
        did not take fails the whole request (TransientError): the caller may repeat it, since a
        re-tag twice changes nothing."""
        objects = [keys.split_ref(ref) for ref in dict.fromkeys(refs)]
        bodies = [retag_body(objects[at : at + RETAG_MAX_OBJECTS]) for at in range(0, len(objects), RETAG_MAX_OBJECTS)]
        send_all(self.client, self.queue_url, bodies, "re-tag")

    def later(self, content_id: str) -> None:
        """The late round: after ``later_s``, the tagger re-tags whatever holds the content then
        (a copy committed by a batch already in flight, or not yet in the content index)."""
        with errors_mapped("SQS", TRANSIENT_CODES, server_errors=True):
            self.client.send_message(
                QueueUrl=self.queue_url, MessageBody=decided_body([content_id]), DelaySeconds=self.later_s
            )


class SqsCaptionRequests:
    """The CaptionRequests port: one message per new content, ten to a call, to the caption queue."""

    def __init__(self, queue_url: str, sqs: Any = None) -> None:
        self.queue_url = queue_url
        self.client = sqs or boto3.client(
            "sqs", config=Config(retries={"mode": "standard", "max_attempts": 4}, connect_timeout=3, read_timeout=10)
        )

    def request(self, contents: list[tuple[str, str, str]]) -> None:
        """(content id, bucket, key to read it from) each; TransientError when SQS did not take one."""
        bodies = [caption_body(c, b, k) for c, b, k in contents]
        send_all(self.client, self.queue_url, bodies, "caption")


def send_all(client: Any, queue_url: str, bodies: list[str], what: str) -> None:
    """``bodies`` to the queue, ten to a call; an entry SQS did not take fails the whole send
    (TransientError): callers may repeat it, their requests change nothing twice."""
    for start in range(0, len(bodies), SEND_BATCH_MAX):
        entries: list[Any] = [
            {"Id": str(i), "MessageBody": body} for i, body in enumerate(bodies[start : start + SEND_BATCH_MAX])
        ]
        with errors_mapped("SQS", TRANSIENT_CODES, server_errors=True):
            sent = client.send_message_batch(QueueUrl=queue_url, Entries=entries)
        if sent.get("Failed"):
            reasons = "; ".join(f"{f.get('Code')}: {f.get('Message', '')}" for f in sent["Failed"])
            raise TransientError(f"SQS did not take {len(sent['Failed'])} {what} request(s): {reasons}")
