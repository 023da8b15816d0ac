"""``cliptag teach``: a tag of your own, taught from example photos, without the model.

The examples' embeddings are the ones the tagger stored (no S3 read, no inference). The tag is
fitted (``cliptag.teaching``), its expected precision and recall printed, then kept in the table
(``cliptag.adapters.dynamodb.taught``) and the library re-tagged by the existing re-tag
machinery: every tagged object is re-scored from its stored embedding. ``--remove`` forgets a
taught tag the same way; teaching a name again adds the new examples to the ones it had.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from cliptag import keys
from cliptag.adapters.dynamodb import DynamoTaughtTags, Table
from cliptag.lexicon import MAX_TAG_LENGTH, TAG_PATTERN, fold
from cliptag.records import Deployment
from cliptag.taught import TaughtTag
from cliptag.teaching import Fit, TeachingError, fit

from cliptag_cli.library import Unusable, background, embeddings_of
from cliptag_cli.target import Target


class Refused(Exception):
    """Why the tag cannot be taught as asked."""


COMMON = 0.05  # a share of the library scoring like the examples that deserves a warning


def report(name: str, result: Fit, examples: int, negatives: int) -> str:
    found = sum(s >= result.threshold for s in result.held_out)
    lines = [
        f"{name!r}: a {result.method} from {examples} example(s) and {negatives} marked negative(s); "
        f"threshold {result.threshold:.4f} (cosine)",
        f"  each example left out scores {', '.join(f'{s:.4f}' for s in result.held_out)}: "
        f"{found} of {examples} found (expected recall {result.recall:.0%})",
        f"  {result.negatives_passing} of {result.negatives} negatives pass (marked, and library photos sampled): "
        f"expected precision {result.precision:.0%}",
    ]
    if result.alike:
        lines.append(
            f"  {result.alike} of {result.sampled} library photos sampled ({result.alike_share:.1%}) score like the "
            "examples left out: most likely the same thing, not counted as negatives; about that share of the "
            "library will get the tag"
        )
    if result.alike_share > COMMON:
        lines.append(
            "  warning: that is a large share: if the tag should be rarer, add photos that do not show it "
            "(--negatives) or more varied examples"
        )
    return "\n".join(lines)


def vocabulary_names(target: Target) -> set[str]:
    """The deployed vocabulary's names and synonyms, folded (from the API's /tags)."""
    from cliptag_cli.gallery.command import credentials
    from cliptag_cli.gallery.upstream import SignedApi

    answer = SignedApi(target.api_url, target.region, credentials(target)).get("/tags")
    if answer.status != 200:
        raise Refused(f"could not read the vocabulary from the API ({answer.status}): {answer.body[:200]!r}")
    listed = json.loads(answer.body)["tags"]
    return {
        fold(n) for t in listed if t.get("source", "vocabulary") == "vocabulary" for n in [t["name"], *t["synonyms"]]
    }


def caller(target: Target) -> str:
    try:
        return str(target.client("sts").get_caller_identity()["Arn"])
    except Exception:
        return ""


@dataclass(frozen=True)
class Request:
    """What a person asks to teach (keys in the stack's bucket)."""

    name: str
    examples: list[str]
    negatives: list[str] = field(default_factory=list)
    category: str | None = None  # None: the one it had (or none)
    replace: bool = False  # forget the examples it was taught with before


@dataclass(frozen=True)
class Lesson:
    """A fitted tag, before it is kept."""

    fit: Fit
    tag: TaughtTag

    @property
    def report(self) -> str:
        return report(self.tag.name, self.fit, len(self.tag.examples), len(self.tag.negatives))

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.tag.name,
            "category": self.tag.category,
            "method": self.fit.method,
            "threshold": self.fit.threshold,
            "examples": len(self.tag.examples),
            "negatives": len(self.tag.negatives),
            "held_out": list(self.fit.held_out),
            "recall": self.fit.recall,
            "precision": self.fit.precision,
            "negatives_scored": self.fit.negatives,
            "negatives_passing": self.fit.negatives_passing,
            "alike": self.fit.alike,
            "sampled": self.fit.sampled,
            "report": self.report,
        }


def lesson(target: Target, table: Table, deployment: Deployment, request: Request) -> Lesson:
    """The tag ``request`` asks for, fitted on the stored embeddings; Refused when it cannot be."""
    name = request.name.strip()
    if not re.match(TAG_PATTERN, name) or len(name) > MAX_TAG_LENGTH:
        raise Refused(
            f"{name!r} cannot be a tag's name: letters, digits and spaces (and ' & . , ( ) ! + -), "
            f"at most {MAX_TAG_LENGTH} characters"
        )
    if "," in name:  # GET /images?all= and none= separate tags with commas
        raise Refused(f"{name!r}: a taught tag's name has no comma")
    store = DynamoTaughtTags(table)
    head = store.head()
    same = [other for other in head if fold(other) == fold(name) and other != name]
    if same:
        raise Refused(f"{name!r} is taught already as {same[0]!r}: teach that name (names match in any case)")
    if fold(name) in vocabulary_names(target):
        raise Refused(f"{name!r} is a tag (or synonym) of the vocabulary: confirm it on photos instead")
    known = store.load({name: head[name].digest}) if name in head else []
    # Its earlier examples are kept, under another model too (fitted again on this one's embeddings).
    before = known[0] if known and not request.replace else None
    ref = lambda key: keys.object_ref(target.bucket, key)  # noqa: E731
    positives = list(dict.fromkeys([*(before.examples if before else ()), *map(ref, request.examples)]))
    negatives = list(dict.fromkeys([*(before.negatives if before else ()), *map(ref, request.negatives)]))
    if set(positives) & set(negatives):
        raise Refused(f"both an example and a negative: {', '.join(sorted(set(positives) & set(negatives)))}")
    try:
        vectors = embeddings_of(table, deployment, positives + negatives)
    except Unusable as exc:
        raise Refused(str(exc)) from exc
    own = {content for content, _ in vectors.values()}
    sample = background(table, deployment.model, own, zlib.crc32(name.encode("utf-8")))
    try:
        result = fit(
            np.stack([vectors[r][1] for r in positives]),
            np.stack([vectors[r][1] for r in negatives]) if negatives else np.zeros((0, 0), np.float32),
            sample,
        )
    except TeachingError as exc:
        raise Refused(str(exc)) from exc
    category = request.category if request.category is not None else (before.category if before else "")
    tag = TaughtTag(
        name=name,
        vector=result.vector,
        threshold=result.threshold,
        model=deployment.model,
        category=category.strip(),
        method=result.method,
        examples=tuple(positives),
        negatives=tuple(negatives),
        precision=round(result.precision, 4),
        recall=round(result.recall, 4),
        by=caller(target),
        at=int(time.time()),
    )
    return Lesson(result, tag)


def command(args: argparse.Namespace) -> int:
    from cliptag_cli.retag import opened

    target, table, deployment = opened(args)
    if deployment is None:
        print("error: no tagger has recorded what it runs yet (upload one image first)", file=sys.stderr)
        return 1
    store = DynamoTaughtTags(table)
    if args.remove:
        if args.dry_run:
            print(f"would forget {args.name!r} and re-tag the library")
            return 0
        if not store.remove(args.name):
            print(f"error: no taught tag {args.name!r}", file=sys.stderr)
            return 1
        print(f"forgot {args.name!r}; re-tagging the library without it")
    else:
        if not args.examples and args.name not in store.head():
            print("error: --examples KEY... is needed to teach a new tag", file=sys.stderr)
            return 1
        request = Request(args.name, args.examples, args.negatives, args.category, args.replace)
        try:
            fitted = lesson(target, table, deployment, request)
        except Refused as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(fitted.report)
        if args.dry_run:
            return 0
        taught = fitted.tag
        store.put(taught)
        print(f"taught {taught.name!r}; re-tagging the library with it (no model, no S3 read)")
    retag_library(target, table, args, changed_at=time.time())
    return 0


SETTLE_S = 150.0  # a tagger batch that began before a change has ended by then (TaggerTimeout 120 s)


def retag_library(target: Target, table: Table, args: argparse.Namespace, changed_at: float) -> None:
    """Re-tag every record due under the taught set as it is now; then, once every tagger batch
    that began before the change has ended and the queue has drained, once more: a batch that read
    the taught tags just before they changed may commit after the first pass went by its keys."""
    from cliptag_cli.feed import QueueFeeder
    from cliptag_cli.retag import deployed, send

    now = deployed(table)  # its scoring names the taught set as it is now
    assert now is not None
    send(target, table, now, args)
    feeder = QueueFeeder(target.client("sqs"), target.queue_url)
    print("waiting for the batches tagging when it changed to end, and the queue to drain; then a last pass")
    while time.time() < changed_at + args.settle_seconds or feeder.backlog():
        time.sleep(min(5.0, max(0.2, args.settle_seconds / 10)))
    send(target, table, now, args)


def add_teach_parser(sub: Any, add_job_arguments: Callable[[argparse.ArgumentParser, str], None]) -> None:
    p = sub.add_parser(
        "teach",
        help="teach a tag of your own from example photos (no model)",
        description="Fit a tag from the stored embeddings of example photos (a prototype; a linear probe with 5 "
        "examples and 5 negatives or more), print its expected precision and recall (leave-one-out), then add it "
        "beside the vocabulary and re-tag the library from stored embeddings: no S3 read, no inference. Teaching "
        "a name again adds the new examples to its old ones (--replace starts over).",
    )
    p.add_argument("name", help="the tag's name (not one of the vocabulary's tags or synonyms)")
    p.add_argument("--examples", nargs="+", default=[], metavar="KEY", help="object keys of photos that show it")
    p.add_argument("--negatives", nargs="+", default=[], metavar="KEY", help="photos that do not (optional)")
    p.add_argument("--category", help="a category for it (default: none, or the one it had)")
    p.add_argument("--replace", action="store_true", help="forget the examples it was taught with before")
    p.add_argument("--remove", action="store_true", help="forget the taught tag and take it off every photo")
    p.add_argument("--no-wake", action="store_true", help="do not ping the tagger first (it records what it runs)")
    p.add_argument("--page-size", type=int, help="table items read per Scan page of the re-tag")
    p.add_argument(
        "--settle-seconds",
        type=float,
        default=SETTLE_S,
        help=f"before the last pass: how long a tagger batch may run (default {SETTLE_S:g}: TaggerTimeout 120 s)",
    )
    add_job_arguments(p, "fit and print the expected precision and recall; store and re-tag nothing")
    p.set_defaults(fn=command)
