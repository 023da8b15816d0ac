"""``cliptag backfill`` against the local stack (moto in its own process, no poller): objects
listed and enqueued per second, and the time of a dry run.

The bucket is a new one without notifications (its objects never sent an event), filled with tiny
distinct byte strings: a backfill lists keys and looks up their records but never reads an object,
so neither the objects' size nor the model matters here. No tagger drains the queue meanwhile
(the stack without its poller, the backlog cap lifted), so the rate is ListObjectsV2 + the
records' BatchGetItem + SendMessageBatch alone. Only ``Backfill.run`` is timed, not the set-up.

The queue fills meanwhile, and moto's SendMessage computes every queue attribute (each a pass over
all messages) for each message it takes: the rate falls as the queue deepens (about 150 objects/s
for 200, 25 for 2,000 on 2 cores). A queue that taggers drain does not slow SQS down.
"""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Any

from bench.common import put_objects
from bench.context import Bench, Measure

if TYPE_CHECKING:
    from cliptag_cli.backfill import Counts
    from devstack.stack import LocalStack


def archive(s3: Any, count: int) -> str:
    """A new bucket holding ``count`` tiny objects that never sent an event (no notifications)."""
    bucket = f"archive-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    put_objects(s3, bucket, {f"photos/{i:06d}.jpg": f"{bucket} {i}".encode() for i in range(count)})
    return bucket


def backfill(stack: LocalStack, bucket: str, send: bool) -> tuple[float, Counts]:
    """(seconds, counts) of one backfill of the whole bucket: sending to the queue, or a dry run."""
    from cliptag.adapters.dynamodb import DynamoCheckpoints, DynamoDeployments, DynamoObjectStore, Table

    from cliptag_cli.backfill import Backfill, bucket_pages
    from cliptag_cli.feed import QueueFeeder
    from cliptag_cli.jobs import Checkpoint

    assert stack.info is not None
    table = Table(stack.info.table, stack.client("dynamodb"))
    # No tagger drains the queue here: a cap would only make the feeder wait for one.
    feeder = QueueFeeder(stack.client("sqs"), stack.info.queue_url, max_backlog=1 << 30) if send else None
    deployment = DynamoDeployments(table).get()  # recorded by the stack's tagger: objects untagged by it are due
    objects, checkpoint = DynamoObjectStore(table), Checkpoint(DynamoCheckpoints(table), f"bench {bucket}", {})
    run = Backfill(bucket, objects, checkpoint, feeder, deployment)
    pages = bucket_pages(stack.client("s3"), bucket, "", None)
    start = time.perf_counter()
    counts = run.run(pages)
    return time.perf_counter() - start, counts


def run(bench: Bench) -> None:
    stack = bench.stack("batches")
    assert stack.info is not None
    s3, sqs = stack.client("s3"), stack.client("sqs")
    sent_n, dry_n = bench.scale.backfill_objects, bench.scale.backfill_dry_run
    seconds, counts = backfill(stack, archive(s3, sent_n), send=True)
    assert counts.sent == sent_n, counts
    sqs.purge_queue(QueueUrl=stack.info.queue_url)  # nothing will tag them: leave the queue as found
    dry_s, dry = backfill(stack, archive(s3, dry_n), send=False)
    assert dry.listed == dry_n and dry.sent == dry_n, dry
    bench.section("backfill against the local stack (tiny objects: a backfill reads keys and records only)")
    rate = sent_n / seconds
    bench.row(
        "backfill",
        f"listed + records looked up + enqueued ({sent_n:,}, queue undrained)",
        f"{rate:8.0f} objects/s",
        "backfill_enqueued_per_s",
        rate,
    )
    listed = dry_n / dry_s
    bench.row(
        "backfill",
        f"dry run of {dry_n:,} objects (list + record lookup)",
        f"{dry_s:8.2f} s  ({listed:,.0f} listed/s)",
        "backfill_dry_run_s",
        dry_s,
    )
    bench.data.update(
        backfill_enqueued_objects=sent_n, backfill_dry_run_objects=dry_n, backfill_dry_run_listed_per_s=listed
    )


MEASURE = Measure(
    "backfill",
    "cliptag backfill: objects listed and enqueued per second; a dry run's time",
    run,
    stack="batches",
)
