"""``cliptag``: operate a cliptag stack (a deployed one with --stack NAME, else the local one)."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from cliptag.adapters.dynamodb import DynamoCheckpoints, DynamoDeployments, DynamoFailureIndex, DynamoObjectStore, Table
from cliptag.adapters.notifications import PING_BODY
from cliptag.records import Deployment

from cliptag_cli.feed import DEFAULT_MAX_BACKLOG, QueueFeeder
from cliptag_cli.gallery.command import add_gallery_parser
from cliptag_cli.target import Target, add_target_arguments


def _progress(unit: str, total: int | None = None) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, unit=unit, unit_scale=True, dynamic_ncols=True, file=sys.stderr)


def _cost(lines: dict[str, float]) -> str:
    parts = ", ".join(f"{name} ${value:,.4f}" for name, value in lines.items())
    return f"estimated cost ${sum(lines.values()):,.4f} ({parts})"


def backfill(args: argparse.Namespace) -> int:
    from cliptag_cli.backfill import Backfill, bucket_pages, inventory_pages

    target = Target.from_args(args)
    table = Table(target.table, target.dynamodb)
    checkpoints = DynamoCheckpoints(table)
    source = args.inventory or f"s3://{target.bucket}/{args.prefix}"
    job = f"backfill {source} *{args.suffix}"
    resume = None if args.restart or args.dry_run else checkpoints.load(job)
    deployment = DynamoDeployments(table).get()
    if deployment is None:
        print("no tagger has recorded its model yet: every object counts as untagged", file=sys.stderr)
    s3 = target.client("s3")
    pages = (
        inventory_pages(s3, args.inventory, target.bucket, args.prefix, resume)
        if args.inventory
        else bucket_pages(s3, target.bucket, args.prefix, resume, args.page_size)
    )
    feeder = None if args.dry_run else QueueFeeder(target.client("sqs"), target.queue_url, args.max_backlog)
    run = Backfill(target.bucket, DynamoObjectStore(table), checkpoints, feeder, deployment, args.suffix, job)
    run.counts.inventory = bool(args.inventory)
    if resume:
        print(f"resuming from the checkpoint: {resume}", file=sys.stderr)
    started = time.monotonic()
    total = None if resume else object_count(target, args.prefix)
    with _progress("obj", total) as bar:
        counts = run.run(pages, bar)
    elapsed = time.monotonic() - started
    verb = "would send" if args.dry_run else "sent"
    print(
        f"listed {counts.listed}, {verb} {counts.sent}, skipped {counts.skipped} already tagged and unchanged, "
        f"{counts.filtered} outside *{args.suffix} ({counts.listed / max(elapsed, 1e-9):,.0f} listed/s)"
    )
    print(_cost(counts.estimated_cost()))
    return 0


def retag(args: argparse.Namespace) -> int:
    from cliptag_cli.retag import JOB, Preview, Retag

    target = Target.from_args(args)
    table = Table(target.table, target.dynamodb)
    if not args.dry_run and not args.no_wake:
        _wake(target)
    deployment = DynamoDeployments(table).get()
    if deployment is None:
        print("error: no tagger has recorded what it runs yet (upload one image, or run without --no-wake)")
        return 1
    preview = None
    if args.model_dir:
        if not args.dry_run:
            print("error: --model-dir previews a vocabulary: use it with --dry-run, then deploy that model directory")
            return 1
        preview = Preview(table, args.model_dir, deployment.top_k, deployment.min_score, deployment.vector_index)
        if preview.model_key != deployment.model:
            print(f"error: {args.model_dir} holds another image encoder than the deployed one ({deployment.model})")
            return 1
        deployment = Deployment(
            deployment.model, "", preview.scoring, deployment.top_k, deployment.min_score, deployment.vector_index
        )
    checkpoints = DynamoCheckpoints(table)
    if args.restart:
        checkpoints.clear(JOB)
    feeder = None if args.dry_run else QueueFeeder(target.client("sqs"), target.queue_url, args.max_backlog)
    run = Retag(table, checkpoints, feeder, deployment, preview, page_size=args.page_size)
    started = time.monotonic()
    items = target.dynamodb.describe_table(TableName=target.table)["Table"].get("ItemCount")  # ~6 hours old
    with _progress("item", int(items) if items else None) as bar:
        counts = run.run(bar)
    elapsed = time.monotonic() - started
    print(f"scoring {deployment.scoring}: {counts.due} objects due a re-tag", end="")
    print(
        f", {counts.sent} sent in {counts.messages} messages ({counts.sent / max(elapsed, 1e-9):,.0f}/s)"
        if feeder
        else ""
    )
    if preview is not None:
        print(
            f"re-scored locally: {counts.tags_changed} tag items change, {counts.unchanged_objects} objects keep "
            f"their tags; {counts.write_units} write units"
        )
    print(_cost(counts.estimated_cost(deployment.top_k)))
    return 0


def object_count(target: Target, prefix: str) -> int | None:
    """The bucket's object count from S3's daily CloudWatch metric (for the progress bar's ETA);
    None where there is none (a new bucket, the local stack) or only part of the bucket is listed."""
    if prefix:
        return None
    now = time.time()
    try:
        points = target.client("cloudwatch").get_metric_statistics(
            Namespace="AWS/S3",
            MetricName="NumberOfObjects",
            Dimensions=[
                {"Name": "BucketName", "Value": target.bucket},
                {"Name": "StorageType", "Value": "AllStorageTypes"},
            ],
            StartTime=now - 3 * 86400,
            EndTime=now,
            Period=86400,
            Statistics=["Average"],
        )["Datapoints"]
    except Exception:  # no permission, no metric: a bar without an ETA
        return None
    return int(max(points, key=lambda p: p["Timestamp"])["Average"]) if points else None


def _wake(target: Target, timeout_s: float = 120.0) -> None:
    """Send a ping through the queue so a freshly deployed tagger starts and records what it runs."""
    sqs = target.client("sqs")
    sqs.send_message(QueueUrl=target.queue_url, MessageBody=PING_BODY)
    feeder = QueueFeeder(sqs, target.queue_url)
    deadline = time.monotonic() + timeout_s
    while feeder.backlog() > 0 and time.monotonic() < deadline:
        time.sleep(1.0)


def failures(args: argparse.Namespace) -> int:
    from cliptag_cli.failures import failed_objects, format_failure

    target = Target.from_args(args)
    count = 0
    for record in failed_objects(DynamoFailureIndex(Table(target.table, target.dynamodb)), target.bucket):
        print(format_failure(record))
        count += 1
        if args.limit and count >= args.limit:
            break
    print(f"{count} failed object(s) in s3://{target.bucket}", file=sys.stderr)
    return 0


def enable_eventbridge_command(args: argparse.Namespace) -> int:
    import boto3

    from cliptag_cli.eventbridge import enable_eventbridge

    s3 = Target.local(args.local_state).client("s3") if args.local else boto3.client("s3", region_name=args.region)
    changed = enable_eventbridge(s3, args.bucket)
    print(f"EventBridge notifications {'switched on' if changed else 'were already on'} for s3://{args.bucket}")
    return 0


def _add_job_arguments(p: argparse.ArgumentParser, dry_run_help: str) -> None:
    """What the resumable jobs (backfill, retag) share."""
    p.add_argument("--dry-run", action="store_true", help=dry_run_help)
    p.add_argument("--restart", action="store_true", help="ignore the checkpoint of an interrupted run")
    p.add_argument(
        "--max-backlog",
        type=int,
        default=DEFAULT_MAX_BACKLOG,
        help=f"wait while the queue holds this many messages (default {DEFAULT_MAX_BACKLOG})",
    )
    add_target_arguments(p)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cliptag", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "backfill",
        help="tag the objects that were in the bucket before the stack",
        description="List the bucket (or read an S3 Inventory report) and send every object not yet tagged by the "
        "deployed model, or changed since, to the tagging queue. Resumable: run it again after an interruption and "
        "it continues from the checkpoint it keeps in the table.",
    )
    p.add_argument("--prefix", default="", help="only keys starting with this")
    p.add_argument("--suffix", default="", help="only keys ending with this, e.g. .jpg")
    p.add_argument(
        "--inventory",
        metavar="S3_URI",
        help="read an S3 Inventory report (CSV) instead of listing: s3://bucket/path/manifest.json",
    )
    p.add_argument("--page-size", type=int, default=1000, help="keys listed per request and per checkpoint (max 1000)")
    _add_job_arguments(p, "count and estimate the cost; send nothing")
    p.set_defaults(fn=backfill)

    p = sub.add_parser(
        "retag",
        help="re-tag after a vocabulary, threshold or TopK change, without the model",
        description="Find objects whose tags were chosen with another vocabulary, TopK or minimum score than the "
        "deployed tagger's and have the tagger re-score their stored embeddings: no S3 read, no inference, and "
        "unchanged tags write nothing. Resumable like backfill.",
    )
    p.add_argument(
        "--model-dir", help="with --dry-run: preview this exported model directory's vocabulary (exact tag changes)"
    )
    p.add_argument("--no-wake", action="store_true", help="do not ping the tagger first (it records what it runs)")
    p.add_argument("--page-size", type=int, help="table items read per Scan page and per checkpoint (default: 1 MB)")
    _add_job_arguments(p, "count and estimate the write units; send nothing")
    p.set_defaults(fn=retag)

    p = sub.add_parser(
        "failures",
        help="list the objects that could not be tagged, with their reasons",
        description="Failed objects, newest first, from the table's sparse failure index (no Scan).",
    )
    p.add_argument("--limit", type=int, default=0, help="at most this many (default: all)")
    add_target_arguments(p)
    p.set_defaults(fn=failures)

    p = sub.add_parser(
        "enable-eventbridge",
        help="switch on a bucket's EventBridge notifications (for ExistingBucketName)",
        description="Add EventBridge to the bucket's notification configuration, keeping the queue, topic and "
        "Lambda notifications it already has. S3 delivers its events to EventBridge's default bus free of charge.",
    )
    p.add_argument("--bucket", required=True, help="the bucket to switch on")
    p.add_argument("--region", help="its Region (default: your AWS configuration's)")
    p.add_argument("--local", action="store_true", help="the bucket is in the local stack")
    p.add_argument("--local-state", default="build/local-stack.json", help="the local stack's endpoints")
    p.set_defaults(fn=enable_eventbridge_command)

    add_gallery_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.fn(args))
