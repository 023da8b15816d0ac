"""Search by meaning: the API's cold start with the text encoder; a warm ``/search`` split into
tokenize, text encode (one intra-op thread: a 1,769 MB function has one vCPU), vector query and
the records' check (both against the local emulator); the whole HTTP round trip; the
near-duplicate check's added time and cost per 1,000 images; and what categories would cost at
tagging time against reading them at query time (the choice made)."""

from __future__ import annotations

import statistics
import time
import urllib.parse
import urllib.request
import uuid

import numpy as np

from bench.common import DYNAMODB_PER_WRU, percentile, python_env, run_python
from bench.context import Bench, Measure
from cliptag_cli import prices

COLD_API = """
import time; t0 = time.perf_counter()
import handlers.api
t1 = time.perf_counter()
from cliptag import wiring; encoder = wiring.text_encoder()
t2 = time.perf_counter()
encoder.embed(["a dog running on the beach"])
t3 = time.perf_counter()
print(f'{(t1 - t0) * 1000:.0f} {(t2 - t1) * 1000:.0f} {(t3 - t2) * 1000:.0f}')
"""
QUERIES = ("a dog running on the beach", "red car parked at night", "two people hiking in the mountains")
INDEX_VECTORS = 1_000  # in the local index for the warm query timings
REPEATS = 30
DYNAMODB_PER_RRU = 0.125 / 1e6


def run(bench: Bench) -> None:
    import os

    from cliptag import wiring

    _cold(bench)
    os.environ["INFERENCE_THREADS"] = "1"  # the API's text encoder on one vCPU
    try:
        _warm(bench)
    finally:
        del os.environ["INFERENCE_THREADS"]
        wiring.reset()  # the measures after this one build their own, with every thread


def _cold(bench: Bench) -> None:
    env = {**python_env(bench.model_dir), "INFERENCE_THREADS": "1"}
    runs = [[float(v) for v in run_python(COLD_API, [], env).split()] for _ in range(bench.scale.cold_runs)]
    bench.section(f"search: API cold start with the text encoder (fresh interpreter, median of {len(runs)})")
    for i, (label, key) in enumerate(
        (
            ("imports (handler, Powertools, ORT, tokenizers)", "api_cold_import_ms"),
            ("text encoder: verify + ORT session", "api_cold_text_load_ms"),
            ("first query embedding", "api_cold_first_embed_ms"),
        )
    ):
        value = statistics.median(r[i] for r in runs)
        bench.row("search", label, f"{value:8.0f} ms", key, value)
    total = statistics.median(sum(r) for r in runs)
    bench.row("search", "API cold start until a query is embedded", f"{total:8.0f} ms", "api_cold_total_ms", total)


def _warm(bench: Bench) -> None:
    from cliptag import wiring
    from cliptag.records import VectorEntry

    stack = bench.stack("batches")
    wiring.reset()
    search, index, objects = wiring.search(), wiring.vector_index(), wiring.objects()
    assert search is not None and index is not None and stack.info is not None
    encoder = wiring.text_encoder()
    dim = wiring.bundle().embed_dim
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(INDEX_VECTORS, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    folder = f"bench-search-{uuid.uuid4().hex[:6]}/"
    refs = [f"{stack.info.bucket}/{folder}{i:05d}.jpg" for i in range(INDEX_VECTORS)]
    entries = [
        VectorEntry(r, f"c{i}", v, ("dog", "beach"), ("animal",))
        for i, (r, v) in enumerate(zip(refs, vectors, strict=True))
    ]
    index.put_many(entries)
    split: dict[str, list[float]] = {"tokenize": [], "encode": [], "query": [], "records": []}
    for i in range(REPEATS + 3):
        text = QUERIES[i % len(QUERIES)]
        t0 = time.perf_counter()
        ids = encoder.trim(encoder.token_ids([text]))
        t1 = time.perf_counter()
        (out,) = encoder.session.run(None, {"input_ids": ids})
        t2 = time.perf_counter()
        found = index.nearest(out[0], 25)
        t3 = time.perf_counter()
        objects.get_many([n.ref for n in found])
        t4 = time.perf_counter()
        if i >= 3:  # after the warm-up
            for name, ms in zip(split, np.diff([t0, t1, t2, t3, t4]) * 1000, strict=True):
                split[name].append(float(ms))
    bench.section(f"search: warm /search, one thread, {INDEX_VECTORS:,} vectors in the local index")
    for name, values in split.items():
        p50, p95 = percentile(values, 50), percentile(values, 95)
        bench.row("search", f"{name} p50 / p95", f"{p50:6.1f} / {p95:6.1f} ms", f"search_{name}_p50_ms", p50)
    embed = [a + b for a, b in zip(split["tokenize"], split["encode"], strict=True)]
    p50 = percentile(embed, 50)
    bench.row(
        "search",
        "text embedding (tokenize + encode) p50 (target <= 30 ms)",
        f"{p50:8.1f} ms",
        "search_embed_p50_ms",
        p50,
    )
    round_trips = []
    for i in range(REPEATS):
        url = f"{stack.info.api_url}/search?q={urllib.parse.quote(QUERIES[i % len(QUERIES)])}&limit=20"
        t0 = time.perf_counter()
        with urllib.request.urlopen(url, timeout=30) as resp:
            resp.read()
        round_trips.append((time.perf_counter() - t0) * 1000)
    p50, p95 = percentile(round_trips, 50), percentile(round_trips, 95)
    bench.row(
        "search", "GET /search over HTTP p50 / p95 (local)", f"{p50:6.1f} / {p95:6.1f} ms", "search_http_p50_ms", p50
    )
    _near_duplicates(bench, statistics.median(split["query"]), dim)
    _categories(bench)


def _near_duplicates(bench: Bench, query_ms: float, dim: int) -> None:
    # A vector as S3 Vectors bills it: float32 data, the key, the filterable metadata (tags,
    # categories, folders: ~300 bytes for ten tags).
    vector_bytes = dim * 4 + 80 + 300
    bench.section("near-duplicate check: one QueryVectors per new upload")
    bench.row("search", "added time per upload (local emulator query)", f"{query_ms:8.1f} ms", "near_dup_ms", query_ms)
    for vectors in (10_000, 100_000, 1_000_000, 10_000_000):
        cost = 1000 * prices.vector_query_cost(vectors, vector_bytes)
        bench.row(
            "search",
            f"cost per 1,000 uploads, index of {vectors:,} vectors",
            f"${cost:.4f}",
            f"near_dup_cost_{vectors}",
            cost,
        )
    put = 1000 * vector_bytes / 1e9 * prices.S3_VECTORS_PUT_PER_GB
    bench.row(
        "search", "every upload's vector: PutVectors data per 1,000 uploads", f"${put:.5f}", "vector_put_cost", put
    )


def _categories(bench: Bench) -> None:
    from cliptag import wiring
    from cliptag.scoring import categorise

    pipeline = bench.pipeline()
    encoder, prep = pipeline.encoder, pipeline.preprocessing
    from cliptag.imaging import Limits, load_pixels

    pixels = np.stack([load_pixels(p, prep, Limits())[1] for p in bench.photos[:32]])
    tags = pipeline.scorer.tags(encoder.embed(pixels))
    per_image = [len(categorise(t, wiring.lexicon().category_of)) for t in tags]
    mean = float(np.mean(per_image))
    write_time = mean * 2 * DYNAMODB_PER_WRU * 1000  # an item and its index entry per category
    sizes = [len(wiring.lexicon().tags_in(c)) for c in wiring.lexicon().categories]
    read_page = (float(np.mean(sizes)) * 0.5 + 20 * 0.5) * DYNAMODB_PER_RRU  # a Query per tag + the records
    bench.section("categories: entries written at tagging time vs the tags' partitions read together")
    bench.row("search", "categories per image (these photos, this model)", f"{mean:8.1f}", "categories_per_image", mean)
    bench.row(
        "search",
        "write time: cost per 1,000 images (not chosen)",
        f"${write_time:.4f}",
        "category_write_cost",
        write_time,
    )
    bench.row(
        "search",
        f"read time: cost per page of 20 (mean {np.mean(sizes):.0f} tags a category)",
        f"${read_page:.7f}",
        "category_read_cost",
        read_page,
    )


MEASURE = Measure(
    "search", "search by meaning: API cold start, warm /search split, near-duplicates, categories", run, stack="batches"
)
