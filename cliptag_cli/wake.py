"""Wake a freshly deployed tagger so it records what it runs (the jobs read that record)."""

from __future__ import annotations

import sys
import time

from cliptag.adapters.notifications import PING_BODY

from cliptag_cli.feed import QueueFeeder
from cliptag_cli.target import Target


def wake(target: Target, timeout_s: float = 120.0) -> None:
    """Send a ping through the queue and wait until the queue is drained (or the timeout, said on
    stderr: the tagger's record may then be the previous deployment's)."""
    sqs = target.client("sqs")
    sqs.send_message(QueueUrl=target.queue_url, MessageBody=PING_BODY)
    feeder = QueueFeeder(sqs, target.queue_url)
    deadline = time.monotonic() + timeout_s
    while feeder.backlog() > 0:
        if time.monotonic() >= deadline:
            print(f"the tagging queue did not drain within {timeout_s:.0f} s: going on with what the tagger"
                  " recorded last", file=sys.stderr)  # fmt: skip
            return
        time.sleep(1.0)
