"""Stored int8 embeddings re-scored against a 5,000-tag vocabulary, without the model: the bulk
scorer (int8 ranking in ONNX Runtime, exact fp32 re-check of the candidates) against the live
fp32 scorer, and how many rows' tags differ between the two."""

from __future__ import annotations

import numpy as np

from bench.common import timed
from bench.context import Bench, Measure

TAGS, DIM, LIVE_CHUNK = 5000, 512, 4096


def run(bench: Bench) -> None:
    from cliptag import codec
    from cliptag.scoring import TagScorer, l2_normalise

    from model_export.rescoring import BulkScorer

    n, checked = bench.scale.rescore_rows, bench.scale.rescore_checked
    rng = np.random.default_rng(0)
    tags = l2_normalise(rng.normal(size=(TAGS, DIM)).astype(np.float32))
    vectors = l2_normalise(rng.normal(size=(n, DIM)).astype(np.float32))
    codes = np.stack([np.frombuffer(codec.encode(v)[0], dtype=np.int8) for v in vectors])
    scorer = TagScorer.build([f"t{i}" for i in range(TAGS)], tags, [None] * TAGS, min_score=0.1, top_k=10)
    bulk = BulkScorer(scorer)
    bulk.scores(codes[:2048])  # warm-up
    t, _ = timed(lambda: bulk.scores(codes))
    rate = n / (t / 1000)
    decoded = np.stack([codec.decode(c.tobytes(), 1.0) for c in codes[:checked]])
    chunks = range(0, checked, LIVE_CHUNK)
    t_live, live = timed(lambda: [row for s in chunks for row in scorer.tags(decoded[s : s + LIVE_CHUNK])])
    live_rate = checked / (t_live / 1000)
    differing = sum(
        [t.tag for t in a] != [t.tag for t in b] for a, b in zip(bulk.tags(codes[:checked]), live, strict=True)
    )
    bench.section("re-scoring stored embeddings (no model)")
    bench.row(
        "rescore",
        f"bulk: {n:,} int8 embeddings x {TAGS:,} tags (target >= 50,000/s)",
        f"{rate:8.0f} /s",
        "rescore_per_s",
        rate,
    )
    bench.row("rescore", "live fp32 scorer, same work", f"{live_rate:8.0f} /s", "rescore_fp32_per_s", live_rate)
    label = f"rows whose tags differ, bulk vs fp32 (of {checked:,})"
    bench.row("rescore", label, f"{differing:8d}", "rescore_differing", differing)


MEASURE = Measure("rescore", "re-scoring stored int8 embeddings: BulkScorer vs the live fp32 scorer", run)
