"""The text encoder for search queries, int8 against fp32 (issue #12): agreement on the vocabulary's
prompts and the 1,000 free-text queries, top-10 search overlap on the COCO photos, warm
single-query latency on one intra-op thread (Lambda up to 1,769 MB has one vCPU) split into
tokenizing and encoding, cold session creation in a fresh interpreter, and file sizes."""

from __future__ import annotations

import contextlib
import json
import statistics
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.common import percentile, python_env, run_python, timed
from bench.context import Bench, Measure

if TYPE_CHECKING:
    from cliptag.text import TextEncoder

SESSION = """
import json, sys, time
import onnxruntime as ort
from cliptag.encoder import session_options
start = time.perf_counter()
ort.InferenceSession(sys.argv[1], session_options(1), providers=["CPUExecutionProvider"])
print(json.dumps((time.perf_counter() - start) * 1000))
"""
LATENCY_QUERIES = 300  # single-query embeddings per variant (30 quick), after WARM_UP
WARM_UP = 10
QUICK_PROMPT_STEP, QUICK_QUERIES = 20, 100  # --quick: every 20th prompt, the first 100 queries
TARGET_MS = 30.0


@contextlib.contextmanager
def variant_files(model_dir: Path) -> Iterator[tuple[Path, Path, Path, str]]:
    """fp32 and int8 text encoders, the tokenizer and the shipped file's name; a directory exported
    before the text variants gets its int8 made here, the way the export makes it."""
    from cliptag.bundle import ModelBundle

    from model_export.quantize import TEXT_VARIANTS
    from model_export.text_variants import fp32_text_encoder_file

    bundle = ModelBundle.open(model_dir)
    manifest = bundle.manifest
    fp32 = bundle.verified_path(fp32_text_encoder_file(manifest))
    tokenizer = bundle.verified_path(manifest["tokenizer"]["file"])
    int8 = [v["file"] for v in manifest.get("text_encoder_variants", []) if v["quantization"] == "int8"]
    shipped = str(manifest["text_encoder"]["file"])
    if int8:
        yield fp32, bundle.verified_path(int8[0]), tokenizer, shipped
        return
    with tempfile.TemporaryDirectory() as tmp:
        yield (
            fp32,
            TEXT_VARIANTS["int8"](fp32, Path(tmp) / "text_encoder.int8.onnx"),
            tokenizer,
            f"{shipped} (exported before the variants: int8 made here)",
        )


def latencies(encoders: dict[str, TextEncoder], queries: list[str]) -> dict[str, dict[str, list[float]]]:
    """Per variant: ms to tokenize (ids, padding trimmed) and to embed (tokenize + encode) one query;
    variants alternate query by query so both see the same machine noise."""
    runs: dict[str, dict[str, list[float]]] = {name: {"tokenize": [], "total": []} for name in encoders}
    for i, query in enumerate(queries):
        for name, encoder in encoders.items():
            tokenize, _ = timed(lambda e=encoder, q=query: e.trim(e.token_ids([q])))
            total, _ = timed(encoder.embed, [query])
            if i >= WARM_UP:
                runs[name]["tokenize"].append(tokenize)
                runs[name]["total"].append(total)
    return runs


def run(bench: Bench) -> None:
    from cliptag.bundle import ModelBundle
    from cliptag.text import TextEncoder

    from model_export import parity
    from model_export.photos import coco_photos
    from model_export.queries import default_queries
    from model_export.tag_embeddings import all_prompts

    bundle = ModelBundle.open(bench.model_dir)
    quick = bool(bench.args.quick)
    prompts = all_prompts(bundle.vocabulary)[:: QUICK_PROMPT_STEP if quick else 1]
    queries = list(default_queries())[: QUICK_QUERIES if quick else None]
    photos = coco_photos()
    images = parity.photo_embeddings(bundle.image_encoder_path(), photos, bundle.preprocessing) if photos else None
    with variant_files(bench.model_dir) as (fp32, int8, tokenizer, shipped):
        paths = {"fp32": fp32, "int8": int8}
        embedded = {}
        for name, path in paths.items():  # agreement: all of the machine's threads, for speed
            encoder = TextEncoder(path, tokenizer, settings=bundle.text_settings)
            embedded[name] = (encoder.embed(prompts), parity.query_embeddings(encoder, queries))
        figures = parity.text_variant_figures(embedded["fp32"], embedded["int8"], images)
        one_thread = {
            name: TextEncoder(path, tokenizer, threads=1, settings=bundle.text_settings) for name, path in paths.items()
        }
        n_latency = (LATENCY_QUERIES // 10 if quick else LATENCY_QUERIES) + WARM_UP
        runs = latencies(one_thread, queries[:n_latency])
        sessions = {name: _session_ms(path, bench.scale.cold_runs) for name, path in paths.items()}
        sizes = {name: path.stat().st_size for name, path in paths.items()}
    _report(bench, figures, runs, sessions, sizes, shipped, len(photos))


def _session_ms(path: Path, runs: int) -> float:
    """Median ms to create the ORT session (one intra-op thread) in a fresh interpreter: the cold
    start's share of the text encoder (the file is in the page cache, as on a warm layer)."""
    return statistics.median(float(json.loads(run_python(SESSION, [str(path)], python_env()))) for _ in range(runs))


def _report(
    bench: Bench,
    figures: dict[str, Any],
    runs: dict[str, dict[str, list[float]]],
    sessions: dict[str, float],
    sizes: dict[str, int],
    shipped: str,
    photos: int,
) -> None:
    bench.section("text encoder for search queries: int8 vs fp32, one query, 1 intra-op thread")
    ratio = sizes["int8"] / sizes["fp32"]
    size = f"{sizes['fp32'] / 1e6:.1f} / {sizes['int8'] / 1e6:.1f} MB ({ratio:.2f} x)"
    bench.row("text", "file size, fp32 / int8", size, "text_size_int8_over_fp32", ratio)
    bench.data.update(text_fp32_bytes=sizes["fp32"], text_int8_bytes=sizes["int8"])
    ratio = sessions["int8"] / sessions["fp32"]
    value = f"{sessions['fp32']:.0f} / {sessions['int8']:.0f} ms ({ratio:.2f} x)"
    bench.row("text", "cold load: session creation, fp32 / int8 (fresh process)", value, "text_session_ratio", ratio)
    bench.data.update(text_session_fp32_ms=sessions["fp32"], text_session_int8_ms=sessions["int8"])
    p50: dict[str, float] = {}
    for name, parts in runs.items():
        encode = [t - k for t, k in zip(parts["total"], parts["tokenize"], strict=True)]
        p50[name], p95 = percentile(parts["total"], 50), percentile(parts["total"], 95)
        target = f" (target <= {TARGET_MS:.0f} ms)" if name == "int8" else ""
        bench.row("text", f"{name}: query embedding p50 / p95{target}", f"{p50[name]:.1f} / {p95:.1f} ms")
        split = f"{percentile(parts['tokenize'], 50):.2f} / {percentile(encode, 50):.1f} ms"
        bench.row("text", f"{name}:   tokenize / encode, p50", split)
        bench.data.update(
            {
                f"text_query_{name}_p50_ms": p50[name],
                f"text_query_{name}_p95_ms": p95,
                f"text_tokenize_{name}_p50_ms": percentile(parts["tokenize"], 50),
                f"text_encode_{name}_p50_ms": percentile(encode, 50),
            }
        )
    ratio = p50["int8"] / p50["fp32"]
    bench.row("text", "query embedding p50, int8 / fp32", f"{ratio:.2f} x", "text_query_int8_over_fp32", ratio)
    for what in ("prompts", "queries"):
        stats = figures[what]
        value = f"{stats['min_cosine']:.5f} / {stats['mean_cosine']:.5f}"
        bench.row("text", f"cosine int8 vs fp32, {stats['n']:,} {what}: min / mean", value)
        bench.data.update(
            {f"text_{what}_min_cosine": stats["min_cosine"], f"text_{what}_mean_cosine": stats["mean_cosine"]}
        )
    overlap = figures["top10_overlap"]
    if overlap is not None:
        label = f"top-10 search overlap, {photos} COCO photos (limit >= 90%)"
        bench.row("text", label, f"{overlap * 100:.1f}%", "text_top10_overlap", overlap)
    else:
        bench.row("text", "top-10 search overlap", "skipped: no COCO photos in ../shared/data")
    bench.row("text", "shipped for search queries (manifest text_encoder)", shipped)


MEASURE = Measure("text", "text encoder int8 vs fp32: agreement, top-10 search overlap, latency, load", run)
