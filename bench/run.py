"""cliptag benchmark: one run, one table, ratios measured side by side on this machine.

Runs the full-size ViT-B/32 geometry (random weights: same compute and size as the real model)
on real COCO photos, plus 12 MP JPEGs and large PNGs made by upscaling them, against the local
stack (moto in its own process, real HTTP). Prints the table and writes it as JSON.

    make bench                 # or: .venv/bin/python bench/run.py --model-dir build/model-vit-b-32-random
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "functions"), str(ROOT)]

from cliptag.content import content_id  # noqa: E402
from cliptag.imaging import Limits, load_pixels  # noqa: E402

from model_export.photos import coco_photos, skimage_photos  # noqa: E402

# Prices (USD, us-east-1, on-demand) used for the cost rows.
LAMBDA_GB_SECOND = {"x86_64": 0.0000166667, "arm64": 0.0000133334}
LAMBDA_PER_REQUEST = 0.20 / 1e6
SQS_PER_REQUEST = 0.40 / 1e6
S3_GET_PER_REQUEST = 0.0004 / 1000
DYNAMODB_PER_WRU = 0.625 / 1e6
REKOGNITION_PER_1000 = 1.00
# Typical in-region round trips, for the modelled-latency row (not measured here: no AWS).
S3_GET_S = 0.020
DYNAMODB_CALL_S = 0.008


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def timed(fn: Callable[..., Any], *args: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn(*args)
    return (time.perf_counter() - start) * 1000, result


def fresh(data: bytes) -> bytes:
    """Same pixels, new content id: bytes after a JPEG's end marker are ignored by decoders."""
    return data + uuid.uuid4().bytes


def big_jpeg(data: bytes, size: tuple[int, int] = (4000, 3000)) -> bytes:
    img = Image.open(io.BytesIO(data)).convert("RGB").resize(size, Image.Resampling.BICUBIC)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def big_png(data: bytes, size: tuple[int, int] = (3000, 2000)) -> bytes:
    img = Image.open(io.BytesIO(data)).convert("RGB").resize(size, Image.Resampling.BICUBIC)
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.rows: list[tuple[str, str, str]] = []  # (section, name, value)
        self.data: dict[str, Any] = {}

    def row(self, section: str, name: str, value: str, key: str | None = None, number: float | None = None) -> None:
        self.rows.append((section, name, value))
        if key is not None:
            self.data[key] = number
        print(f"  {name:<58} {value}", flush=True)

    # -- pieces ----------------------------------------------------------------------------
    def stages(self, stack: Any, photos: list[bytes]) -> None:
        from cliptag import wiring
        from handlers import tagger as tagger_handler

        from devstack.stack import FakeContext

        tagger = wiring.tagger()
        bundle, store, source = wiring.bundle(), wiring.store(), tagger.source
        bucket = stack.info.bucket
        size = self.args.batch_size
        per_stage: dict[str, list[float]] = {k: [] for k in ("get", "hash", "decode", "infer", "score", "write")}
        floor_decode, floor_infer, handler_ms, units = [], [], [], []
        batches = [photos[i : i + size] for i in range(0, len(photos) - size + 1, size)][: self.args.batches]
        s3 = stack.client("s3")
        for batch in batches:
            keys = [f"bench/{uuid.uuid4().hex}.jpg" for _ in batch]
            blobs = [fresh(b) for b in batch]
            for key, blob in zip(keys, blobs, strict=True):
                s3.put_object(Bucket=bucket, Key=key, Body=blob)
            # Stage by stage, with the same functions the tagger uses.
            t, got = timed(lambda ks: [source.read(bucket, k, 1 << 30) for k in ks], keys)
            per_stage["get"].append(t)
            t, _ = timed(lambda blobs: [content_id(b) for b in blobs], got)
            per_stage["hash"].append(t)
            t, decoded = timed(lambda blobs: [load_pixels(b, bundle.preprocessing, Limits()) for b in blobs], got)
            per_stage["decode"].append(t)
            pixels = np.stack([p for _, p in decoded])
            t, emb = timed(tagger.encoder.embed, pixels)
            per_stage["infer"].append(t)
            t, _ = timed(tagger.scorer.tags, emb)
            per_stage["score"].append(t)
            # Floor: bare ONNX Runtime on tensors + bare decode, same batch, same run.
            floor_decode.append(per_stage["decode"][-1])
            t_inf, _ = timed(tagger.encoder.session.run, None, {"pixel_values": pixels})
            floor_infer.append(t_inf)
            # The full handler on the same photos as new content (nothing cached), new keys.
            handler_keys = [f"bench/{uuid.uuid4().hex}.jpg" for _ in batch]
            for key, blob in zip(handler_keys, batch, strict=True):
                s3.put_object(Bucket=bucket, Key=key, Body=fresh(blob))
            event = {"Records": [sqs_record(bucket, k) for k in handler_keys]}
            meter = WriteMeter(store.client)
            store.client = meter  # type: ignore[assignment]
            t, result = timed(tagger_handler.handler, event, FakeContext("bench"))
            store.client = meter.client
            units.append(meter.units / len(batch))
            assert not result["batchItemFailures"], result
            handler_ms.append(t)
            assert all(store.get_object(bucket, k) is not None for k in handler_keys)
        # DynamoDB time: what the handler spent beyond the stages measured above.
        per_stage["write"] = [
            max(0.0, h - sum(per_stage[k][i] for k in ("get", "hash", "decode", "infer", "score")))
            for i, h in enumerate(handler_ms)
        ]
        n = size
        print(f"\nper stage, batch of {n} COCO photos ({len(batches)} batches), ms per batch p50 / p95 (per image p50)")
        for name, label in (
            ("get", "S3 GET (HTTP to local S3)"),
            ("hash", "SHA-256"),
            ("decode", "decode + preprocess"),
            ("infer", "inference (one call)"),
            ("score", "scoring (1,620 tags)"),
            ("write", "DynamoDB reads + writes (handler - other stages)"),
        ):
            values = per_stage[name]
            p50 = percentile(values, 50)
            self.row(
                "stages",
                label,
                f"{p50:8.1f} / {percentile(values, 95):8.1f}   ({p50 / n:6.2f} per image)",
                key=f"stage_{name}_ms_p50",
                number=p50,
            )
        handler = percentile(handler_ms, 50) / n
        floor = (percentile(floor_decode, 50) + percentile(floor_infer, 50)) / n
        self.row("floor", "handler, per image (p50)", f"{handler:8.2f} ms", "handler_ms_per_image", handler)
        self.row(
            "floor",
            "floor = bare decode + bare ONNX Runtime, per image",
            f"{floor:8.2f} ms",
            "floor_ms_per_image",
            floor,
        )
        self.row(
            "floor",
            "handler / floor (target <= 1.3)",
            f"{handler / floor:8.2f} x",
            "handler_over_floor",
            handler / floor,
        )
        self.data["handler_ms_per_image_p95"] = percentile(handler_ms, 95) / n
        own, own_defaults = self.own_overhead_by_options(tagger, photos[: self.args.batch_size], bucket)
        self.row(
            "floor",
            "handler with AWS answered in-process (our code's own cost)",
            f"{own:8.2f} ms  ({own / floor:.2f} x floor)",
            "handler_no_network_ms_per_image",
            own,
        )
        modelled = self.own_overhead(tagger, photos[: self.args.batch_size], bucket, S3_GET_S, DYNAMODB_CALL_S)
        self.row(
            "floor",
            f"same, each call waiting an AWS round trip (S3 GET {S3_GET_S * 1000:.0f} ms, DynamoDB "
            f"{DYNAMODB_CALL_S * 1000:.0f} ms)",
            f"{modelled:8.2f} ms  ({modelled / floor:.2f} x floor)",
            "handler_aws_latency_ms_per_image",
            modelled,
        )
        self.data["handler_aws_latency_over_floor"] = modelled / floor
        ratio = own / own_defaults
        self.row(
            "floor",
            "same in-process handler, tuned ORT options / ORT defaults",
            f"{ratio:8.2f} x  ({own:.1f} vs {own_defaults:.1f} ms)",
            "handler_tuned_over_default",
            ratio,
        )
        self.data["write_units_per_image"] = statistics.mean(units)
        tags = statistics.mean(len(r.tags) for k in handler_keys if (r := store.get_object(bucket, k)))
        self.row(
            "floor",
            "DynamoDB write units per new image (measured)",
            f"{statistics.mean(units):8.1f} WRU ({tags:.0f} tags/image)",
        )

    def own_overhead_by_options(self, tagger: Any, batch: list[bytes], bucket: str) -> tuple[float, float]:
        """The in-process handler with our ORT session options and with ORT's defaults, alternated
        (the options matter in the handler: ORT's spinning threads slow the scoring after them)."""
        import copy
        import dataclasses

        import onnxruntime as ort
        from cliptag import wiring

        default = copy.copy(tagger.encoder)
        path = str(wiring.bundle().image_encoder_path())
        default.session = ort.InferenceSession(path, ort.SessionOptions(), providers=["CPUExecutionProvider"])
        with_defaults = dataclasses.replace(tagger, encoder=default)
        runs: dict[str, list[float]] = {"tuned": [], "defaults": []}
        for _ in range(3):
            runs["tuned"].append(self.own_overhead(tagger, batch, bucket))
            runs["defaults"].append(self.own_overhead(with_defaults, batch, bucket))
        return statistics.median(runs["tuned"]), statistics.median(runs["defaults"])

    def own_overhead(self, tagger: Any, batch: list[bytes], bucket: str, s3_s: float = 0, ddb_s: float = 0) -> float:
        """The tagger with S3 and DynamoDB answered from memory: everything but network latency.

        With ``s3_s``/``ddb_s`` each call first sleeps one AWS round trip (a sleep releases the
        GIL like a socket wait), so the tagger's concurrency is exercised as against AWS; a new
        object's commit is three calls in sequence (Query, BatchWriteItem, PutItem)."""
        from cliptag.tagging import Tagger

        blobs = {f"own/{i}.jpg": fresh(b) for i, b in enumerate(batch)}

        class Memory:
            def read(self, bucket: str, key: str, max_bytes: int) -> bytes:
                time.sleep(s3_s)
                return blobs[key]

            def get_contents(self, ids: list[str], model_key: str) -> dict[str, Any]:
                time.sleep(ddb_s)
                return {}

            def put_contents(self, contents: dict[str, Any], model_key: str) -> None:
                time.sleep(ddb_s)

            def claim_content(self, content_id: str, model_key: str, owner: str, lease_s: int) -> bool:
                time.sleep(ddb_s)
                return True

            def put_object(self, record: Any, sequencer: str | None) -> None:
                time.sleep(3 * ddb_s)

            def delete_object(self, bucket: str, key: str, sequencer: str | None) -> None:
                time.sleep(3 * ddb_s)

        memory = Memory()
        offline = Tagger(
            encoder=tagger.encoder,
            scorer=tagger.scorer,
            preprocessing=tagger.preprocessing,
            model_key=tagger.model_key,
            vocabulary_version=tagger.vocabulary_version,
            source=memory,
            store=memory,
        )
        messages = [(str(i), json.dumps(json.loads(sqs_record(bucket, k)["body"]))) for i, k in enumerate(blobs)]
        runs = []
        for _ in range(3):
            start = time.perf_counter()
            plans, _ = offline.plan(messages)
            offline.commit_all(plans)
            runs.append((time.perf_counter() - start) * 1000 / len(blobs))
        return statistics.median(runs)

    def decode_12mp(self, photos: list[bytes]) -> None:
        from cliptag.bundle import ModelBundle

        prep = ModelBundle.open(self.args.model_dir).preprocessing
        jpegs = [big_jpeg(p) for p in photos[:4]]
        pngs = [big_png(p) for p in photos[:2]]
        naive = [timed(load_pixels, j, prep, Limits(), False)[0] for j in jpegs for _ in range(2)]
        draft = [timed(load_pixels, j, prep, Limits(), True)[0] for j in jpegs for _ in range(2)]
        png = [timed(load_pixels, p, prep, Limits())[0] for p in pngs]
        print("\ndecode + preprocess, 12 MP JPEG (4000x3000) and 6 MP PNG, ms (median)")
        n, d = statistics.median(naive), statistics.median(draft)
        self.row("decode", "12 MP JPEG, full decode", f"{n:8.1f} ms", "jpeg12mp_naive_ms", n)
        self.row("decode", "12 MP JPEG, draft mode (DCT scaling)", f"{d:8.1f} ms", "jpeg12mp_draft_ms", d)
        self.row("decode", "draft / full (target <= 0.35)", f"{d / n:8.2f} x", "draft_over_naive", d / n)
        self.row("decode", "6 MP PNG", f"{statistics.median(png):8.1f} ms", "png6mp_ms", statistics.median(png))

    def session_options(self) -> None:
        """ORT's defaults against our session options, at this machine's vCPUs and under a 1-vCPU
        CPU quota (Lambda at 1,769 MB: its /proc/cpuinfo still shows the host's CPUs, so ORT's
        default starts a thread per host core), plus what graph optimisation is worth."""
        from cliptag.bundle import ModelBundle
        from cliptag.config import vcpus

        path = str(ModelBundle.open(self.args.model_dir).image_encoder_path())
        batch = self.args.batch_size
        here = ort_variants(path, batch)
        one = ort_variants_in_quota(path, batch, cpus=1)
        print(f"\ninference, batch of {batch}, ms per image (median of 5)")
        single = here.pop("single")
        for label, ms in here.items():
            self.row("inference", f"{label} ({vcpus()} vCPUs)", f"{ms:8.2f} ms")
        self.row("inference", "tuned, one image per call", f"{single:8.2f} ms", "infer_single_ms", single)
        ratio = here["tuned"] / here["ORT defaults"]
        self.row("inference", f"tuned / ORT defaults, {vcpus()} vCPUs", f"{ratio:8.2f} x", "tuned_over_default", ratio)
        for label, key in (("graph optimisation", "no_graph_opt_over_tuned"), ("memory arena", "no_arena_over_tuned")):
            ratio = here[f"tuned, {label} off"] / here["tuned"]
            self.row("inference", f"{label} off / on", f"{ratio:8.2f} x", key, ratio)
        if one:
            for label in ("ORT defaults", "tuned"):
                self.row("inference", f"{label} (1-vCPU quota, like 1,769 MB)", f"{one[label]:8.2f} ms")
            ratio = one["tuned"] / one["ORT defaults"]
            self.row(
                "inference", "tuned / ORT defaults, 1-vCPU quota", f"{ratio:8.2f} x", "tuned_over_default_1vcpu", ratio
            )
        else:
            self.row("inference", "1-vCPU quota", "skipped: needs a writable cgroup (run as root)")
        self.data["infer_batch_ms_per_image"] = here["tuned"]

    def end_to_end(self, stack: Any, photos: list[bytes]) -> None:
        from cliptag import wiring

        store, bucket = wiring.store(), stack.info.bucket
        s3 = stack.client("s3")
        keys = [f"e2e/{uuid.uuid4().hex}.jpg" for _ in photos]
        start = time.perf_counter()
        for key, data in zip(keys, photos, strict=True):
            s3.put_object(Bucket=bucket, Key=key, Body=fresh(data))
        pending = set(keys)
        deadline = time.monotonic() + 300
        while pending and time.monotonic() < deadline:
            pending = {k for k in pending if store.get_object(bucket, k) is None}
            time.sleep(0.2)
        elapsed = time.perf_counter() - start
        rate = (len(keys) - len(pending)) / elapsed
        print(f"\nend to end through the local stack ({len(keys)} uploads -> tagged)")
        self.row("e2e", "throughput (2 cores, one poller)", f"{rate:8.1f} images/s", "e2e_images_per_s", rate)

    def cold_start(self) -> None:
        """A fresh interpreter until the first image can be tagged, as Lambda runs it (the model
        loading on a thread during the imports) and with everything in sequence, for the ratio."""
        code = (
            "import time; t0 = time.perf_counter()\n"
            "import handlers.tagger\n"
            "t1 = time.perf_counter()\n"
            "from cliptag import wiring; wiring.tagger()\n"
            "t2 = time.perf_counter()\n"
            "print(f'{(t1 - t0) * 1000:.0f} {(t2 - t1) * 1000:.0f}')\n"
        )
        env = {
            **os.environ,
            "MODEL_DIR": str(self.args.model_dir),
            "POWERTOOLS_TRACE_DISABLED": "true",
            "AWS_DEFAULT_REGION": "us-east-1",
            "PYTHONPATH": f"{ROOT / 'functions'}:{ROOT}",
        }
        modes = {"lambda": {**env, "AWS_LAMBDA_FUNCTION_NAME": "cliptag-bench"}, "sequential": env}
        runs: dict[str, list[list[float]]] = {mode: [] for mode in modes}
        for _ in range(5):
            for mode, mode_env in modes.items():  # interleaved: both see the same machine noise
                out = subprocess.run(
                    [sys.executable, "-c", code], capture_output=True, text=True, env=mode_env, check=True
                )
                runs[mode].append([float(v) for v in out.stdout.split()])
        print("\ncold start (fresh interpreter, median of 5)")
        totals = {mode: statistics.median(r[0] + r[1] for r in rows) for mode, rows in runs.items()}
        imports = statistics.median(r[0] for r in runs["lambda"])
        rest = statistics.median(r[1] for r in runs["lambda"])
        self.row(
            "cold",
            "imports (handler, Powertools, ORT, numpy, Pillow; model loading meanwhile)",
            f"{imports:8.0f} ms",
            "cold_import_ms",
            imports,
        )
        self.row("cold", "then: AWS clients, scorer, wait for the model", f"{rest:8.0f} ms", "cold_model_ms", rest)
        self.row(
            "cold",
            "until the first image can be tagged (target <= 1500)",
            f"{totals['lambda']:8.0f} ms",
            "cold_start_ms",
            totals["lambda"],
        )
        self.row(
            "cold",
            "same, model loaded after the imports (no preload thread)",
            f"{totals['sequential']:8.0f} ms",
            "cold_start_sequential_ms",
            totals["sequential"],
        )

    def peak_memory(self, photos: list[bytes]) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            paths = []
            for i, p in enumerate(photos[:10]):
                path = Path(tmp) / f"{i}.jpg"
                path.write_bytes(big_jpeg(p))
                paths.append(str(path))
            code = (
                "import resource, sys, numpy as np\nfrom pathlib import Path\n"
                "import handlers.tagger\nfrom cliptag import wiring\nfrom cliptag.imaging import Limits, load_pixels\n"
                "t = wiring.tagger()\n"
                "px = [load_pixels(Path(p).read_bytes(), t.preprocessing, Limits())[1] for p in sys.argv[1:]]\n"
                "emb = t.encoder.embed(np.stack(px)); t.scorer.tags(emb)\n"
                "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)\n"
            )
            env = {
                **os.environ,
                "MODEL_DIR": str(self.args.model_dir),
                "POWERTOOLS_TRACE_DISABLED": "true",
                "AWS_DEFAULT_REGION": "us-east-1",
                "PYTHONPATH": f"{ROOT / 'functions'}:{ROOT}",
            }
            out = subprocess.run(
                [sys.executable, "-c", code, *paths], capture_output=True, text=True, env=env, check=True
            )
        rss = float(out.stdout.strip())
        print("\nmemory")
        self.row("memory", "peak RSS, batch of ten 12 MP JPEGs", f"{rss:8.0f} MiB", "peak_rss_mib", rss)

    def rescoring(self) -> None:
        """Stored int8 embeddings re-scored against a 5,000-tag vocabulary: the bulk scorer (int8
        ranking in ONNX Runtime, exact fp32 re-check of the candidates) against the live fp32
        scorer, and how many rows' tags differ between the two."""
        from cliptag import codec
        from cliptag.scoring import TagScorer, l2_normalise

        from model_export.rescoring import BulkScorer

        rng = np.random.default_rng(0)
        dim, n = 512, 50_000
        tags = l2_normalise(rng.normal(size=(5000, dim)).astype(np.float32))
        vectors = l2_normalise(rng.normal(size=(n, dim)).astype(np.float32))
        codes = np.stack([np.frombuffer(codec.encode(v)[0], dtype=np.int8) for v in vectors])
        scorer = TagScorer.build([f"t{i}" for i in range(5000)], tags, [None] * 5000, min_score=0.1, top_k=10)
        bulk = BulkScorer(scorer)
        bulk.scores(codes[:2048])  # warm-up
        t, _ = timed(lambda: bulk.scores(codes))
        rate = n / (t / 1000)
        decoded = np.stack([codec.decode(c.tobytes(), 1.0) for c in codes[:8192]])
        t_live, live = timed(lambda: [row for s in range(0, 8192, 4096) for row in scorer.tags(decoded[s : s + 4096])])
        live_rate = 8192 / (t_live / 1000)
        differing = sum(
            [t.name for t in a] != [t.name for t in b] for a, b in zip(bulk.tags(codes[:8192]), live, strict=True)
        )
        print("\nre-scoring stored embeddings (no model)")
        self.row(
            "rescore",
            "bulk: 50,000 int8 embeddings x 5,000 tags (target >= 50,000/s)",
            f"{rate:8.0f} /s",
            "rescore_per_s",
            rate,
        )
        self.row("rescore", "live fp32 scorer, same work", f"{live_rate:8.0f} /s", "rescore_fp32_per_s", live_rate)
        label = "rows whose tags differ, bulk vs fp32 (of 8,192)"
        self.row("rescore", label, f"{differing:8d}", "rescore_differing", differing)

    def cost(self, writes_per_image: float) -> None:
        """Cost per 1,000 images, priced at three handler times: measured against the local emulator
        (an upper bound: moto answers one request at a time on the same 2 cores), with AWS
        answered in-process (a lower bound: our own code, no network wait), and in between with
        each call waiting a typical AWS round trip."""
        gb = self.args.memory_mb / 1024
        batch = self.args.batch_size
        times = {
            "local emulator": self.data["handler_ms_per_image"] / 1000,
            "in-process AWS": self.data["handler_no_network_ms_per_image"] / 1000,
            "modelled AWS latency": self.data["handler_aws_latency_ms_per_image"] / 1000,
        }
        others = (
            LAMBDA_PER_REQUEST / batch * 1000
            + SQS_PER_REQUEST * (1 + 2 / batch) * 1000  # S3's send + batched receive/delete
            + S3_GET_PER_REQUEST * 1000
            + DYNAMODB_PER_WRU * writes_per_image * 1000
        )
        print(
            f"\ncost per 1,000 images at {self.args.memory_mb} MB, batch of {batch}, {writes_per_image:.0f} WRU/image"
            " (compute / all-in: + requests, SQS, S3 GET, DynamoDB)"
        )
        for arch, price in LAMBDA_GB_SECOND.items():
            for label, seconds in times.items():
                compute = seconds * gb * price * 1000
                total = compute + others
                slug = label.split()[0].replace("-", "_")
                self.data[f"cost_compute_{arch}_{slug}"] = compute
                self.data[f"cost_total_{arch}_{slug}"] = total
                self.row(
                    "cost",
                    f"{arch}, handler time {label} ({seconds * 1000:.0f} ms/image)",
                    f"${compute:.5f} / ${total:.5f}  ({REKOGNITION_PER_1000 / total:.0f}x cheaper than Rekognition)",
                )


ORT_VARIANTS = """
import json, statistics, sys, time
import numpy as np, onnxruntime as ort
from cliptag.encoder import session_options

path, batch = sys.argv[1], int(sys.argv[2])
x = np.random.default_rng(0).normal(size=(batch, 3, 224, 224)).astype(np.float32)
unoptimised = session_options()
unoptimised.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
no_arena = session_options()
no_arena.enable_cpu_mem_arena = False
variants = {
    "ORT defaults": ort.SessionOptions(),
    "tuned": session_options(),
    "tuned, graph optimisation off": unoptimised,
    "tuned, memory arena off": no_arena,
}
sessions = {k: ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"]) for k, opts in variants.items()}
runs = {label: [] for label in sessions}
for sess in sessions.values():
    sess.run(None, {"pixel_values": x})
for _ in range(7):  # round robin: every variant sees the same machine noise
    for label, sess in sessions.items():
        start = time.perf_counter()
        sess.run(None, {"pixel_values": x})
        runs[label].append((time.perf_counter() - start) * 1000 / batch)
out = {label: statistics.median(values) for label, values in runs.items()}
singles = []
for _ in range(10):
    start = time.perf_counter()
    sessions["tuned"].run(None, {"pixel_values": x[:1]})
    singles.append((time.perf_counter() - start) * 1000)
out["single"] = statistics.median(singles[1:])
print(json.dumps(out))
"""


def ort_variants(path: str, batch: int, preexec: Callable[[], None] | None = None) -> dict[str, float]:
    """ms per image for ORT's defaults, our options and no graph optimisation, in a fresh process."""
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'functions'}:{ROOT}"}
    out = subprocess.run(
        [sys.executable, "-c", ORT_VARIANTS, path, str(batch)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        preexec_fn=preexec,  # only to join a cgroup before exec
    )
    result: dict[str, float] = json.loads(out.stdout)
    return result


def ort_variants_in_quota(path: str, batch: int, cpus: int) -> dict[str, float] | None:
    """The same, in a cgroup limited to ``cpus`` CPUs of quota (cgroup v1 or v2; needs root)."""
    period = 100_000
    for base, files in (
        (Path("/sys/fs/cgroup/cpu"), {"cpu.cfs_period_us": str(period), "cpu.cfs_quota_us": str(cpus * period)}),
        (Path("/sys/fs/cgroup"), {"cpu.max": f"{cpus * period} {period}"}),
    ):
        group = base / "cliptag-bench"
        try:
            group.mkdir(exist_ok=True)
            for name, value in files.items():
                (group / name).write_text(value)
        except OSError:
            continue
        procs = group / "cgroup.procs"

        def join(procs: Path = procs) -> None:
            procs.write_text(str(os.getpid()))

        return ort_variants(path, batch, preexec=join)
    return None


def item_bytes(item: dict[str, Any]) -> int:
    """DynamoDB's billed item size: attribute names plus values (serialized form)."""
    size = 0
    for name, value in item.items():
        size += len(name.encode())
        ((kind, raw),) = value.items()
        if kind in ("S", "N"):
            size += len(str(raw).encode())
        elif kind == "B":
            size += len(raw)
        elif kind in ("L", "M"):
            size += 3 + item_bytes(raw if kind == "M" else {str(i): v for i, v in enumerate(raw)})
        else:
            size += 1
    return size


class WriteMeter:
    """Wraps the store's DynamoDB client and counts the write request units it consumes."""

    def __init__(self, client: Any) -> None:
        self.client, self.units = client, 0.0

    def _charge(self, item: dict[str, Any] | None, deleted: bool = False) -> None:
        self.units += 1 if deleted else -(-item_bytes(item or {}) // 1024)
        if deleted or (item and "GSI1PK" in item):
            self.units += 1  # the index write (KEYS_ONLY projection: one unit)

    def put_item(self, **kwargs: Any) -> Any:
        self._charge(kwargs["Item"])
        return self.client.put_item(**kwargs)

    def batch_write_item(self, **kwargs: Any) -> Any:
        for requests in kwargs["RequestItems"].values():
            for r in requests:
                self._charge(r["PutRequest"]["Item"]) if "PutRequest" in r else self._charge(None, deleted=True)
        return self.client.batch_write_item(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


def sqs_record(bucket: str, key: str) -> dict[str, Any]:
    from urllib.parse import quote_plus

    notification = {
        "Records": [
            {
                "eventSource": "aws:s3",
                "eventName": "ObjectCreated:Put",
                "s3": {"bucket": {"name": bucket}, "object": {"key": quote_plus(key)}},
            }
        ]
    }
    return {
        "messageId": str(uuid.uuid4()),
        "receiptHandle": "bench",
        "body": json.dumps(notification),
        "attributes": {},
        "messageAttributes": {},
        "eventSource": "aws:sqs",
        "awsRegion": "us-east-1",
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path, default=ROOT / "build" / "model-vit-b-32-random")
    parser.add_argument("--batches", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=10)
    parser.add_argument(
        "--memory-mb",
        type=int,
        default=3538,
        help="Lambda memory for the cost rows (3538 MB = 2 vCPUs, like this machine)",
    )
    parser.add_argument("--e2e-images", type=int, default=60)
    parser.add_argument("--json", type=Path, default=ROOT / "build" / "bench.json")
    args = parser.parse_args()
    if not (args.model_dir / "manifest.json").is_file():
        print(f"{args.model_dir} is not a model directory: run `make model-bench` first", file=sys.stderr)
        return 1
    photos = [p.read_bytes() for p in (coco_photos() or skimage_photos())]
    if len(photos) < args.batch_size:
        print("not enough real photos (needs ../shared/data or scikit-image)", file=sys.stderr)
        return 1
    os.environ.update(POWERTOOLS_METRICS_DISABLED="true", POWERTOOLS_LOG_LEVEL="ERROR")
    from devstack.stack import LocalStack

    bench = Bench(args)
    manifest = json.loads((args.model_dir / "manifest.json").read_text())
    print(
        f"cliptag benchmark - {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}"
    )
    print(
        f"model {manifest['model']['id']} [{manifest['image_encoder']['quantization']}], "
        f"D={manifest['model']['embed_dim']}, {manifest['vocabulary']['tags']} tags"
    )
    bench.data["machine"] = {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "model": manifest["model"]["id"],
        "quantization": manifest["image_encoder"]["quantization"],
    }
    with LocalStack(args.model_dir, api_port=0, moto_process=True, poll=False) as stack:
        bench.stages(stack, photos[: args.batch_size * args.batches])
    bench.session_options()
    bench.decode_12mp(photos)
    with LocalStack(args.model_dir, api_port=0, moto_process=True) as stack:
        bench.end_to_end(stack, (photos * 2)[: args.e2e_images])
    bench.cold_start()
    bench.peak_memory(photos)
    bench.rescoring()
    bench.cost(bench.data["write_units_per_image"])
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(bench.data, indent=2))
    print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
