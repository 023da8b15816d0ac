"""``cliptag backfill``: tag the objects that were in the bucket before the stack.

The bucket is listed (or read from an S3 Inventory report, for buckets too large to list from one
machine) page by page, within the stack's KeyPrefix/KeySuffix (the tagger may read nothing else).
Objects already tagged by the deployed model and scoring settings and unchanged since (same ETag
and size in their record) are skipped; the rest are sent to the tagging queue as recheck requests
carrying what the listing saw (ETag, size, LastModified, VersionId): the tagger reads only those
bytes (GET If-Match) and writes only over the record it read before them, so a backfill that
listed an object before a concurrent upload or delete never brings back old bytes
(cliptag.ordering). After each page the position is saved in the table (cliptag_cli.jobs).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import gzip
import io
import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import unquote_plus

from botocore.exceptions import ClientError
from cliptag import keys
from cliptag.adapters.dynamodb import DynamoObjectStore
from cliptag.adapters.notifications import recheck_body
from cliptag.ordering import Seen
from cliptag.records import Deployment, ObjectRecord
from cliptag.writeback import is_sidecar

from cliptag_cli import prices
from cliptag_cli.feed import QueueFeeder
from cliptag_cli.jobs import Checkpoint
from cliptag_cli.target import Target
from cliptag_cli.wake import wake


@dataclass(frozen=True)
class Listed:
    key: str
    size: int
    etag: str
    last_modified: float = 0.0  # unix seconds
    version_id: str = ""  # from an inventory report of a versioned bucket

    def seen(self) -> Seen:
        return Seen(self.etag, self.size, self.last_modified, self.version_id)


@dataclass(frozen=True)
class Page:
    objects: list[Listed]
    resume: dict[str, Any]  # the checkpoint that continues after this page


@dataclass
class Counts:
    listed: int = 0
    sent: int = 0
    skipped: int = 0  # already tagged and unchanged
    filtered: int = 0  # outside the key suffix
    pages: int = 0
    inventory: bool = False

    def estimated_cost(self) -> dict[str, float]:
        listing = (
            self.listed * prices.S3_INVENTORY_PER_OBJECT if self.inventory else self.pages * prices.S3_LIST_PER_REQUEST
        )
        return {
            "listing": listing,
            "records read": (self.listed - self.filtered) * prices.DYNAMODB_PER_RRU,
            "messages": -(-self.sent // 10) * prices.SQS_PER_REQUEST,
            "tagging": self.sent * prices.TAGGING_PER_IMAGE,
        }


def bucket_pages(
    s3: Any, bucket: str, prefix: str, resume: dict[str, Any] | None, page_size: int = 1000
) -> Iterator[Page]:
    """ListObjectsV2, ``page_size`` keys a page (S3's maximum: 1,000), after the checkpoint's key."""
    params: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix, "PaginationConfig": {"PageSize": page_size}}
    if resume and resume.get("after"):
        params["StartAfter"] = resume["after"]
    for page in s3.get_paginator("list_objects_v2").paginate(**params):
        objects = [
            Listed(o["Key"], int(o["Size"]), o["ETag"].strip('"'), o["LastModified"].timestamp())
            for o in page.get("Contents", [])
        ]
        if objects:
            yield Page(objects, {"after": objects[-1].key})


def inventory_pages(
    s3: Any, manifest_uri: str, bucket: str, prefix: str, resume: dict[str, Any] | None
) -> Iterator[Page]:
    """The rows of an S3 Inventory report (CSV), read through its manifest.json, 1,000 at a time.

    Keys in inventory CSV files are URL-encoded; the manifest's fileSchema names the columns. A
    report of a versioned bucket lists every version and delete marker: only the current
    versions are objects (IsLatest true, IsDeleteMarker false).
    """
    if not manifest_uri.startswith("s3://"):
        raise SystemExit(f"--inventory takes s3://bucket/path/manifest.json, not {manifest_uri!r}")
    report_bucket, _, manifest_key = manifest_uri[5:].partition("/")
    manifest = json.loads(s3.get_object(Bucket=report_bucket, Key=manifest_key)["Body"].read())
    if manifest.get("fileFormat", "CSV").upper() != "CSV":
        raise SystemExit(f"inventory format {manifest['fileFormat']} is not supported: choose CSV")
    columns = [c.strip() for c in manifest["fileSchema"].split(",")]
    missing = {"Bucket", "Key", "Size", "ETag"} - set(columns)
    if missing:
        raise SystemExit(f"the inventory report lacks the fields {sorted(missing)} (add them to its configuration)")
    start_file, start_row = (resume or {}).get("file", 0), (resume or {}).get("row", 0)
    for index, entry in enumerate(manifest["files"]):
        if index < start_file:
            continue
        raw = s3.get_object(Bucket=report_bucket, Key=entry["key"])["Body"].read()
        rows = list(csv.reader(io.StringIO(gzip.decompress(raw).decode("utf-8"))))
        first = start_row if index == start_file else 0
        for at in range(first, len(rows), 1000):
            chunk = [dict(zip(columns, row, strict=False)) for row in rows[at : at + 1000]]
            objects = [
                Listed(
                    unquote_plus(r["Key"]),
                    int(r["Size"] or 0),
                    r["ETag"].strip('"'),
                    _inventory_time(r.get("LastModifiedDate", "")),
                    r.get("VersionId", ""),
                )
                for r in chunk
                if r["Bucket"] == bucket and unquote_plus(r["Key"]).startswith(prefix) and _current(r)
            ]
            yield Page(objects, {"file": index, "row": at + len(chunk)})


def _current(row: dict[str, str]) -> bool:
    """A row of the object's current version (reports without version columns list only those)."""
    return row.get("IsLatest", "true").lower() != "false" and row.get("IsDeleteMarker", "false").lower() != "true"


def _inventory_time(value: str) -> float:
    """An inventory's LastModifiedDate (``2024-01-31T12:00:00.000Z``) as unix seconds; 0 if absent."""
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() if value else 0.0
    except ValueError:
        return 0.0


@dataclass
class Backfill:
    bucket: str
    objects: DynamoObjectStore
    checkpoint: Checkpoint
    feeder: QueueFeeder | None  # None: a dry run
    deployment: Deployment | None
    suffixes: tuple[str, ...] = ()  # a key must end with each (the stack's KeySuffix, --suffix)
    sidecars: str = ""  # the stack's SidecarPrefix: its keys are our sidecars, never photos
    counts: Counts = field(default_factory=Counts)

    def run(self, pages: Iterator[Page], progress: Any = None) -> Counts:
        for page in pages:
            wanted = [
                o
                for o in page.objects
                if all(o.key.endswith(s) for s in self.suffixes) and not is_sidecar(o.key, self.sidecars)
            ]
            self.counts.filtered += len(page.objects) - len(wanted)
            records = self.objects.get_many([keys.object_ref(self.bucket, o.key) for o in wanted])
            todo = [o for o in wanted if not self.done(records.get(keys.object_ref(self.bucket, o.key)), o)]
            if self.feeder is not None:
                if todo:
                    self.feeder.send([recheck_body(self.bucket, o.key, o.seen()) for o in todo])
                self.checkpoint.save(page.resume)
            self.counts.pages += 1
            self.counts.listed += len(page.objects)
            self.counts.sent += len(todo)
            self.counts.skipped += len(wanted) - len(todo)
            if progress is not None:
                progress.update(len(page.objects))
                progress.set_postfix(sent=self.counts.sent, skipped=self.counts.skipped, refresh=False)
        if self.feeder is not None:
            self.checkpoint.clear()  # done: the next run starts from the beginning
        return self.counts

    def done(self, record: ObjectRecord | None, listed: Listed) -> bool:
        """Tagged (or failed) by the deployed model and settings, from these very bytes."""
        if record is None or self.deployment is None:
            return False
        same_bytes = record.etag == listed.etag and record.size == listed.size
        return same_bytes and record.model == self.deployment.model and record.scoring == self.deployment.scoring


def planned(deployment: Deployment | None, model_dir: str) -> Deployment:
    """What the tagger would record with ``model_dir`` deployed: every record of another model is
    due (the settings it keeps only matter for records of the same model)."""
    from cliptag.bundle import ModelBundle

    model = ModelBundle.open(model_dir).model_key
    if deployment is None:
        return Deployment(model, "", "", 0, 0.0)
    return dataclasses.replace(deployment, model=model) if deployment.model != model else deployment


def command(args: argparse.Namespace) -> int:
    """``cliptag backfill``: list, skip what is done, send the rest; report counts and cost."""
    from cliptag.adapters.dynamodb import DynamoCheckpoints, Table

    from cliptag_cli.progress import bar, cost_line, object_count
    from cliptag_cli.retag import deployed

    target = Target.from_args(args)
    table = Table(target.table, target.dynamodb)
    prefix, suffixes = target.listing_prefix(args.prefix), target.suffixes(args.suffix)
    if args.model_dir and not args.dry_run:
        print("error: --model-dir counts a switch of model: use it with --dry-run, then deploy that directory")
        return 1
    if not (args.no_wake or args.model_dir):
        try:  # a tagger deployed since its last message records what it runs now
            wake(target)
        except ClientError as exc:  # e.g. read-only credentials for a dry run
            print(f"could not wake the tagger ({exc}): counting against what it recorded last", file=sys.stderr)
    deployment = deployed(table)
    if args.model_dir:
        deployment = planned(deployment, args.model_dir)
    if deployment is None:
        print("no tagger has recorded its model yet: every object counts as untagged", file=sys.stderr)
    source = args.inventory or f"s3://{target.bucket}/{prefix}"
    basis = {
        "model": deployment.model if deployment else "",
        "scoring": deployment.scoring if deployment else "",
        "keys": f"{prefix}*{'*'.join(suffixes)}",
    }
    checkpoint = Checkpoint(DynamoCheckpoints(table), f"backfill {source}", basis)
    if args.restart:
        checkpoint.clear()
    resume = None if args.dry_run else checkpoint.resume()
    s3 = target.client("s3")
    pages = (
        inventory_pages(s3, args.inventory, target.bucket, prefix, resume)
        if args.inventory
        else bucket_pages(s3, target.bucket, prefix, resume, args.page_size)
    )
    feeder = None if args.dry_run else QueueFeeder(target.client("sqs"), target.queue_url, args.max_backlog)
    run = Backfill(
        target.bucket, DynamoObjectStore(table), checkpoint, feeder, deployment, suffixes, target.sidecar_prefix
    )
    run.counts.inventory = bool(args.inventory)
    started = time.monotonic()
    with bar("obj", None if resume else object_count(target, prefix)) as progress:
        counts = run.run(pages, progress)
    elapsed = time.monotonic() - started
    verb = "would send" if args.dry_run else "sent"
    outside = f"*{'*'.join(suffixes)}" if suffixes else "the key filter"
    print(
        f"listed {counts.listed}, {verb} {counts.sent}, skipped {counts.skipped} already tagged and unchanged, "
        f"{counts.filtered} outside {outside} ({counts.listed / max(elapsed, 1e-9):,.0f} listed/s)"
    )
    print(cost_line(counts.estimated_cost()))
    return 0
