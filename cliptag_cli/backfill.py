"""``cliptag backfill``: tag the objects that were in the bucket before the stack.

The bucket is listed (or read from an S3 Inventory report, for buckets too large to list from one
machine) page by page. Objects already tagged by the deployed model and scoring settings and
unchanged since (same ETag and size in their record) are skipped; the rest are sent to the tagging
queue as "object created" events, which the tagger handles like uploads. After each page the last
key is saved in the table, so an interrupted run continues where it stopped.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus

from cliptag import keys
from cliptag.adapters.dynamodb import DynamoCheckpoints, DynamoObjectStore
from cliptag.adapters.notifications import created_body
from cliptag.records import Deployment, ObjectRecord

from cliptag_cli import prices
from cliptag_cli.feed import QueueFeeder


@dataclass(frozen=True)
class Listed:
    key: str
    size: int
    etag: str


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
        objects = [Listed(o["Key"], int(o["Size"]), o["ETag"].strip('"')) for o in page.get("Contents", [])]
        if objects:
            yield Page(objects, {"after": objects[-1].key})


def inventory_pages(
    s3: Any, manifest_uri: str, bucket: str, prefix: str, resume: dict[str, Any] | None
) -> Iterator[Page]:
    """The rows of an S3 Inventory report (CSV), read through its manifest.json, 1,000 at a time.

    Keys in inventory CSV files are URL-encoded; the manifest's fileSchema names the columns.
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
                Listed(unquote_plus(r["Key"]), int(r["Size"] or 0), r["ETag"].strip('"'))
                for r in chunk
                if r["Bucket"] == bucket and unquote_plus(r["Key"]).startswith(prefix)
            ]
            yield Page(objects, {"file": index, "row": at + len(chunk)})


@dataclass
class Backfill:
    bucket: str
    objects: DynamoObjectStore
    checkpoints: DynamoCheckpoints
    feeder: QueueFeeder | None  # None: a dry run
    deployment: Deployment | None
    suffix: str = ""
    job: str = "backfill"
    counts: Counts = field(default_factory=Counts)

    def run(self, pages: Iterator[Page], progress: Any = None) -> Counts:
        for page in pages:
            wanted = [o for o in page.objects if o.key.endswith(self.suffix)]
            self.counts.filtered += len(page.objects) - len(wanted)
            records = self.objects.get_many([keys.object_ref(self.bucket, o.key) for o in wanted])
            todo = [o for o in wanted if not self.done(records.get(keys.object_ref(self.bucket, o.key)), o)]
            if self.feeder is not None:
                if todo:
                    self.feeder.send([created_body(self.bucket, o.key, o.size, o.etag) for o in todo])
                self.checkpoints.save(self.job, page.resume)
            self.counts.pages += 1
            self.counts.listed += len(page.objects)
            self.counts.sent += len(todo)
            self.counts.skipped += len(wanted) - len(todo)
            if progress is not None:
                progress.update(len(page.objects))
                progress.set_postfix(sent=self.counts.sent, skipped=self.counts.skipped, refresh=False)
        if self.feeder is not None:
            self.checkpoints.clear(self.job)  # done: the next run starts from the beginning
        return self.counts

    def done(self, record: ObjectRecord | None, listed: Listed) -> bool:
        """Tagged (or failed) by the deployed model and settings, from these very bytes."""
        if record is None or self.deployment is None:
            return False
        same_bytes = record.etag == listed.etag and record.size == listed.size
        return same_bytes and record.model == self.deployment.model and record.scoring == self.deployment.scoring
