"""Wake a freshly deployed tagger so it records what it runs (the jobs read that record)."""

from __future__ import annotations

import time

from cliptag.adapters.notifications import PING_BODY

from cliptag_cli.feed import QueueFeeder
from cliptag_cli.target import Target


def wake(target: Target, timeout_s: float = 120.0) -> None:
    """Send a ping through the queue and wait until the queue is drained (or the timeout)."""
    sqs = target.client("sqs")
    sqs.send_message(QueueUrl=target.queue_url, MessageBody=PING_BODY)
    feeder = QueueFeeder(sqs, target.queue_url)
    deadline = time.monotonic() + timeout_s
    while feeder.backlog() > 0 and time.monotonic() < deadline:
        time.sleep(1.0)
