"""``cliptag retag`` after vocabulary edits, through the local stack's queue and tagger (moto in its
own process; the poller runs the tagger's handler in this process): objects re-tagged per second,
DynamoDB write units per re-tagged object when none, one or all of its tags change, the handler's
time per object, and the cost per 1,000,000 re-tagged objects next to Rekognition's.

The model directory is copied (its encoders linked, not copied) and given small vocabularies with
``model_export``'s re-vocabulary: fewer tags than TopK, each with threshold -1, so every object
carries every tag. A re-tag runs no image encoder, so the figures do not depend on its size (the
tiny model keeps the set-up short). Objects are tagged under the first vocabulary, then each edit
is deployed (``LocalStack.redeploy``) and re-tagged with ``cliptag_cli.retag.Retag``; the tagger's
handler is timed and its table writes metered (``bench.writes``) from the first send until the queue
has drained (every record then shows the new scoring).
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import tempfile
import time
import uuid
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench import common
from bench.common import DYNAMODB_PER_WRU, LAMBDA_GB_SECOND, LAMBDA_PER_REQUEST, REKOGNITION_PER_1000
from bench.context import Bench, Measure
from bench.writes import item_bytes, metering
from cliptag_cli.feed import QueueFeeder

if TYPE_CHECKING:
    from cliptag.adapters.dynamodb import DynamoObjectStore

    from devstack.stack import LocalStack

TEMPLATES = 'templates: ["a photo of a {}."]\n'
CARRIED = ("dog", "cat", "beach", "forest", "city")
RENAMED = ("puppy", "kitten", "shore", "woods", "village")
# Each vocabulary as an edit of the one before: (name, tags every object carries, tags no score
# reaches). The first tags the objects; each other is one re-tag.
VOCABULARIES = (
    ("base", CARRIED, ()),
    ("none_first", CARRIED, ("zebra",)),  # a tag added that nothing reaches: no tag changes
    ("one", (*CARRIED[:-1], "town"), ("zebra",)),  # city renamed town: one tag changes
    ("all", RENAMED, ("zebra",)),  # every tag renamed
    ("none", RENAMED, ("zebra", "okapi")),  # another tag nothing reaches
)
# Tags changed per object by each re-tag. The first re-tag after tagging also rewrites the ~1% of
# TAG items whose score moves in its 6th decimal (a new image is scored from the int8 round trip of
# its embedding, whose stored form is that round trip encoded again: cliptag.pipeline._embed);
# later ones score exactly what is stored. Hence two 0-change cases.
CHANGED = {"none_first": 0, "one": 1, "all": len(CARRIED), "none": 0}
NOTES = {"none_first": " (first re-tag)", "none": " (a later one)"}


def changing(case: str) -> str:
    k = CHANGED[case]
    return f"all {k} tags changing" if k == len(CARRIED) else f"{k} tag{'s' * (k != 1)} changing"


def expected_units(case: str) -> int:
    """META (1 WRU) + per changed tag, the old TAG item deleted and the new one put, each with its
    index entry (2 x 2 WRU)."""
    return 1 + 4 * CHANGED[case]


def vocabulary_yaml(tags: Sequence[str], never: Sequence[str]) -> str:
    entries = [f"{{name: {tag}, threshold: -1.0}}" for tag in tags]
    entries += [f"{{name: {tag}, threshold: 1.0}}" for tag in never]
    return f"{TEMPLATES}tags:\n  bench: [{', '.join(entries)}]\n"


def model_dirs(source: Path, root: Path) -> dict[str, Path]:
    """``source`` with each vocabulary in turn, each edited from the one before as a user would (tags
    kept keep their embeddings): the files a re-vocabulary rewrites copied, the rest linked."""
    from model_export.revocabulary import revocabulary

    manifest = json.loads((source / "manifest.json").read_text("utf-8"))
    rewritten = {"manifest.json", manifest["vocabulary"]["file"], manifest["tag_embeddings"]["file"]}
    dirs: dict[str, Path] = {}
    previous = ""
    for name, tags, never in VOCABULARIES:
        target = dirs[name] = root / name
        target.mkdir()
        for path in (dirs.get(previous) or source).iterdir():
            if path.name in rewritten:
                shutil.copy2(path, target / path.name)
            else:
                (target / path.name).symlink_to(path.resolve())
        (root / f"{name}.yaml").write_text(vocabulary_yaml(tags, never), "utf-8")
        revocabulary(target, root / f"{name}.yaml", progress=False)
        previous = name
    return dirs


@dataclass(frozen=True)
class Retagged:
    """One re-tag of ``objects`` through the stack."""

    objects: int
    seconds: float  # first send -> queue drained (every record then shows the new scoring)
    write_units: float  # the tagger's, metered
    handler_s: float  # the tagger's handler, summed over its invocations
    invocations: int
    dynamodb_calls: int  # the tagger's

    @property
    def rate(self) -> float:
        return self.objects / self.seconds

    @property
    def units(self) -> float:
        return self.write_units / self.objects


class FirstSend(QueueFeeder):
    """The CLI's feeder, noting when it first sends."""

    started = 0.0

    def send(self, bodies: Sequence[str]) -> None:
        self.started = self.started or time.perf_counter()
        super().send(bodies)


@contextmanager
def observed(client: Any) -> Iterator[tuple[list[float], list[str]]]:
    """(seconds of each call of the tagger's handler, the DynamoDB operations ``client`` sends)."""
    from handlers import tagger

    original, times, calls = tagger.handler, [], []

    def timed_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        start = time.perf_counter()
        try:
            result: dict[str, Any] = original(event, context)
            return result
        finally:
            times.append(time.perf_counter() - start)

    def count(model: Any, **_: Any) -> None:
        calls.append(model.name)

    tagger.handler = timed_handler  # the poller looks it up in its module at each call
    client.meta.events.register("before-call.dynamodb", count)
    try:
        yield times, calls
    finally:
        tagger.handler = original
        client.meta.events.unregister("before-call.dynamodb", count)


class Library:
    """The objects of this measure in the local stack, and the CLI's view of its table and queue."""

    def __init__(self, stack: LocalStack, count: int) -> None:
        from cliptag import keys
        from cliptag.adapters.dynamodb import DynamoCheckpoints, DynamoObjectStore, Table

        assert stack.info is not None
        self.stack, self.bucket, self.queue_url = stack, stack.info.bucket, stack.info.queue_url
        self.table = Table(stack.info.table, stack.client("dynamodb"))  # not the tagger's: not metered
        self.store: DynamoObjectStore = DynamoObjectStore(self.table)
        self.checkpoints = DynamoCheckpoints(self.table)
        self.keys = [f"retag/{uuid.uuid4().hex}.jpg" for _ in range(count)]
        self.refs = [keys.object_ref(self.bucket, key) for key in self.keys]

    def deploy(self, model_dir: Path) -> str:
        """Deploy ``model_dir`` and start its tagger (it records what it runs); its scoring."""
        from cliptag import wiring

        self.stack.redeploy(model_dir)
        wiring.pipeline()
        return wiring.deployment().scoring

    def upload(self, photos: list[bytes]) -> None:
        blobs = (photos * (len(self.keys) // len(photos) + 1))[: len(self.keys)]
        bodies = {key: common.fresh(blob) for key, blob in zip(self.keys, blobs, strict=True)}
        common.put_objects(self.stack.client("s3"), self.bucket, bodies)

    def scored(self, scoring: str) -> bool:
        """Every object's record shows ``scoring`` (its META, the last item a commit writes)."""
        records = self.store.get_many(self.refs)
        return all(ref in records and records[ref].scoring == scoring for ref in self.refs)

    def wait_idle(self, timeout_s: float = 300) -> None:
        """Until the queue is empty and nothing is in flight (the poller deletes a batch once its
        handler returned). One GetQueueAttributes a poll: it hardly loads the emulator it waits on."""
        feeder, deadline = QueueFeeder(self.stack.client("sqs"), self.queue_url), time.monotonic() + timeout_s
        while feeder.backlog():
            assert time.monotonic() < deadline, "the queue did not drain"
            time.sleep(0.05)

    def retag(self, model_dir: Path) -> Retagged:
        """Deploy ``model_dir``, then re-tag through the queue, metering the tagger's writes."""
        from cliptag import wiring

        from cliptag_cli.retag import Retag, checkpoint_for

        scoring = self.deploy(model_dir)  # the pipeline built first: its deployment record is not metered
        feeder = FirstSend(self.stack.client("sqs"), self.queue_url)
        with observed(wiring.table().client) as (times, calls), metering(wiring.table()) as meter:
            deployed = wiring.deployment()
            counts = Retag(self.table, checkpoint_for(self.checkpoints, deployed), feeder, deployed).run()
            assert counts.due == len(self.keys), f"{counts.due} objects due, not this measure's {len(self.keys)}"
            self.wait_idle()
            seconds = time.perf_counter() - feeder.started
        assert self.scored(scoring), "the re-tag did not reach every object"
        return Retagged(len(self.keys), seconds, meter.units, sum(times), len(times), len(calls))

    def bytes_per_object(self) -> float:
        """What a Scan of the table reads per object (all its items: META, TAG, content)."""
        pages = self.table.client.get_paginator("scan").paginate(TableName=self.table.name)
        return sum(item_bytes(item) for page in pages for item in page.get("Items", [])) / len(self.keys)


def cost_per_million(
    units: float, handler_s: float, invocations: float, memory_mb: int, scan_bytes: float
) -> dict[str, float]:
    """USD per 1,000,000 re-tagged objects by part, from the measured write units, handler seconds,
    invocations and Scan bytes per object; the Scan and SQS parts priced as ``cliptag retag`` does."""
    from cliptag_cli.retag import Counts

    million = Counts(due=1_000_000, scanned_bytes=int(scan_bytes * 1_000_000))
    estimate = million.estimated_cost(top_k=len(CARRIED))
    compute = handler_s * memory_mb / 1024 * LAMBDA_GB_SECOND["x86_64"] + invocations * LAMBDA_PER_REQUEST
    return {
        "writes": units * DYNAMODB_PER_WRU * 1e6,
        "scan": estimate["scan (reads)"],
        "SQS": estimate["messages"],
        "Lambda": compute * 1e6,
    }


def measure(bench: Bench, library: Library, dirs: dict[str, Path]) -> dict[str, Retagged]:
    scoring = library.deploy(dirs["base"])
    library.upload(bench.photos)
    library.wait_idle()
    assert library.scored(scoring), "not every object was tagged"
    bench.results["retag_bytes_per_object"] = library.bytes_per_object()
    return {case: library.retag(dirs[case]) for case in CHANGED}


def run(bench: Bench) -> None:
    from cliptag import wiring

    stack = bench.stack("poller")
    library = Library(stack, bench.scale.retag_objects)
    # Quiet while it runs (the rows come after): the re-vocabulary's summary lines, and Powertools,
    # which prints its metrics (off in the bench) whenever 100 pile up.
    quiet = contextlib.redirect_stdout(io.StringIO())
    with tempfile.TemporaryDirectory(prefix="cliptag-retag-") as root, quiet, warnings.catch_warnings():
        warnings.filterwarnings("ignore", "No application metrics")
        try:
            runs = measure(bench, library, model_dirs(bench.model_dir, Path(root)))
        finally:
            library.wait_idle()
            stack.redeploy(bench.model_dir)  # the other measures' model again
            wiring.pipeline()
    report(bench, runs)


def report(bench: Bench, runs: dict[str, Retagged]) -> None:
    n, memory_mb, cases = bench.scale.retag_objects, bench.args.memory_mb, ("none", "one", "all")
    bench.section(f"re-tag through the local stack ({n} objects, {len(CARRIED)} tags each; send -> queue drained)")
    rates = " / ".join(f"{runs[case].rate:.0f}" for case in cases)
    overall = len(runs) * n / sum(r.seconds for r in runs.values())
    label = "re-tagged per second, 0 / 1 / all tags changing"
    bench.row("retag", label, f"{rates} objects/s", "retag_per_s", overall)
    for case, r in runs.items():
        value = f"{r.units:8.2f} WRU (expected {expected_units(case)})"
        label = f"write units per object, {changing(case)}{NOTES.get(case, '')}"
        bench.row("retag", label, value, f"retag_wru_per_object_{case}", r.units)
        bench.data[f"retag_per_s_{case}"] = r.rate
    handler_s, invocations, calls = (
        sum(getattr(r, name) for r in runs.values()) / (len(runs) * n)
        for name in ("handler_s", "invocations", "dynamodb_calls")
    )
    ms = handler_s * 1000
    value = f"{ms:8.2f} ms  ({calls:.1f} DynamoDB calls to moto: {ms / calls:.0f} ms each)"
    bench.row("retag", "tagger handler per re-tagged object, in this process", value, "retag_handler_ms_per_object", ms)
    bench.data["retag_dynamodb_calls_per_object"] = calls
    scanned = bench.results["retag_bytes_per_object"]
    value = f"{scanned:8.0f} B  ({scanned / 8192:.2f} RRU eventually consistent)"
    label = "bytes a Scan reads per object (META, TAG items, embedding)"
    bench.row("retag", label, value, "retag_scan_bytes_per_object", scanned)
    rekognition = REKOGNITION_PER_1000 * 1000
    bench.section(
        f"cost per 1,000,000 re-tagged objects at {memory_mb} MB, x86_64 (Rekognition DetectLabels on as many "
        f"images: ${rekognition:,.0f})\nLambda at the handler time above (an upper bound: DynamoDB was moto); the "
        "Scan at the bytes above; SQS at 0.3 requests per message of 10 objects, as `cliptag retag` prices them"
    )
    for case in cases:
        parts = cost_per_million(runs[case].units, handler_s, invocations, memory_mb, scanned)
        total = sum(parts.values())
        detail = ", ".join(f"{name} ${value:.2f}" for name, value in parts.items())
        value = f"${total:8.2f}  ({detail}): {rekognition / total:,.0f}x cheaper than Rekognition"
        bench.row("retag", changing(case), value, f"retag_cost_per_million_{case}", total)
    bench.data.update(retag_objects=n, rekognition_per_million=rekognition)


MEASURE = Measure(
    "retag",
    "cliptag retag: objects re-tagged per second; write units and cost for 0, 1, all tags changed",
    run,
    stack="poller",
)
