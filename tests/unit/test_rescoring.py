"""Bulk re-scoring of stored (int8) embeddings gives exactly the live scorer's tags."""

import numpy as np
import pytest
from cliptag import codec
from cliptag.scoring import TagScorer, l2_normalise

pytest.importorskip("onnx", reason="building the ranking graph needs the export extra (make venv)")
from model_export.rescoring import BulkScorer


def stored(vectors: np.ndarray) -> np.ndarray:
    return np.stack([np.frombuffer(codec.encode(v)[0], dtype=np.int8) for v in vectors])


@pytest.mark.parametrize(
    ("min_score", "per_tag"),
    [
        (0.1, None),  # many tags pass: top-k decides
        (0.17, None),  # few pass: thresholds decide
        (0.12, {3: 0.05, 77: 0.02, 500: 0.3}),  # per-tag thresholds looser and stricter
    ],
)
def test_bulk_scores_equal_the_live_scorer_on_decoded_embeddings(min_score, per_tag):
    rng = np.random.default_rng(1)
    tags = l2_normalise(rng.normal(size=(2000, 128)).astype(np.float32))
    # Image embeddings near a few tags, like real photos (several clear winners), plus noise.
    images = l2_normalise(rng.normal(size=(3000, 128)).astype(np.float32) + 2.5 * tags[rng.integers(0, 2000, 3000)])
    thresholds = [None] * 2000
    for index, value in (per_tag or {}).items():
        thresholds[index] = value
    scorer = TagScorer.build([f"t{i}" for i in range(2000)], tags, thresholds, min_score=min_score, top_k=10)
    codes = stored(images)
    live = scorer.tags(np.stack([codec.decode(c.tobytes(), 1.0) for c in codes]))
    bulk = BulkScorer(scorer).tags(codes)
    assert [[t.tag for t in row] for row in bulk] == [[t.tag for t in row] for row in live]
    for got, want in zip(bulk, live, strict=True):
        assert np.allclose([t.score for t in got], [t.score for t in want], atol=2e-6)
