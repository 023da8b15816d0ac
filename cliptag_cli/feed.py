"""Feeding the tagging queue from a laptop without flooding it.

Before each batch the backlog (messages waiting plus in flight) is read; above ``max_backlog`` the
feeder waits for the taggers to drain it. SQS's counts are approximate and "may not achieve
consistency until at least 1 minute after the producers stop sending" (SQS API Reference,
GetQueueAttributes), so the feeder counts what it sent within the last minute as still waiting
unless the queue says more. So however many objects a backfill or re-tag lists, the
queue holds at most about ``max_backlog`` messages, which MaxConcurrency taggers drain in minutes:
nothing can sit there until the queue's retention period (4 days) expires it.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

DEFAULT_MAX_BACKLOG = 2000  # ~20 minutes of work for 10 taggers at 10 images per second between them
SQS_BATCH = 10
COUNTS_LAG_S = 60.0  # how long SQS's approximate counts may lag behind what was sent


class QueueFeeder:
    def __init__(
        self,
        sqs: Any,
        queue_url: str,
        max_backlog: int = DEFAULT_MAX_BACKLOG,
        poll_s: float = 5.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sqs, self.queue_url = sqs, queue_url
        self.max_backlog, self.poll_s, self.sleep, self.clock = max(1, max_backlog), poll_s, sleep, clock
        self.sent = 0
        self.waited_s = 0.0
        self._recent: deque[tuple[float, int]] = deque()  # (when, how many) sent within COUNTS_LAG_S

    def backlog(self) -> int:
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        attrs = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=names)["Attributes"]
        return sum(int(attrs.get(name, 0)) for name in names)

    def send(self, bodies: Sequence[str]) -> None:
        """Send every body (SendMessageBatch, 10 at a time), never more than the queue has room
        for under ``max_backlog``: a page larger than the cap goes in parts, waiting between."""
        pending = list(bodies)
        while pending:
            room = self.max_backlog - max(self.backlog(), self._sent_lately())
            if room <= 0:
                self.sleep(self.poll_s)
                self.waited_s += self.poll_s
                continue
            part, pending = pending[:room], pending[room:]
            for start in range(0, len(part), SQS_BATCH):
                self._send_batch(part[start : start + SQS_BATCH])
                self.sent += len(part[start : start + SQS_BATCH])
            self._recent.append((self.clock(), len(part)))

    def _sent_lately(self) -> int:
        """Messages sent within the last COUNTS_LAG_S seconds (the queue's counts may miss them)."""
        now = self.clock()
        while self._recent and now - self._recent[0][0] > COUNTS_LAG_S:
            self._recent.popleft()
        return sum(n for _, n in self._recent)

    def _send_batch(self, bodies: list[str]) -> None:
        pending = {str(i): body for i, body in enumerate(bodies)}
        for attempt in range(5):
            entries = [{"Id": i, "MessageBody": body} for i, body in pending.items()]
            failed = self.sqs.send_message_batch(QueueUrl=self.queue_url, Entries=entries).get("Failed", [])
            pending = {f["Id"]: pending[f["Id"]] for f in failed}
            if not pending:
                return
            self.sleep(0.2 * 2**attempt)
        raise RuntimeError(f"SQS refused {len(pending)} messages: {failed[0].get('Message', failed[0])}")
