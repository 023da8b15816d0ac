"""``cliptag``: operate a cliptag stack (a deployed one with --stack NAME, else the local one)."""

from __future__ import annotations

import argparse
import sys

from cliptag.adapters.dynamodb import DynamoFailureIndex, Table

from cliptag_cli import backfill, retag
from cliptag_cli.calibrate import add_calibrate_parser
from cliptag_cli.captions import add_captions_parser
from cliptag_cli.decide import add_decision_parsers
from cliptag_cli.feed import DEFAULT_MAX_BACKLOG
from cliptag_cli.gallery.command import add_gallery_parser
from cliptag_cli.jobs import INTERRUPTED
from cliptag_cli.target import Target, add_target_arguments
from cliptag_cli.teach import add_teach_parser
from cliptag_cli.verify.command import add_verify_parser


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


def _add_job_arguments(
    p: argparse.ArgumentParser, dry_run_help: str, max_backlog: int = DEFAULT_MAX_BACKLOG, queue: str = "queue"
) -> None:
    """What the resumable jobs (backfill, retag, teach, captions) share."""
    p.add_argument("--dry-run", action="store_true", help=dry_run_help)
    p.add_argument("--restart", action="store_true", help="ignore the checkpoint of an interrupted run")
    p.add_argument(
        "--max-backlog",
        type=int,
        default=max_backlog,
        help=f"wait while the {queue} holds this many messages (default {max_backlog})",
    )
    add_target_arguments(p)


RESUMABLE = {"backfill", "retag", "verify", "teach", "captions"}


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
    p.add_argument(
        "--model-dir",
        help="with --dry-run: count for this exported model directory instead of the deployed one (the cost of a"
        " switch of model, before deploying it)",
    )
    p.add_argument("--no-wake", action="store_true", help="do not ping the tagger first (it records what it runs)")
    _add_job_arguments(p, "count and estimate the cost; send nothing to tag (the tagger is still pinged: --no-wake)")
    p.set_defaults(fn=backfill.command)

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
    p.set_defaults(fn=retag.command)

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

    add_verify_parser(sub, add_target_arguments, DEFAULT_MAX_BACKLOG)
    add_decision_parsers(sub, add_target_arguments)
    add_teach_parser(sub, _add_job_arguments)
    add_calibrate_parser(sub, add_target_arguments)
    add_captions_parser(sub, _add_job_arguments)
    add_gallery_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.fn(args))
    except KeyboardInterrupt:
        # The jobs save their checkpoint after each page they sent, so it is consistent here.
        resumable = args.command in RESUMABLE and not getattr(args, "dry_run", False)
        print(f"\n{INTERRUPTED if resumable else 'interrupted'}", file=sys.stderr)
        return 130  # 128 + SIGINT, as shells report it
