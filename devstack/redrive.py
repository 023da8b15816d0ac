"""Move messages from the dead-letter queue back to the tagging queue.

In AWS prefer SQS's own ``aws sqs start-message-move-task --source-arn <DLQ ARN>``; this does
the same with plain receive/send/delete, so it also works against the local stack (moto has no
message move tasks).
"""

from __future__ import annotations

from typing import Any


def redrive(sqs: Any, dead_letter_queue_url: str, queue_url: str, limit: int = 100_000) -> int:
    """Move up to ``limit`` messages; returns how many were moved. A message is deleted from the
    dead-letter queue only after the tagging queue accepted it: nothing is lost on a failure."""
    moved = 0
    while moved < limit:
        messages = sqs.receive_message(
            QueueUrl=dead_letter_queue_url,
            MaxNumberOfMessages=min(10, limit - moved),
            WaitTimeSeconds=1,
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            return moved
        entries = []
        for i, message in enumerate(messages):
            entry = {"Id": str(i), "MessageBody": message["Body"]}
            if message.get("MessageAttributes"):
                entry["MessageAttributes"] = message["MessageAttributes"]
            entries.append(entry)
        sent = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
        ok = {int(entry["Id"]) for entry in sent.get("Successful", [])}
        done = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages) if i in ok]
        if done:
            sqs.delete_message_batch(QueueUrl=dead_letter_queue_url, Entries=done)
        moved += len(done)
        if len(done) < len(messages):
            raise RuntimeError(f"{len(messages) - len(done)} messages could not be sent back; they stay in the DLQ")
    return moved
