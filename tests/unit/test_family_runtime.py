"""The runtime's side of model families: what a manifest says is what the functions do."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from cliptag.imaging import Preprocessing, center_crop, preprocess
from cliptag.scoring import ScoreTransform, TagScorer
from PIL import Image


def rows_image(width: int, height: int) -> Image.Image:
    """Each row a different grey, so a crop's top row tells where it started."""
    data = np.repeat(np.arange(height, dtype=np.uint8)[:, None], width, axis=1)
    return Image.fromarray(np.stack([data] * 3, axis=2))


@pytest.mark.parametrize(("height", "floor_top", "round_top"), [(259, 1, 2), (261, 2, 2), (257, 0, 0), (263, 3, 4)])
def test_the_crop_offset_follows_each_reference(height: int, floor_top: int, round_top: int) -> None:
    """transformers crops at (h - crop) // 2; torchvision's CenterCrop (open_clip) at
    int(round((h - crop) / 2.0)), Python's half-to-even rounding: they differ when h - crop is 3 mod 4."""
    img = rows_image(256, height)
    assert np.asarray(center_crop(img, 256, "floor"))[0, 0, 0] == floor_top
    assert np.asarray(center_crop(img, 256, "round"))[0, 0, 0] == round_top


def test_squash_resizes_to_the_square_without_a_crop() -> None:
    img = Image.fromarray(np.random.default_rng(0).integers(0, 255, (300, 500, 3), dtype=np.uint8))
    prep = Preprocessing(size=256, crop=256, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), resize="squash")
    expected = np.asarray(img.resize((256, 256), Image.Resampling.BICUBIC), np.float32) / 255.0
    assert np.allclose(preprocess(img, prep), ((expected - 0.5) / 0.5).transpose(2, 0, 1), atol=1e-6)


def test_a_version_1_manifest_reads_as_openai_clip(tmp_path: Path) -> None:
    from cliptag.bundle import ModelBundle

    manifest = {
        "format_version": 1,
        "model": {"id": "m", "embed_dim": 4},
        "preprocessing": {"size": 224, "crop": 224, "mean": [0.1] * 3, "std": [0.2] * 3, "resample": 3},
        "scoring": {"default_threshold": 0.24},
        "tokenizer": {"file": "tokenizer.json"},
    }
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    bundle = ModelBundle.open(tmp_path)
    assert bundle.preprocessing == Preprocessing(mean=(0.1,) * 3, std=(0.2,) * 3)  # type: ignore[arg-type]
    assert bundle.text_settings.context_length == 77 and bundle.text_settings.pooling == "eot_argmax"
    assert bundle.score_transform == ScoreTransform() and bundle.default_threshold == 0.24


def test_sigmoid_scores_are_probabilities_in_the_cosines_order() -> None:
    rng = np.random.default_rng(1)
    tags = rng.normal(size=(300, 32)).astype(np.float32)
    images = rng.normal(size=(50, 32)).astype(np.float32)
    images /= np.linalg.norm(images, axis=1, keepdims=True)
    sigmoid = ScoreTransform("sigmoid", scale=14.0, bias=-3.0)
    cos = TagScorer.build([f"t{i}" for i in range(300)], tags, [None] * 300, -1.0, 5)
    sig = TagScorer.build([f"t{i}" for i in range(300)], tags, [None] * 300, 0.0, 5, sigmoid)
    c, s = cos.scores(images), sig.scores(images)
    assert np.allclose(s, 1 / (1 + np.exp(-(14.0 * c - 3.0))), atol=1e-6) and np.all((s > 0) & (s < 1))
    assert [[t.tag for t in row] for row in cos.tags(images)] == [[t.tag for t in row] for row in sig.tags(images)]
    # A threshold is a probability: 0.5 keeps exactly the tags whose logit is positive.
    half = TagScorer.build([f"t{i}" for i in range(300)], tags, [None] * 300, 0.5, 300, sigmoid)
    kept = [{t.tag for t in row} for row in half.tags(images)]
    assert kept == [{f"t{j}" for j in np.flatnonzero(14.0 * row - 3.0 >= 0)} for row in c]


def test_the_bulk_rescorer_applies_the_models_score() -> None:
    pytest.importorskip("onnx", reason="the bulk re-scorer builds an ONNX graph (export extra)")
    from cliptag.codec import encode

    from model_export.rescoring import BulkScorer

    rng = np.random.default_rng(2)
    tags = rng.normal(size=(400, 64)).astype(np.float32)
    vectors = rng.normal(size=(30, 64)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    codes = np.stack([np.frombuffer(encode(v)[0], np.int8) for v in vectors])
    decoded = codes.astype(np.float32) / np.linalg.norm(codes.astype(np.float32), axis=1, keepdims=True)
    scorer = TagScorer.build(
        [f"t{i}" for i in range(400)], tags, [None] * 400, 0.2, 8, ScoreTransform("sigmoid", 10.0, -1.0)
    )
    bulk, live = BulkScorer(scorer).tags(codes), scorer.tags(decoded)
    assert [[t.tag for t in row] for row in bulk] == [[t.tag for t in row] for row in live]
    for got, want in zip(bulk, live, strict=True):  # fp32 noise of the cosines, through the sigmoid's slope
        assert np.allclose([t.score for t in got], [t.score for t in want], atol=1e-5)
