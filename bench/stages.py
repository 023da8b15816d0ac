"""Stage by stage through each batch, the floor, and the full handler on the same photos.

Against the local stack (moto in its own process, real HTTP): S3 GET, SHA-256, decode +
preprocess, inference and scoring timed with the functions the tagger uses; the floor (bare
decode + bare ONNX Runtime on tensors) on the same batch in the same run; then the tagger's
handler on the same photos as new content (nothing cached) under new keys, its DynamoDB writes
metered (``bench.writes``). DynamoDB time is what the handler spent beyond the other stages.
"""

from __future__ import annotations

import statistics
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from cliptag.content import content_id
from cliptag.imaging import Limits, Preprocessing, load_pixels
from numpy.typing import NDArray

from bench.common import fresh, percentile, sqs_record, timed
from bench.context import Bench, Measure
from bench.writes import metering

if TYPE_CHECKING:
    from cliptag.encoder import ImageEncoder

STAGES = ("get", "hash", "decode", "infer", "score")


@dataclass
class StageRuns:
    """Milliseconds per batch, one entry per batch."""

    size: int
    per_stage: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in STAGES})
    floor_decode: list[float] = field(default_factory=list)
    floor_infer: list[float] = field(default_factory=list)
    handler_ms: list[float] = field(default_factory=list)

    def floor(self) -> float:
        """Bare decode + bare ONNX Runtime, ms per image (p50 of each)."""
        return (percentile(self.floor_decode, 50) + percentile(self.floor_infer, 50)) / self.size


def batches(bench: Bench) -> list[list[bytes]]:
    size = bench.args.batch_size
    photos = bench.photos[: size * bench.args.batches]
    return [photos[i : i + size] for i in range(0, len(photos) - size + 1, size)][: bench.args.batches]


def decode_all(prep: Preprocessing, blobs: list[bytes]) -> list[NDArray[np.float32]]:
    """Decode + preprocess each photo (stacked into a batch outside the timing, as before)."""
    return [load_pixels(b, prep, Limits())[1] for b in blobs]


def bare_inference(encoder: ImageEncoder, pixels: NDArray[np.float32]) -> float:
    """ms of one bare ONNX Runtime call on the tensor (no normalisation, no copy)."""
    return timed(encoder.session.run, None, {encoder.input_name: pixels})[0]


def upload(s3: Any, bucket: str, batch: list[bytes], prefix: str = "bench") -> list[str]:
    """Each photo as new content under a new key."""
    keys = [f"{prefix}/{uuid.uuid4().hex}.jpg" for _ in batch]
    for key, blob in zip(keys, batch, strict=True):
        s3.put_object(Bucket=bucket, Key=key, Body=fresh(blob))
    return keys


def measure(bench: Bench) -> StageRuns:
    from cliptag import wiring
    from handlers import tagger as tagger_handler

    from devstack.stack import FakeContext

    stack = bench.stack("batches")
    assert stack.info is not None
    pipeline, objects, bucket, s3 = wiring.pipeline(), wiring.objects(), stack.info.bucket, stack.client("s3")
    runs, units = StageRuns(bench.args.batch_size), []
    for batch in batches(bench):
        keys = upload(s3, bucket, batch)
        stage = runs.per_stage
        t, got = timed(lambda ks: [pipeline.reader.read(bucket, k, 1 << 30).data for k in ks], keys)
        stage["get"].append(t)
        stage["hash"].append(timed(lambda blobs: [content_id(b) for b in blobs], got)[0])
        t, decoded = timed(decode_all, pipeline.preprocessing, got)
        stage["decode"].append(t)
        pixels = np.stack(decoded)
        t, emb = timed(pipeline.encoder.embed, pixels)
        stage["infer"].append(t)
        stage["score"].append(timed(pipeline.scorer.tags, emb)[0])
        # Floor: bare ONNX Runtime on tensors + bare decode, same batch, same run.
        runs.floor_decode.append(stage["decode"][-1])
        runs.floor_infer.append(bare_inference(pipeline.encoder, pixels))
        # The full handler on the same photos as new content (nothing cached), new keys.
        handler_keys = upload(s3, bucket, batch)
        event = {"Records": [sqs_record(bucket, k) for k in handler_keys]}
        with metering(wiring.table()) as meter:
            t, result = timed(tagger_handler.handler, event, FakeContext("bench"))
        units.append(meter.units / len(batch))
        assert not result["batchItemFailures"], result
        runs.handler_ms.append(t)
        records = [objects.get(bucket, k) for k in handler_keys]
        assert all(r is not None for r in records)
    # DynamoDB time: what the handler spent beyond the stages measured above.
    runs.per_stage["write"] = [
        max(0.0, h - sum(runs.per_stage[k][i] for k in STAGES)) for i, h in enumerate(runs.handler_ms)
    ]
    bench.results["write_units"] = units
    bench.results["tags_per_image"] = statistics.mean(len(r.tags) for r in records if r)
    return runs


def floor_alone(bench: Bench) -> float:
    """The floor without the stack (for a partial run): bare decode + bare ONNX Runtime, per image."""
    pipeline = bench.pipeline()
    runs = StageRuns(bench.args.batch_size)
    for batch in batches(bench):
        t, decoded = timed(decode_all, pipeline.preprocessing, batch)
        runs.floor_decode.append(t)
        runs.floor_infer.append(bare_inference(pipeline.encoder, np.stack(decoded)))
    floor = runs.floor()
    bench.row("floor", "floor = bare decode + bare ONNX Runtime, per image", f"{floor:8.2f} ms")
    return floor


def floor(bench: Bench) -> float:
    """The floor of this run: from the stage runs when they ran, else measured on its own."""
    if "stages" in bench.results:
        runs: StageRuns = bench.results["stages"]
        return runs.floor()
    return bench.once("floor", lambda: floor_alone(bench))


def run(bench: Bench) -> None:
    runs = bench.once("stages", lambda: measure(bench))
    n, scorer = runs.size, bench.pipeline().scorer
    bench.section(
        f"per stage, batch of {n} COCO photos ({len(runs.handler_ms)} batches), ms per batch p50 / p95 (per image p50)"
    )
    for name, label in (
        ("get", "S3 GET (HTTP to local S3)"),
        ("hash", "SHA-256"),
        ("decode", "decode + preprocess"),
        ("infer", "inference (one call)"),
        ("score", f"scoring ({len(scorer.names):,} tags)"),
        ("write", "DynamoDB reads + writes (handler - other stages)"),
    ):
        values = runs.per_stage[name]
        p50 = percentile(values, 50)
        value = f"{p50:8.1f} / {percentile(values, 95):8.1f}   ({p50 / n:6.2f} per image)"
        bench.row("stages", label, value, key=f"stage_{name}_ms_p50", number=p50)
    handler, floor = percentile(runs.handler_ms, 50) / n, runs.floor()
    bench.row("floor", "handler, per image (p50)", f"{handler:8.2f} ms", "handler_ms_per_image", handler)
    bench.row(
        "floor", "floor = bare decode + bare ONNX Runtime, per image", f"{floor:8.2f} ms", "floor_ms_per_image", floor
    )
    ratio = handler / floor
    bench.row("floor", "handler / floor (target <= 1.3)", f"{ratio:8.2f} x", "handler_over_floor", ratio)
    bench.data["handler_ms_per_image_p95"] = percentile(runs.handler_ms, 95) / n


MEASURE = Measure(
    "stages", "S3 GET, hash, decode, inference, scoring, DynamoDB; handler vs floor", run, stack="batches"
)
