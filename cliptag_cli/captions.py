"""``cliptag captions``: caption the photos tagged before Captions was switched on.

The tagger sends only *new* contents to the caption function, so a library tagged before
``Captions=On`` has no captions. This job finds them: a Scan of the table's records (META items)
under the deployed model that hold no caption (``--prefix`` narrows it to some keys), one caption
request per *content* (a photo stored under ten keys is captioned once), sent to the caption queue
without flooding it. The caption function does the rest as for a new photo: reads the bytes,
captions them, keeps the keywords CLIP confirms on the stored embedding and re-tags every holder.

A content captioned already whose records lack the caption (its holders' re-tags failed, or a
copy came later) is sent too: the function then only re-tags its holders (no model runs). Sending
a content twice changes nothing (the caption is written once). Resumable like backfill and retag:
the position is saved after each page sent.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from cliptag import keys
from cliptag.adapters.dynamodb import Table
from cliptag.adapters.dynamodb.items import content_from_item, content_key
from cliptag.adapters.dynamodb.table import plain, typed
from cliptag.adapters.notifications import caption_body

from cliptag_cli import prices
from cliptag_cli.feed import QueueFeeder
from cliptag_cli.jobs import Checkpoint
from cliptag_cli.retag import ITEM_BYTES, opened

JOB = "captions"
# A caption takes ~0.7-1.5 s of a caption function: 400 waiting is a few minutes of work for the
# default MaxConcurrency, and the queue never holds more than that.
DEFAULT_MAX_BACKLOG = 400
# Contents remembered as sent, to send each once per run; beyond this many (~100 MB) the memory is
# started afresh: a content sent twice is still captioned once (the caption is written once).
SEEN_MAX = 1_000_000
# A refresh re-tags the content's holders: per holder its record and ~5 keyword items (~7 WRU).
REFRESH_WRU = 7


@dataclass(frozen=True)
class Holder:
    bucket: str
    key: str
    content_id: str


@dataclass
class Counts:
    scanned: int = 0  # table items the Scan read
    records: int = 0  # records without a caption under the deployed model
    to_caption: int = 0  # contents embedded, not captioned: the caption function runs
    to_refresh: int = 0  # contents captioned already, a holder's record not yet: re-tags only
    not_embedded: int = 0  # no stored embedding under the deployed model: nothing to caption
    sent: int = 0
    contents: int = 0  # distinct contents found
    seen: set[bytes] = field(default_factory=set)  # digests of contents sent lately (each sent once)

    def estimated_cost(self) -> dict[str, float]:
        return {
            # An eventually consistent Scan (0.5 read unit per 4 KB), then each content's item (1 unit).
            "scan and contents (reads)": (self.scanned * ITEM_BYTES / 4096 * 0.5 + self.contents)
            * prices.DYNAMODB_PER_RRU,
            "captions": self.to_caption * prices.CAPTION_PER_CAPTION,
            "re-tags": self.to_refresh * (prices.RETAG_LAMBDA_PER_OBJECT + REFRESH_WRU * prices.DYNAMODB_PER_WRU),
        }


def uncaptioned_pages(
    table: Table, model: str, prefix: str, resume: dict[str, Any] | None, page_size: int | None = None
) -> Iterator[tuple[list[Holder], int, dict[str, Any] | None]]:
    """Tagged records under ``model`` with no caption, one Scan page at a time, with the items the
    page read and the position after it (None after the last)."""
    condition = "#sk = :meta AND #status = :tagged AND model = :model AND attribute_not_exists(caption)"
    values: dict[str, Any] = {":meta": keys.META, ":tagged": "tagged", ":model": model}
    if prefix:
        condition += " AND begins_with(#k, :prefix)"
        values[":prefix"] = prefix
    params: dict[str, Any] = {
        "TableName": table.name,
        "FilterExpression": condition,
        "ProjectionExpression": "#b, #k, content_id",
        "ExpressionAttributeNames": {"#sk": keys.SK, "#status": "status", "#b": "bucket", "#k": "key"},
        "ExpressionAttributeValues": typed(values),
    }
    if resume:
        params["ExclusiveStartKey"] = resume
    if page_size:
        params["Limit"] = page_size
    for page in table.client.get_paginator("scan").paginate(**params):
        found = [plain(raw) for raw in page.get("Items", [])]
        holders = [Holder(i["bucket"], i["key"], i["content_id"]) for i in found if i.get("content_id")]
        yield holders, int(page.get("ScannedCount", 0)), page.get("LastEvaluatedKey")


@dataclass
class CaptionBackfill:
    table: Table
    model: str
    checkpoint: Checkpoint
    feeder: QueueFeeder | None  # None: a dry run
    prefix: str = ""
    page_size: int | None = None
    counts: Counts = field(default_factory=Counts)

    def run(self, progress: Any = None) -> Counts:
        resume = self.checkpoint.resume() if self.feeder is not None else None
        pages = uncaptioned_pages(self.table, self.model, self.prefix, resume, self.page_size)
        for holders, scanned, position in pages:
            self.counts.scanned += scanned
            self.counts.records += len(holders)
            due = self._due(holders)
            if self.feeder is not None and due:
                self.feeder.send([caption_body(h.content_id, h.bucket, h.key) for h in due])
                self.counts.sent += len(due)
            if self.feeder is not None and position:
                self.checkpoint.save(position)
            if progress is not None:
                progress.update(scanned)
                progress.set_postfix(contents=self.counts.contents, sent=self.counts.sent, refresh=False)
        if self.feeder is not None:
            self.checkpoint.clear()
        return self.counts

    def _due(self, holders: list[Holder]) -> list[Holder]:
        """One holder per content not counted yet, for the contents embedded under the model."""
        first: dict[str, Holder] = {}
        for h in holders:
            if _digest(h.content_id) not in self.counts.seen:
                first.setdefault(h.content_id, h)
        if len(self.counts.seen) + len(first) > SEEN_MAX:
            self.counts.seen.clear()
        self.counts.seen.update(_digest(c) for c in first)
        self.counts.contents += len(first)
        contents = dict(
            found
            for item in self.table.batch_get([content_key(c, self.model) for c in first])
            if (found := content_from_item(item)) is not None
        )
        due = []
        for content_id, holder in first.items():
            content = contents.get(content_id)
            if content is None or content.embedding is None:
                self.counts.not_embedded += 1
                continue
            if content.caption:
                self.counts.to_refresh += 1
            else:
                self.counts.to_caption += 1
            due.append(holder)
        return due


def _digest(content_id: str) -> bytes:
    """A content id (SHA-256 hex) in 32 bytes: the run remembers a million in ~100 MB."""
    try:
        return bytes.fromhex(content_id)
    except ValueError:
        return content_id.encode()


def command(args: argparse.Namespace) -> int:
    """``cliptag captions``: send the contents without a caption to the caption function."""
    from cliptag.adapters.dynamodb import DynamoCheckpoints

    from cliptag_cli.progress import bar
    from cliptag_cli.target import Target

    if not args.dry_run and not Target.from_args(args).caption_queue_url:
        print(
            "error: this stack has no caption queue: deploy it with Captions=On and CaptionModelS3Uri (a stack "
            "deployed with Captions=On before this version: deploy it again, for its CaptionQueueUrl output); "
            "--dry-run counts and prices the captions without it"
        )
        return 1
    target, table, deployment = opened(args)
    if deployment is None:
        print("error: no tagger has recorded what it runs yet (upload one image, or run without --no-wake)")
        return 1
    prefix = target.listing_prefix(args.prefix) if args.prefix else ""
    checkpoint = Checkpoint(DynamoCheckpoints(table), JOB, {"model": deployment.model, "prefix": prefix})
    if args.restart:
        checkpoint.clear()
    feeder = None
    if not args.dry_run:
        feeder = QueueFeeder(target.client("sqs"), target.caption_queue_url, args.max_backlog)
    job = CaptionBackfill(table, deployment.model, checkpoint, feeder, prefix, args.page_size)
    started = time.monotonic()
    items = target.dynamodb.describe_table(TableName=target.table)["Table"].get("ItemCount")  # ~6 hours old
    with bar("item", int(items) if items else None) as progress:
        counts = job.run(progress)
    report(counts, time.monotonic() - started, sent=feeder is not None, out=print)
    return 0


def report(counts: Counts, elapsed: float, sent: bool, out: Callable[[str], None]) -> None:
    from cliptag_cli.progress import cost_line

    out(
        f"{counts.records} records without a caption: {counts.to_caption} contents to caption, "
        f"{counts.to_refresh} captioned already (their records re-tagged), {counts.not_embedded} not embedded"
    )
    if sent:
        rate = counts.sent / max(elapsed, 1e-9)
        out(f"sent {counts.sent} caption requests ({rate:,.0f}/s); the caption function works through them")
    out(cost_line(counts.estimated_cost()))


def add_captions_parser(sub: Any, add_job_arguments: Callable[..., None]) -> None:
    """``add_job_arguments``: the resumable jobs' --dry-run, --restart, --max-backlog and target."""
    p = sub.add_parser(
        "captions",
        help="caption the photos tagged before Captions was switched on",
        description="Find the records without a caption under the deployed model and send each content once to "
        "the caption function (Captions=On), which captions it, keeps the keywords CLIP confirms and re-tags "
        "every object holding it. Resumable: run it again after an interruption and it continues from the "
        "checkpoint it keeps in the table.",
    )
    p.add_argument("--prefix", default="", help="only keys starting with this")
    p.add_argument("--page-size", type=int, help="table items read per Scan page and per checkpoint (default: 1 MB)")
    p.add_argument("--no-wake", action="store_true", help="do not ping the tagger first (it records what it runs)")
    add_job_arguments(p, "count and estimate the cost; send nothing", DEFAULT_MAX_BACKLOG, "caption queue")
    p.set_defaults(fn=command)
