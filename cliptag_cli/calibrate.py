"""``cliptag calibrate --from-decisions``: per-tag thresholds from the confirmations and rejections
people made, on the stored embeddings (no model, no S3 read).

Every content's decisions are read (a Scan of the table for its DECISIONS items) and scored from
their stored embeddings with the model directory's tag embeddings; for each tag with enough
confirmed and rejected photos, the evaluation harness's calibration
(``model_export.evaluation.calibrate``) picks the lowest threshold whose precision on the decided
photos reaches the target (a tag without rejections would reach any precision at its lowest
confirmed score: it needs ``--min-rejected``). The table is shown and nothing is written;
``--apply`` writes the thresholds into the model directory's vocabulary (no tag is embedded
again) and previews the re-tag (the model's tags from the stored embeddings; the tagger applies
decisions and taught tags on top), which is then deployed and re-tagged like any vocabulary
edit: `cliptag retag`.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from cliptag import keys
from cliptag.adapters.dynamodb import Table
from cliptag.adapters.dynamodb.decisions import decisions_from_item
from cliptag.adapters.dynamodb.table import typed
from cliptag.records import Decision

from cliptag_cli.library import stored
from cliptag_cli.target import Target


@dataclass(frozen=True)
class Proposal:
    tag: str
    confirmed: int
    rejected: int
    current: float  # the threshold the tag has now
    threshold: float | None  # None: left as it is (the note says why)
    precision: float  # on the decided photos, at the proposed threshold (NaN when None)
    recall: float
    precision_now: float  # the same at the current threshold
    recall_now: float
    note: str


def decided_contents(table: Table) -> Iterator[tuple[str, dict[str, Decision]]]:
    """(content id, its decisions) for every content people decided on: a Scan of the table."""
    start = None
    while True:
        items, start, _ = table.scan_page(
            start,
            None,
            FilterExpression="#sk = :d",
            ExpressionAttributeNames={"#sk": keys.SK},
            ExpressionAttributeValues=typed({":d": keys.decisions_sk()}),
        )
        for item in items:
            yield keys.content_id_from_pk(item[keys.PK]), decisions_from_item(item)
        if start is None:
            return


def _at(scores: np.ndarray, truth: np.ndarray, threshold: float) -> tuple[float, float]:
    given = scores >= threshold
    found = int((given & truth).sum())
    return (found / int(given.sum()) if given.any() else float("nan")), found / max(int(truth.sum()), 1)


def proposals(args: argparse.Namespace, table: Table, model_key: str) -> list[Proposal]:
    from cliptag.bundle import ModelBundle
    from cliptag.scoring import TagScorer

    from model_export.evaluation.calibrate import calibrate

    bundle = ModelBundle.open(args.model_dir)
    if bundle.model_key != model_key:
        raise SystemExit(f"error: {args.model_dir} holds another image encoder than the deployed one ({model_key})")
    decided = dict(decided_contents(table))
    found = stored(table, model_key, decided)
    vocab = bundle.vocabulary
    default = bundle.default_threshold if args.min_score is None else args.min_score
    current = {t.name: default if t.threshold is None else t.threshold for t in vocab.tags}
    scorer = TagScorer.build(
        vocab.names, bundle.tag_embeddings, [None] * len(vocab.tags), default, 1, bundle.score_transform
    )
    ids = [c for c in decided if c in found]
    if not ids:
        return []
    scores = scorer.scores(np.stack([found[c] for c in ids]))
    out = []
    for tag in sorted({t for c in ids for t in decided[c]} & set(current)):
        rows = [i for i, c in enumerate(ids) if tag in decided[c]]
        column = scores[rows, scorer.positions[tag]]
        truth = np.array([decided[ids[i]][tag].verdict == "confirmed" for i in rows])
        (cal,) = calibrate(column[:, None], truth[:, None], (tag,), args.target_precision, args.min_confirmed)
        now = _at(column, truth, current[tag])
        confirmed = int(truth.sum())
        if cal.threshold is not None and len(rows) - confirmed < args.min_rejected:
            cal = dataclasses.replace(
                cal,
                threshold=None,
                precision=float("nan"),
                recall=float("nan"),
                note=f"fewer than {args.min_rejected} rejections",
            )
        out.append(
            Proposal(
                tag,
                confirmed,
                len(rows) - confirmed,
                current[tag],
                cal.threshold,
                cal.precision,
                cal.recall,
                *now,
                cal.note,
            )
        )
    return out


def _pr(precision: float, recall: float) -> str:
    return f"{'-' if precision != precision else f'{precision:.0%}'}/{recall:.0%}"  # NaN: nothing given


def show(found: list[Proposal], target: float) -> str:
    row = "{:<28} {:>4} {:>4}  {:>9} {:>9}  {:>9} {:>9}  {}"
    lines = [row.format("tag", "+", "-", "now", "P/R", "proposed", "P/R", "note")]
    for p in found:
        proposed = "-" if p.threshold is None else f"{p.threshold:.6f}"
        after = "" if p.threshold is None else _pr(p.precision, p.recall)
        now = _pr(p.precision_now, p.recall_now)
        lines.append(row.format(p.tag[:28], p.confirmed, p.rejected, f"{p.current:.6f}", now, proposed, after, p.note))
    changed = sum(1 for p in found if p.threshold is not None and p.threshold != p.current)
    lines.append(f"{len(found)} tags with decisions; {changed} thresholds would change (target precision {target:.0%})")
    return "\n".join(lines)


def command(args: argparse.Namespace) -> int:
    from cliptag_cli.retag import Preview, deployed, send

    target = Target.from_args(args)
    table = Table(target.table, target.dynamodb)
    deployment = deployed(table)
    if deployment is None:
        print("error: no tagger has recorded what it runs yet", file=sys.stderr)
        return 1
    args.min_score = deployment.min_score
    found = proposals(args, table, deployment.model)
    if not found:
        print("no decisions yet: confirm and reject tags first (cliptag confirm / reject, or the gallery)")
        return 0
    print(show(found, args.target_precision))
    thresholds = {p.tag: p.threshold for p in found if p.threshold is not None and p.threshold != p.current}
    if not thresholds:
        return 0
    if not args.apply:
        print("nothing written: --apply writes them into the model directory (then deploy it and `cliptag retag`)")
        return 0
    from model_export.evaluation.calibrate import write_thresholds

    write_thresholds(Path(args.model_dir), thresholds)
    print(f"wrote {len(thresholds)} thresholds into {args.model_dir}; what a re-tag will change:")
    preview = Preview(table, args.model_dir, deployment.top_k, deployment.min_score, deployment.vector_index)
    planned = dataclasses.replace(deployment, vocabulary_version="", scoring=preview.scoring)
    dry = argparse.Namespace(dry_run=True, restart=False, max_backlog=0, page_size=None)
    send(target, table, planned, dry, preview)
    print("deploy it (make deploy, or the local stack's redeploy), then: cliptag retag")
    return 0


def add_calibrate_parser(sub: Any, add_target_arguments: Any) -> None:
    p = sub.add_parser(
        "calibrate",
        help="per-tag thresholds from people's confirmations and rejections (no model)",
        description="Score every decided photo's stored embedding with the model directory's tags and pick, for each "
        "tag with enough confirmed photos, the lowest threshold whose precision on the decided photos reaches the "
        "target. Shows the table; --apply writes the thresholds into the model directory and shows the exact "
        "changes a re-tag will make; deploy it, then `cliptag retag`.",
    )
    p.add_argument("--from-decisions", action="store_true", required=True, help="calibrate on people's decisions")
    p.add_argument("--model-dir", required=True, help="the deployed model's exported directory (written by --apply)")
    p.add_argument("--target-precision", type=float, default=0.9, help="precision each threshold must reach (0.9)")
    p.add_argument("--min-confirmed", type=int, default=5, help="confirmed photos a tag needs to be calibrated (5)")
    p.add_argument("--min-rejected", type=int, default=3, help="rejected photos a tag needs to be calibrated (3)")
    p.add_argument("--apply", action="store_true", help="write the thresholds into --model-dir")
    add_target_arguments(p)
    p.set_defaults(fn=command)
