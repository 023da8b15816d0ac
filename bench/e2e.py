"""End-to-end throughput through the local stack: uploads to S3, its notifications through SQS,
the poller's batches through the tagger, until every object's record is in DynamoDB."""

from __future__ import annotations

import time
import uuid

from bench.common import fresh
from bench.context import Bench, Measure


def run(bench: Bench) -> None:
    from cliptag import wiring

    stack = bench.stack("poller")
    assert stack.info is not None
    objects, bucket, s3 = wiring.objects(), stack.info.bucket, stack.client("s3")
    photos = (bench.photos * 2)[: bench.args.e2e_images]
    keys = [f"e2e/{uuid.uuid4().hex}.jpg" for _ in photos]
    start = time.perf_counter()
    for key, data in zip(keys, photos, strict=True):
        s3.put_object(Bucket=bucket, Key=key, Body=fresh(data))
    pending = set(keys)
    deadline = time.monotonic() + 300
    while pending and time.monotonic() < deadline:
        pending = {k for k in pending if objects.get(bucket, k) is None}
        time.sleep(0.2)
    elapsed = time.perf_counter() - start
    rate = (len(keys) - len(pending)) / elapsed
    bench.section(f"end to end through the local stack ({len(keys)} uploads -> tagged)")
    bench.row("e2e", "throughput (2 cores, one poller)", f"{rate:8.1f} images/s", "e2e_images_per_s", rate)


MEASURE = Measure("e2e", "end-to-end throughput through the local stack (upload -> tagged)", run, stack="poller")
