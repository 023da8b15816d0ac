"""The tagger's own cost: the handler's flow with S3 and DynamoDB answered in memory.

Three figures against the floor: no network wait at all (our code's own cost), each AWS call
first waiting a typical round trip (modelled AWS latency), and our ORT session options against
ORT's defaults in that same in-process handler, alternated (the options matter in the handler:
ORT's spinning threads slow the scoring after them).
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import statistics
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from aws_lambda_powertools.utilities.data_classes import SQSRecord
from cliptag.adapters import notifications
from cliptag.ordering import Claim, Stored
from cliptag.records import ContentRecord, Decision, Neighbour, ObjectBytes, ObjectRecord, VectorEntry, VectorFilter
from cliptag.taught import TaughtCache, TaughtEntry, TaughtTag
from numpy.typing import NDArray

from bench import stages
from bench.common import DYNAMODB_CALL_S, S3_GET_S, fresh, sqs_record
from bench.context import Bench, Measure

if TYPE_CHECKING:
    from cliptag.pipeline import TaggingPipeline

BUCKET = "cliptag-bench"


@dataclass(frozen=True)
class Latency:
    """What each call waits before it answers: one AWS round trip, or nothing. A sleep releases the
    GIL like a socket wait, so the pipeline's concurrency is exercised as against AWS."""

    s3_s: float = 0
    ddb_s: float = 0


class MemoryReader:
    """The ObjectReader port from memory (ETags computed up front, as S3 keeps them)."""

    def __init__(self, blobs: dict[str, bytes], latency: Latency) -> None:
        self.blobs, self.latency = blobs, latency
        self.etags = {key: hashlib.md5(data).hexdigest() for key, data in blobs.items()}

    def read(self, bucket: str, key: str, max_bytes: int, if_match: str = "") -> ObjectBytes:
        time.sleep(self.latency.s3_s)
        return ObjectBytes(self.blobs[key], self.etags[key])


class MemoryContents:
    """The ContentCache port: nothing cached, every claim granted, writes dropped."""

    def __init__(self, latency: Latency) -> None:
        self.latency = latency

    def get_many(self, content_ids: list[str]) -> dict[str, ContentRecord]:
        time.sleep(self.latency.ddb_s)
        return {}

    def claim(self, content_id: str, owner: str, lease_s: int) -> bool:
        time.sleep(self.latency.ddb_s)
        return True

    def put_many(self, contents: dict[str, ContentRecord]) -> None:
        time.sleep(self.latency.ddb_s)


class MemoryDecisions:
    """The DecisionStore port: no content has decisions (one batched read per batch)."""

    def __init__(self, latency: Latency) -> None:
        self.latency = latency

    def of_many(self, content_ids: list[str]) -> dict[str, dict[str, Decision]]:
        time.sleep(self.latency.ddb_s)
        return {}

    def record(self, content_id: str, decision: Decision) -> None:
        time.sleep(self.latency.ddb_s)

    def holders(self, content_id: str, limit: int) -> list[str]:
        time.sleep(self.latency.ddb_s)
        return []


class MemoryTaught:
    """The TaughtStore port: no taught tags (the head, read once per batch)."""

    def __init__(self, latency: Latency) -> None:
        self.latency = latency

    def head(self) -> dict[str, TaughtEntry]:
        time.sleep(self.latency.ddb_s)
        return {}

    def load(self, wanted: Mapping[str, str]) -> list[TaughtTag]:
        time.sleep(self.latency.ddb_s)
        return []


class MemoryVectors:
    """The VectorIndex port: PutVectors and DeleteVectors, one call each per batch; no neighbours."""

    def __init__(self, latency: Latency) -> None:
        self.latency = latency

    def put_many(self, entries: list[VectorEntry]) -> None:
        time.sleep(self.latency.ddb_s)

    def delete_many(self, refs: list[str]) -> None:
        time.sleep(self.latency.ddb_s)

    def get(self, ref: str) -> NDArray[np.float32] | None:
        time.sleep(self.latency.ddb_s)
        return None

    def nearest(self, vector: NDArray[np.float32], limit: int, where: VectorFilter | None = None) -> list[Neighbour]:
        time.sleep(self.latency.ddb_s)
        return []


class MemoryObjects:
    """The ObjectStore port: no records; a write is three calls in sequence, as a new object's
    commit is (Query, BatchWriteItem, PutItem)."""

    def __init__(self, latency: Latency) -> None:
        self.latency = latency

    def get(self, bucket: str, key: str) -> ObjectRecord | None:
        time.sleep(self.latency.ddb_s)
        return None

    def get_many(self, refs: list[str]) -> dict[str, ObjectRecord]:
        time.sleep(self.latency.ddb_s)
        return {}

    def states(self, refs: list[str]) -> dict[str, tuple[Stored, ObjectRecord | None]]:
        time.sleep(self.latency.ddb_s)
        return {}

    def put(self, record: ObjectRecord, claim: Claim) -> None:
        time.sleep(3 * self.latency.ddb_s)

    def delete(self, bucket: str, key: str, claim: Claim) -> None:
        time.sleep(3 * self.latency.ddb_s)


def own_overhead(pipeline: TaggingPipeline, batch: list[bytes], runs: int, s3_s: float = 0, ddb_s: float = 0) -> float:
    """ms per image of the handler's flow (parse, plan, commit) on ``batch`` as new content, with
    S3 and DynamoDB answered from memory after ``s3_s``/``ddb_s``; median of ``runs``."""
    blobs = {f"own/{i}.jpg": fresh(b) for i, b in enumerate(batch)}
    latency = Latency(s3_s, ddb_s)
    offline = dataclasses.replace(
        pipeline,
        reader=MemoryReader(blobs, latency),
        contents=MemoryContents(latency),
        objects=MemoryObjects(latency),
        decisions=MemoryDecisions(latency),
        taught=TaughtCache(MemoryTaught(latency), pipeline.model_key, frozenset()),
    )
    if pipeline.vectors is not None:  # the search index too (a PutVectors per batch, as a DynamoDB call)
        offline.vectors = dataclasses.replace(
            pipeline.vectors, index=MemoryVectors(latency), objects=offline.objects, contents=offline.contents
        )
    records = [sqs_record(BUCKET, k) for k in blobs]
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        plans, _ = offline.plan([notifications.message(SQSRecord(r)) for r in records])
        errors = offline.commit_all(plans)
        times.append((time.perf_counter() - start) * 1000 / len(blobs))
        # A port left talking to AWS fails its items, and a failed batch is cheap: never measured.
        failed = [i.transient or str(errors[p.message_id]) for p in plans for i in p.items if i.transient]
        failed += [str(e) for e in errors.values() if e is not None]
        if failed:
            raise RuntimeError(f"the in-process handler failed: {failed[0]}")
    return statistics.median(times)


def own_overhead_by_options(pipeline: TaggingPipeline, batch: list[bytes], runs: int) -> tuple[float, float]:
    """The in-process handler with our ORT session options and with ORT's defaults, alternated."""
    import onnxruntime as ort
    from cliptag import wiring

    default = copy.copy(pipeline.encoder)
    path = str(wiring.bundle().image_encoder_path())
    default.session = ort.InferenceSession(path, ort.SessionOptions(), providers=["CPUExecutionProvider"])
    with_defaults = dataclasses.replace(pipeline, encoder=default)
    medians: dict[str, list[float]] = {"tuned": [], "defaults": []}
    for _ in range(runs):
        medians["tuned"].append(own_overhead(pipeline, batch, runs))
        medians["defaults"].append(own_overhead(with_defaults, batch, runs))
    return statistics.median(medians["tuned"]), statistics.median(medians["defaults"])


def run(bench: Bench) -> None:
    floor = stages.floor(bench)
    pipeline, batch, runs = bench.pipeline(), bench.photos[: bench.args.batch_size], bench.scale.handler_runs
    own, own_defaults = own_overhead_by_options(pipeline, batch, runs)
    bench.row(
        "floor",
        "handler with AWS answered in-process (our code's own cost)",
        f"{own:8.2f} ms  ({own / floor:.2f} x floor)",
        "handler_no_network_ms_per_image",
        own,
    )
    modelled = own_overhead(pipeline, batch, runs, S3_GET_S, DYNAMODB_CALL_S)
    bench.row(
        "floor",
        f"same, each call waiting an AWS round trip (S3 GET {S3_GET_S * 1000:.0f} ms, DynamoDB "
        f"{DYNAMODB_CALL_S * 1000:.0f} ms)",
        f"{modelled:8.2f} ms  ({modelled / floor:.2f} x floor)",
        "handler_aws_latency_ms_per_image",
        modelled,
    )
    bench.data["handler_aws_latency_over_floor"] = modelled / floor
    ratio = own / own_defaults
    bench.row(
        "floor",
        "same in-process handler, tuned ORT options / ORT defaults",
        f"{ratio:8.2f} x  ({own:.1f} vs {own_defaults:.1f} ms)",
        "handler_tuned_over_default",
        ratio,
    )


MEASURE = Measure("inprocess", "the handler with AWS in memory, with modelled AWS latency; ORT options in it", run)
