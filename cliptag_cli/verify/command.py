"""``cliptag verify``: find (and with ``--repair``, repair) drift between the bucket, the table and
the search index: fsck for the library. Exit status 0 when clean, 1 when drift was found, 2 on
error; Ctrl-C leaves the walk resumable (130)."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from cliptag import keys
from cliptag.adapters.dynamodb import Table
from cliptag.adapters.s3 import S3MetadataStore
from cliptag.adapters.s3vectors import S3VectorIndex
from cliptag.errors import PermanentError, TransientError

from cliptag_cli import prices
from cliptag_cli.backfill import bucket_pages, inventory_pages
from cliptag_cli.feed import QueueFeeder
from cliptag_cli.progress import bar, cost_line, object_count
from cliptag_cli.retag import ITEM_BYTES, deployed
from cliptag_cli.target import Target
from cliptag_cli.verify.drift import KINDS, Confirm, counts, find, findings
from cliptag_cli.verify.repair import Repairs
from cliptag_cli.verify.snapshot import SCHEMA_VERSION, Scope, Snapshot

# What stops a verify with its reason (exit 2) instead of a traceback.
FAILURES = (BotoCoreError, ClientError, TransientError, PermanentError, sqlite3.Error, OSError, KeyError, ValueError)
DEFAULT_SETTLE_S = 900  # events still in the queue or being retried (visibility timeout x receives)
EXAMPLES = 5


def default_state_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "cliptag" / "verify"


def command(args: argparse.Namespace) -> int:
    """0: clean, 1: drift found, 2: could not verify (like fsck); Ctrl-C goes to the caller (130)."""
    try:
        return _verify(args)
    except SystemExit as exc:  # a refusal with its reason (no stack, a prefix outside KeyPrefix, ...)
        if isinstance(exc.code, int | None):
            raise
        print(f"verify: error: {exc.code}", file=sys.stderr)
    except FAILURES as exc:
        print(f"verify: error: {type(exc).__name__}: {exc}", file=sys.stderr)
    return 2


def _report_time(target: Target, manifest_uri: str) -> float:
    """When an S3 Inventory report's listing was true (its manifest's creationTimestamp, ms)."""
    bucket, _, key = manifest_uri.removeprefix("s3://").partition("/")
    manifest = json.loads(target.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())
    return int(manifest.get("creationTimestamp", 0)) / 1000 or time.time()


def _verify(args: argparse.Namespace) -> int:
    target = Target.from_args(args)
    table = Table(target.table, target.dynamodb)
    scope = Scope(
        target.bucket, target.listing_prefix(args.prefix), target.suffixes(args.suffix), target.sidecar_prefix
    )
    index = None
    if target.vector_index:
        index = S3VectorIndex(target.vector_bucket, target.vector_index, target.client("s3vectors"))
    if args.dry_run:
        return _estimate(target, scope, index is not None)
    deployment = deployed(table)
    basis = {
        "bucket": scope.bucket,
        "table": target.table,
        "keys": f"{scope.prefix}*{'*'.join(scope.suffixes)}",
        "source": args.inventory or "listing",
        "index": f"{target.vector_bucket}/{target.vector_index}",
        "scoring": deployment.scoring if deployment else "",
        "legacy_model": deployment.legacy_model if deployment else "",
        "sidecars": target.sidecars,  # WriteBack=Sidecar: the prefix whose sidecars are compared
        "schema": SCHEMA_VERSION,
    }
    name = hashlib.sha256(json.dumps(basis, sort_keys=True).encode()).hexdigest()[:16]
    snapshot = Snapshot(Path(args.state_dir) / f"{name}.sqlite", basis, fresh=args.restart)
    _walk(snapshot, target, table, scope, index, args)
    still = _live_check(table, scope.bucket, index, basis["legacy_model"])
    if snapshot.position("judged") is None:  # a repair interrupted after judging goes on from its findings
        as_of = _report_time(target, args.inventory) if args.inventory else None
        snapshot.judged(find(snapshot, args.settle, still, as_of))
    pending = int(snapshot.position("judged"))
    found = counts(snapshot)
    _report(snapshot, found, pending, args.settle, index is not None, bool(target.sidecars))
    vector_calls = f" + {snapshot.counts.vector_requests} ListVectors calls (not priced here)" if index else ""
    print(cost_line(_walk_cost(snapshot, target), "this run's reads cost about") + vector_calls)
    if found:
        feeder = QueueFeeder(target.client("sqs"), target.queue_url, args.max_backlog) if args.repair else None
        store = S3MetadataStore(target.client("s3")) if target.sidecars else None
        repairs = Repairs(snapshot, scope.bucket, table, feeder, store, still)
        with bar("repair", sum(found.values())) as progress:
            done = repairs.run(progress if args.repair else None)
        verb = "repaired" if args.repair else "--repair would send or do"
        print(f"{verb}: " + ", ".join(f"{n} {what}" for what, n in done.items() if n))
        print(cost_line(repairs.estimated_cost(), "repairs cost about" if args.repair else "repairs would cost about"))
        if args.repair:
            print("the queue's requests are applied within minutes: run `cliptag verify` again to see it clean")
    snapshot.close(remove=True)
    return 1 if found else 0


def _walk(snapshot: Snapshot, target: Target, table: Table, scope: Scope, index: Any, args: argparse.Namespace) -> None:
    if not snapshot.done("objects"):
        resume = snapshot.position("objects")
        s3 = target.client("s3")
        pages = (
            inventory_pages(s3, args.inventory, scope.bucket, scope.prefix, resume)
            if args.inventory
            else bucket_pages(s3, scope.bucket, scope.prefix, resume, 1000)
        )
        with bar("obj", None if resume else object_count(target, scope.prefix)) as progress:
            progress.set_description("listing the bucket")
            snapshot.add_objects(pages, scope, progress)
    if not snapshot.done("table"):
        described = target.dynamodb.describe_table(TableName=target.table)["Table"]
        with bar("item", int(described.get("ItemCount") or 0) or None) as progress:
            progress.set_description("reading the table")
            snapshot.add_table(table, scope, args.page_size, progress)
    if index is not None and not snapshot.done("vectors"):
        with bar("vec") as progress:
            progress.set_description("reading the search index")
            snapshot.add_vectors(index, scope, progress)
    if target.sidecars and not snapshot.done("sidecars"):  # listed, also with --inventory: a small prefix
        listed = target.sidecars + scope.prefix
        pages = bucket_pages(target.client("s3"), scope.bucket, listed, snapshot.position("sidecars"))
        with bar("xmp") as progress:
            progress.set_description("listing the sidecars")
            snapshot.add_sidecars(pages, scope, progress)


def _live_check(table: Table, bucket: str, index: S3VectorIndex | None, legacy_model: str) -> Confirm:
    """Read again (consistently) what the walk found, before it is reported: a write may have
    been half done (TAG items before their META, a vector before its record) or changed since."""

    def still(kind: str, key: str) -> bool:
        ref = keys.object_ref(bucket, key)
        meta, tags = None, {}  # tag -> (index sort key, model space)
        for item in table.query(f"{keys.PK} = :pk", {":pk": keys.object_pk(ref)}, ConsistentRead=True):
            if item[keys.SK] == keys.META:
                meta = item
            elif (tag := keys.tag_from_sk(item[keys.SK])) is not None:
                tags[tag] = (item.get(keys.TAG_INDEX_SK, ""), keys.space_of_index_pk(item.get(keys.TAG_INDEX_PK, "")))
        tagged = meta is not None and meta.get("status") == "tagged"
        if kind in ("orphan-vector", "orphan-sidecar"):
            return not tagged
        if kind == "tag-items":
            given = (meta or {}).get("tags") or [] if tagged else []
            model = str((meta or {}).get("model") or "")
            space = keys.tag_space(model, legacy_model or model)
            wanted = {
                t["tag"]: (keys.tag_index_sk(float(t["score"]), ref, t.get("source") == "person"), space) for t in given
            }
            return tags != wanted
        if kind == "missing-vector":
            return tagged and index is not None and index.content_of(ref) != (meta or {}).get("content_id")
        return True

    return still


def _report(
    snapshot: Snapshot, found: dict[str, int], pending: int, settle: float, vectors: bool, sidecars: bool
) -> None:
    db = snapshot.db
    objects, records, held, xmp = (
        db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in ("objects", "records", "vectors", "sidecars")
    )
    print(
        f"compared {objects:,} objects, {records:,} records (tombstones included)"
        + (f", {held:,} vectors" if vectors else " (no search index: vectors not checked)")
        + (f", {xmp:,} sidecars" if sidecars else "")
    )
    if pending:
        print(f"{pending} objects or records changed within {settle:.0f} s of this verify: not judged (--settle)")
    if not found:
        print("clean: the bucket, the table and the search index agree" + (" (and the sidecars)" if sidecars else ""))
        return
    print(f"drift: {sum(found.values())} finding(s)")
    for kind, what in KINDS.items():
        if found.get(kind):
            print(f"  {found[kind]:>7}  {what} [{kind}]")
            for finding in list(findings(snapshot, kind))[:EXAMPLES]:
                print(f"           {finding.key.replace(chr(0), ' ')}: {finding.detail}")


def _walk_cost(snapshot: Snapshot, target: Target) -> dict[str, float]:
    c = snapshot.counts
    described = target.dynamodb.describe_table(TableName=target.table)["Table"]
    items, size = int(described.get("ItemCount") or 0), int(described.get("TableSizeBytes") or 0)
    mean = size / items if items and size else ITEM_BYTES
    return {
        "listing": (c.list_requests + c.sidecar_requests) * prices.S3_LIST_PER_REQUEST,
        "scan": c.scanned * mean / 4096 * 0.5 * prices.DYNAMODB_PER_RRU,
    }


def _estimate(target: Target, scope: Scope, vectors: bool) -> int:
    """--dry-run: what a verify would read and cost, from the stores' own sizes; nothing walked."""
    objects = object_count(target, scope.prefix)
    described = target.dynamodb.describe_table(TableName=target.table)["Table"]
    items, size = int(described.get("ItemCount") or 0), int(described.get("TableSizeBytes") or 0)
    listing = -(-objects // 1000) * prices.S3_LIST_PER_REQUEST if objects else 0.0
    scan = size / 4096 * 0.5 * prices.DYNAMODB_PER_RRU
    known = f"{objects:,}" if objects is not None else "an unknown number of"
    vector_note = ", and list about one vector per tagged object (500 a ListVectors call; not priced here)"
    print(
        f"a verify would list {known} objects (S3's daily metric), scan {items:,} table items "
        f"({size / 1e6:,.1f} MB; DynamoDB's counts are ~6 h old)" + (vector_note if vectors else "")
    )
    if target.sidecars:  # about one sidecar per tagged photo
        print(f"with WriteBack=Sidecar it also lists {target.sidecars} (about as many keys as photos)")
        listing *= 2
    print(cost_line({"listing": listing, "scan": scan}))
    each = f"${prices.TAGGING_PER_IMAGE:.6f}"
    print(f"repairs: a recheck costs at most one tagging ({each}), a re-tag one re-scoring; a verify prints the total")
    return 0


def add_verify_parser(sub: Any, add_target_arguments: Any, max_backlog: int) -> None:
    p = sub.add_parser(
        "verify",
        help="find (and with --repair, repair) drift between the bucket, the table and the search index",
        description="Compare the bucket's listing (or an S3 Inventory report), the table and the search index, and "
        "report by kind, with counts and examples: objects without a record; records of objects that are gone or "
        "whose ETag changed; TAG items that disagree with their record; tagged records without a vector and vectors "
        "without a live record; near-duplicate items naming gone objects; with WriteBack=Sidecar, tagged records "
        "without their sidecar and sidecars of photos gone or untagged. --repair fixes each kind with the tagger's "
        "own requests (paced like backfill) and direct deletes of orphans; unchanged objects never go through the "
        "model. Exit status: 0 clean, 1 drift found, 2 error. Resumable: the walk is kept in --state-dir.",
    )
    p.add_argument("--prefix", default="", help="only keys starting with this (within the stack's KeyPrefix)")
    p.add_argument("--suffix", default="", help="only keys ending with this (with the stack's KeySuffix)")
    p.add_argument("--inventory", metavar="S3_URI", help="an S3 Inventory report (CSV) instead of listing the bucket")
    p.add_argument("--repair", action="store_true", help="repair what was found")
    p.add_argument("--dry-run", action="store_true", help="estimate what a verify reads and costs; walk nothing")
    p.add_argument("--restart", action="store_true", help="discard an interrupted walk and start afresh")
    p.add_argument(
        "--settle",
        type=float,
        default=DEFAULT_SETTLE_S,
        metavar="SECONDS",
        help=f"changes this recent are in flight, not judged (default {DEFAULT_SETTLE_S})",
    )
    p.add_argument("--page-size", type=int, help="table items read per Scan page (default: 1 MB)")
    p.add_argument("--max-backlog", type=int, default=max_backlog, help="repairs wait while the queue holds this many")
    p.add_argument("--state-dir", default=str(default_state_dir()), help="where the walk is kept (resumable)")
    add_target_arguments(p)
    p.set_defaults(fn=command)
