"""``cliptag retag``: re-tag objects after a vocabulary, threshold or TopK change, without the model.

Objects whose record names another scoring (vocabulary version, TopK, minimum score, search
index) than the deployed tagger's, under the same model, are found by a Scan of the table (its
META items, read page by page; the position is saved after each page, so an interrupted run
continues where it stopped) and sent to the tagging queue as re-tag requests: the tagger re-scores each stored
content embedding and converges the object's items, so unchanged tags write nothing. No S3 read,
no inference; the tagger also puts each object's vector into the deployed search index (which
fills a new index). Objects embedded by another model are the backfill's: their content must be
read and embedded again.

``--dry-run --model-dir D`` previews a vocabulary before it is deployed: every due object is
re-scored locally from its stored embedding (the bulk scorer: thousands of rows per matrix
product) and the exact tag changes and write units are reported.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from cliptag import keys
from cliptag.adapters.dynamodb import Table
from cliptag.adapters.dynamodb.items import content_key
from cliptag.adapters.dynamodb.table import plain, typed
from cliptag.adapters.notifications import RETAG_MAX_OBJECTS, retag_body
from cliptag.records import Deployment

from cliptag_cli import prices
from cliptag_cli.feed import QueueFeeder
from cliptag_cli.jobs import Checkpoint

JOB = "retag"  # one re-tag at a time per table: its checkpoint's name (valid for one deployment)
# Per object: its META (1 WRU); per TAG item put or deleted, the item and its index entry (2 WRU).
WRU_META, WRU_PER_TAG_CHANGE = 1, 2


@dataclass(frozen=True)
class Due:
    bucket: str
    key: str
    content_id: str
    tags: dict[str, float]  # as its record lists them now


@dataclass
class Counts:
    scanned_bytes: int = 0  # of items the Scan read (every kind: records, tag items, embeddings)
    due: int = 0
    sent: int = 0
    messages: int = 0
    write_units: int = 0  # exact with a local re-scoring, else 0
    tags_changed: int = 0
    unchanged_objects: int = 0

    def estimated_cost(self, top_k: int) -> dict[str, float]:
        low, high = self.due * WRU_META, self.due * (WRU_META + 2 * top_k * WRU_PER_TAG_CHANGE)
        writes = self.write_units or (low + high) / 2
        return {
            # An eventually consistent Scan: 0.5 read unit per 4 KB of items read.
            "scan (reads)": self.scanned_bytes / 4096 * 0.5 * prices.DYNAMODB_PER_RRU,
            # Each message is sent, received and deleted in batches of 10: 0.3 requests a message.
            "messages": -(-self.due // RETAG_MAX_OBJECTS) * 0.3 * prices.SQS_PER_REQUEST,
            "lambda": self.due * prices.RETAG_LAMBDA_PER_OBJECT,
            "writes": writes * prices.DYNAMODB_PER_WRU,
        }


# A table item's mean size, as the benchmark measures it (~2 KB per object over ~11 items: its
# record, its tag items, its content's embedding).
ITEM_BYTES = 190


def due_pages(
    table: Table, deployment: Deployment, resume: dict[str, Any] | None, page_size: int | None = None
) -> Iterator[tuple[list[Due], int, dict[str, Any] | None]]:
    """Tagged objects under the deployed model whose scoring differs, one Scan page at a time,
    with the items the page read and the position after it (None after the last)."""
    params: dict[str, Any] = {
        "TableName": table.name,
        "FilterExpression": "#sk = :meta AND #status = :tagged AND model = :model AND scoring <> :scoring",
        "ProjectionExpression": "#b, #k, content_id, tags",
        "ExpressionAttributeNames": {"#sk": keys.SK, "#status": "status", "#b": "bucket", "#k": "key"},
        "ExpressionAttributeValues": typed(
            {":meta": keys.META, ":tagged": "tagged", ":model": deployment.model, ":scoring": deployment.scoring}
        ),
    }
    if resume:
        params["ExclusiveStartKey"] = resume
    if page_size:
        params["Limit"] = page_size  # items read per page (and per checkpoint), before the filter
    for page in table.client.get_paginator("scan").paginate(**params):
        found = [plain(raw) for raw in page.get("Items", [])]
        due = [
            Due(i["bucket"], i["key"], i["content_id"], {t["tag"]: float(t["score"]) for t in i["tags"]}) for i in found
        ]
        yield due, int(page.get("ScannedCount", 0)), page.get("LastEvaluatedKey")


def checkpoint_for(checkpoints: Any, deployment: Deployment) -> Checkpoint:
    """The re-tag's checkpoint, valid only for the deployment it was computed for: after another
    vocabulary or setting is deployed, the scan must start over (objects before the old position
    were sent for the old scoring)."""
    return Checkpoint(checkpoints, JOB, {"model": deployment.model, "scoring": deployment.scoring})


@dataclass
class Retag:
    table: Table
    checkpoint: Checkpoint
    feeder: QueueFeeder | None  # None: a dry run
    deployment: Deployment
    preview: Any = None  # a Preview: exact changes for a dry run
    page_size: int | None = None
    counts: Counts = field(default_factory=Counts)

    def run(self, progress: Any = None) -> Counts:
        resume = self.checkpoint.resume() if self.feeder is not None else None
        for due, scanned, position in due_pages(self.table, self.deployment, resume, self.page_size):
            self.counts.due += len(due)
            self.counts.scanned_bytes += scanned * ITEM_BYTES
            if self.preview is not None and due:
                self.preview.measure(due, self.counts)
            if self.feeder is not None and due:
                bodies = [
                    retag_body([(d.bucket, d.key) for d in due[at : at + RETAG_MAX_OBJECTS]])
                    for at in range(0, len(due), RETAG_MAX_OBJECTS)
                ]
                self.feeder.send(bodies)
                self.counts.sent += len(due)
                self.counts.messages += len(bodies)
            if self.feeder is not None and position:
                self.checkpoint.save(position)
            if progress is not None:  # items scanned: the table's item count is the total
                progress.update(scanned)
                progress.set_postfix(due=self.counts.due, sent=self.counts.sent, refresh=False)
        if self.feeder is not None:
            self.checkpoint.clear()
        return self.counts


class Preview:
    """Re-scores due objects locally with a model directory's vocabulary: what a re-tag would change."""

    def __init__(
        self, table: Table, model_dir: str, top_k: int, min_score: float | None, vector_index: str = ""
    ) -> None:
        from cliptag.bundle import ModelBundle
        from cliptag.scoring import TagScorer, scoring_version

        from model_export.rescoring import BulkScorer

        bundle = ModelBundle.open(model_dir)
        threshold = bundle.default_threshold if min_score is None else min_score
        vocab = bundle.vocabulary
        per_tag = [t.threshold for t in vocab.tags]
        scorer = TagScorer.build(vocab.names, bundle.tag_embeddings, per_tag, threshold, top_k, bundle.score_transform)
        self.scorer = BulkScorer(scorer)
        self.table, self.model_key = table, bundle.model_key
        self.scoring = scoring_version(vocab.version, top_k, threshold, vector_index)

    def measure(self, due: list[Due], counts: Counts) -> None:
        found = self.table.batch_get([content_key(d.content_id, self.model_key) for d in due])
        codes = {  # the stored int8 codes, as the bulk scorer takes them
            keys.content_id_from_pk(item[keys.PK]): np.frombuffer(
                bytes(getattr(item["embedding"], "value", item["embedding"])), np.int8
            )
            for item in found
            if item.get("embedding") is not None
        }
        rows = [d for d in due if d.content_id in codes]
        if not rows:
            return
        for d, tags in zip(rows, self.scorer.tags(np.stack([codes[d.content_id] for d in rows])), strict=True):
            new = {t.tag: t.score for t in tags}
            changed = sum(1 for t in d.tags.keys() | new.keys() if d.tags.get(t) != new.get(t))
            counts.tags_changed += changed
            counts.unchanged_objects += changed == 0
            counts.write_units += WRU_META + WRU_PER_TAG_CHANGE * changed


def deployed(table: Table) -> Deployment | None:
    """What the tagger runs, its scoring naming the taught set of its model: the version records
    are stamped with (``cliptag.taught``)."""
    from cliptag.adapters.dynamodb import DynamoDeployments, DynamoTaughtTags
    from cliptag.taught import set_version, with_taught

    found = DynamoDeployments(table).get()
    if found is None:
        return None
    version = set_version(DynamoTaughtTags(table).head(), found.model)
    return dataclasses.replace(found, scoring=with_taught(found.scoring, version))


def send(target: Any, table: Table, deployment: Deployment, args: argparse.Namespace, preview: Any = None) -> Counts:
    """Find the objects due a re-tag under ``deployment`` and send them (unless ``args.dry_run``);
    print what was done and its cost."""
    from cliptag.adapters.dynamodb import DynamoCheckpoints

    from cliptag_cli.progress import bar, cost_line

    checkpoint = checkpoint_for(DynamoCheckpoints(table), deployment)
    if args.restart:
        checkpoint.clear()
    feeder = None if args.dry_run else QueueFeeder(target.client("sqs"), target.queue_url, args.max_backlog)
    run = Retag(table, checkpoint, feeder, deployment, preview, page_size=args.page_size)
    started = time.monotonic()
    items = target.dynamodb.describe_table(TableName=target.table)["Table"].get("ItemCount")  # ~6 hours old
    with bar("item", int(items) if items else None) as progress:
        counts = run.run(progress)
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
    print(cost_line(counts.estimated_cost(deployment.top_k)))
    return counts


def opened(args: argparse.Namespace) -> tuple[Any, Table, Deployment | None]:
    """The stack ``args`` names, its table, and what its tagger runs (pinged first to record it,
    unless a dry run or ``--no-wake``)."""
    from cliptag_cli.target import Target
    from cliptag_cli.wake import wake

    target = Target.from_args(args)
    table = Table(target.table, target.dynamodb)
    if not args.dry_run and not args.no_wake:
        wake(target)
    return target, table, deployed(table)


def command(args: argparse.Namespace) -> int:
    """``cliptag retag``: find the objects due a re-tag and send them; report counts and cost."""
    target, table, deployment = opened(args)
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
        deployment = dataclasses.replace(deployment, vocabulary_version="", scoring=preview.scoring)
    send(target, table, deployment, args, preview)
    return 0
