"""The benchmark package: every measure module is listed, what a measure needs runs with it, a
quick run of the measures that need no local stack prints their rows and writes their figures, and
the re-tag measure's vocabulary edits and prices are what its rows say."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, real_photos

# Modules of bench/ that are not measures.
INFRASTRUCTURE = {"__init__", "__main__", "common", "context"}
# The measures that run on the tiny model without the local stack, with rows and JSON keys of each.
NO_STACK = {
    "inprocess": (
        [
            "handler with AWS answered in-process",
            "same, each call waiting an AWS round trip",
            "same in-process handler",
        ],
        ["handler_no_network_ms_per_image", "handler_aws_latency_ms_per_image", "handler_tuned_over_default"],
    ),
    "ort": (
        ["ORT defaults (", "tuned (", "tuned, one image per call", "graph optimisation off / on"],
        ["infer_single_ms", "tuned_over_default", "no_graph_opt_over_tuned", "infer_batch_ms_per_image"],
    ),
    "decode": (
        ["12 MP JPEG, full decode", "12 MP JPEG, draft mode", "draft / full", "6 MP PNG"],
        ["jpeg12mp_naive_ms", "jpeg12mp_draft_ms", "draft_over_naive", "png6mp_ms"],
    ),
    "cold": (
        ["imports (handler", "then: AWS clients", "until the first image can be tagged", "same, model loaded after"],
        ["cold_import_ms", "cold_model_ms", "cold_start_ms", "cold_start_sequential_ms"],
    ),
    "memory": (["peak RSS, batch of"], ["peak_rss_mib"]),
    "captions": (
        ["parity with transformers", "image graph", "decoder, per token", "keywords of a", "per caption of"],
        ["caption_image_ms", "caption_token_ms", "caption_keywords_ms", "caption_ms", "caption_cold_ms"],
    ),
    "places": (
        ["gazetteer load", "EXIF GPS read", "nearest place, 1,000 positions", "nearest place, p99"],
        ["places_load_ms", "places_exif_ms", "places_lookup_ms", "places_lookup_p99_ms"],
    ),
    "rescore": (
        ["bulk: 4,096 int8 embeddings", "live fp32 scorer", "rows whose tags differ"],
        ["rescore_per_s", "rescore_fp32_per_s", "rescore_differing"],
    ),
    "models": (["tiny: image", "tiny: one query", "tiny: api model layer", "tiny: API cold, first query"], []),
    "transformers": (
        ["cliptag: total", "transformers: total", "transformers / cliptag", "embeddings, cliptag vs transformers"],
        ["cliptag_ms_per_image", "transformers_ms_per_image", "transformers_over_cliptag", "transformers_min_cosine"],
    ),
}


def bench(*args: str) -> str:
    out = subprocess.run([sys.executable, "-m", "bench", *args], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def test_list_names_every_measure_module():
    modules = {p.stem for p in (ROOT / "bench").glob("*.py")} - INFRASTRUCTURE
    listed = {line.split()[0]: line.split()[1] for line in bench("--list").splitlines()}
    assert set(listed) == modules
    assert all(listed[name] == f"bench/{name}.py" for name in modules)


def test_a_measure_brings_what_it_needs_in_running_order():
    from bench.__main__ import MEASURES, select

    assert [m.name for m in select("cost")] == ["stages", "inprocess", "writes", "cost"]
    assert [m.name for m in select("")] == [m.name for m in MEASURES]
    position = {m.name: i for i, m in enumerate(MEASURES)}
    assert all(position[need] < position[m.name] for m in MEASURES for need in m.needs)


def test_the_lifecycle_measures_are_listed_with_the_stack_each_needs():
    from bench.__main__ import BY_NAME, select

    assert [m.name for m in select("backfill,retag")] == ["backfill", "retag"]
    assert BY_NAME["backfill"].stack == "batches"  # no poller: the rate is listing and enqueueing only
    assert BY_NAME["retag"].stack == "poller"  # the tagger handles the re-tag messages


def test_retag_vocabulary_edits_change_none_one_then_all_tags(tmp_path: Path):
    from bench import retag
    from model_export.vocabulary_file import load_vocabulary

    carried = {}
    for name, tags, never in retag.VOCABULARIES:
        (tmp_path / f"{name}.yaml").write_text(retag.vocabulary_yaml(tags, never), "utf-8")
        vocab = load_vocabulary(tmp_path / f"{name}.yaml")
        carried[name] = {t.name for t in vocab.tags if t.threshold == -1.0}
        assert {t.name for t in vocab.tags if t.threshold == 1.0} == set(never)
    names = [name for name, _, _ in retag.VOCABULARIES]
    for before, after in itertools.pairwise(names):
        assert len(carried[after] - carried[before]) == retag.CHANGED[after], after
    assert [retag.expected_units(case) for case in retag.CHANGED] == [1, 5, 21, 1]


def test_retag_cost_per_million_objects():
    from bench import retag

    parts = retag.cost_per_million(units=1, handler_s=0.0, invocations=0.0, memory_mb=3538, scan_bytes=8192)
    assert parts["writes"] == pytest.approx(0.625)  # $0.625 per million WRU
    assert parts["scan"] == pytest.approx(0.125)  # 8 KB per object: 1 RRU eventually consistent, $0.125 per million
    assert parts["SQS"] == pytest.approx(0.012)  # 100,000 messages x 0.3 batched requests at $0.40 per million
    assert parts["Lambda"] == 0
    lambda_only = retag.cost_per_million(units=0, handler_s=0.001, invocations=0.0, memory_mb=1024, scan_bytes=0)
    assert lambda_only["Lambda"] == pytest.approx(1e6 * 0.001 * 0.0000166667)


def test_quick_run_without_the_stack_prints_each_row_and_writes_each_figure(model_dir: Path, tmp_path: Path):
    real_photos(10)  # skips without photos
    out = tmp_path / "bench.json"
    only = ",".join(NO_STACK)
    stdout = bench(
        "--model-dir", str(model_dir), "--models", str(model_dir), "--quick", "--only", only, "--json", str(out)
    )
    rows = [line.strip() for line in stdout.splitlines() if line.startswith("  ")]
    figures = json.loads(out.read_text())
    assert figures["machine"]["cores"] >= 1
    for name, (labels, keys) in NO_STACK.items():
        assert all(any(row.startswith(label) for row in rows) for label in labels), (name, rows)
        assert all(isinstance(figures.get(key), int | float) for key in keys), (name, figures)
    assert not any(row.startswith(("S3 GET", "throughput", "x86_64")) for row in rows)  # no stack, no cost
    tiny = figures["models"]["tiny"]
    assert tiny["image_ms"] > 0 and tiny["api_cold_s3_ms"] > 0 and tiny["embed_dim"] == 64
