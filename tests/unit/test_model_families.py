"""Each model family through the real export code (open_clip, tiny random weights of its
structure), held to open_clip's own pipeline, and read back by the runtime from its manifest
alone: preprocessing, tokenizer and scoring are data, not branches."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.conftest import real_photos

pytest.importorskip("torch", reason="the export needs the export extra (make venv)")

try:
    from model_export.openclip import import_open_clip

    import_open_clip()
except ImportError:
    pytest.skip("the open_clip families need open_clip_torch (make venv)", allow_module_level=True)

VOCABULARY = "templates: ['a photo of a {}.']\ntags:\n  animal: [dog, cat]\n  place: [beach, forest, city]\n"


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from model_export.cli import main

    root = tmp_path_factory.mktemp("families")
    (root / "v.yaml").write_text(VOCABULARY)
    dirs = {}
    for name in ("tiny-datacomp", "tiny-siglip2"):
        dirs[name] = root / name
        args = ["--model", name, "--out", str(dirs[name]), "--vocabulary", str(root / "v.yaml")]
        assert main([*args, "--photos", "6", "--no-progress", "--no-default-descriptions"]) == 0
    return dirs


@pytest.mark.slow
@pytest.mark.parametrize("name", ["tiny-datacomp", "tiny-siglip2"])
def test_each_family_matches_open_clip(exported: dict[str, Path], name: str) -> None:
    report = json.loads((exported[name] / "parity.json").read_text())
    assert report["reference"] == "open_clip"
    assert report["image_fp32"]["min_cosine"] >= 0.9999 and report["text_fp32"]["min_cosine"] >= 0.9999
    assert report["preprocessing"]["max_abs_diff"] <= 1e-4 and report["tokenizer"]["mismatches"] == 0


@pytest.mark.slow
def test_the_manifest_carries_each_familys_differences(exported: dict[str, Path]) -> None:
    from cliptag.bundle import ModelBundle

    clip, siglip = ModelBundle.open(exported["tiny-datacomp"]), ModelBundle.open(exported["tiny-siglip2"])
    # DataComp ViT-B-32-256: CLIP's layout at 256 px, the shortest side resized then cropped as
    # torchvision crops; the causal text tower may drop its padding; scores are cosines.
    prep = clip.preprocessing
    assert (prep.size, prep.resize, prep.crop_offset) == (256, "shortest", "round")
    assert clip.text_settings.pooling == "eot_argmax" and clip.score_transform.kind == "cosine"
    # SigLIP2: squashed to 256 x 256, mean/std 0.5, 64 tokens padded with 0, pooled at the last
    # position (never trimmed), sigmoid scores with the model's own scale and bias.
    prep = siglip.preprocessing
    assert (prep.resize, prep.size, prep.mean, prep.std) == ("squash", 256, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    assert (siglip.text_settings.context_length, siglip.text_settings.pad_id, siglip.text_settings.pooling) == (
        64,
        0,
        "last",
    )
    assert siglip.score_transform.kind == "sigmoid" and siglip.manifest["model"]["family"] == "siglip"


@pytest.mark.slow
def test_the_runtime_tags_and_embeds_each_family_as_open_clip_does(exported: dict[str, Path]) -> None:
    import torch
    from cliptag.bundle import ModelBundle
    from cliptag.encoder import ImageEncoder
    from cliptag.imaging import Limits, load_pixels
    from cliptag.scoring import TagScorer
    from cliptag.text import TextEncoder

    from model_export.openclip import create, import_open_clip

    photo = real_photos(1)[0].read_bytes()
    for name, directory in exported.items():
        bundle = ModelBundle.open(directory)
        _, pixels = load_pixels(photo, bundle.preprocessing, Limits(), fast=False)
        image = ImageEncoder(bundle.image_encoder_path()).embed(pixels[None])
        text = TextEncoder(bundle.text_encoder_path(), bundle.tokenizer_path(), settings=bundle.text_settings)
        assert text.trims_padding == (name == "tiny-datacomp")
        vocab = bundle.vocabulary
        scorer = TagScorer.build(vocab.names, bundle.tag_embeddings, [None] * 5, -1.0, 5, bundle.score_transform)
        scores = scorer.scores(image)[0]
        # open_clip's own answer for the same photo and the tag embeddings: its logits through its
        # loss's link (softmax-free cosine for CLIP, sigmoid(scale * cos + bias) for SigLIP).
        model = create(name)[0]
        oc = import_open_clip()
        preprocess = oc.transform.image_transform_v2(
            oc.transform.PreprocessCfg(**model.visual.preprocess_cfg), is_train=False
        )
        from PIL import Image

        with Image.open(real_photos(1)[0]) as img, torch.no_grad():
            theirs = model.encode_image(preprocess(img.convert("RGB"))[None], normalize=True)[0].numpy()
        cosines = bundle.tag_embeddings @ theirs
        expected: Any = cosines
        if name == "tiny-siglip2":
            expected = 1 / (1 + np.exp(-(model.logit_scale.exp().item() * cosines + model.logit_bias.item())))
            assert np.all((scores > 0) & (scores < 1))
        # The shipped image encoder may be fp16 or int8: its scores agree to that precision
        # (compared as logits for SigLIP: its random-weight probabilities are all near 0).
        link = (lambda p: np.log(p / (1 - p))) if name == "tiny-siglip2" else (lambda c: c)
        assert np.allclose(link(scores), link(expected), atol=0.05), (name, scores, expected)
        assert list(np.argsort(-scores)[:2]) == list(np.argsort(-expected)[:2])


@pytest.mark.slow
def test_evaluate_and_calibrate_work_in_each_familys_own_score_units(
    exported: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`evaluate --calibrate` on my labelled photos: thresholds are written in the family's own
    units (a probability for SigLIP's sigmoid, a cosine for CLIP) and the functions' loader
    accepts the directory it rewrote."""
    import shutil

    from cliptag.bundle import ModelBundle

    from model_export.cli import main

    photos = real_photos(8)
    for photo in photos:
        shutil.copy(photo, tmp_path / photo.name)
    # Every photo is labelled with every tag: at the lowest threshold precision is 1, so each
    # tag calibrates, at a threshold no higher than its lowest positive score.
    rows = [f"{p.name},dog;cat;beach;forest;city" for p in photos]
    (tmp_path / "labels.csv").write_text("path,tags\n" + "\n".join(rows) + "\n")
    for name, directory in exported.items():
        copy = tmp_path / name
        shutil.copytree(directory, copy)
        args = ["--labels", str(tmp_path / "labels.csv"), "--calibrate", "--min-positives", "2"]
        assert main(["evaluate", "--model-dir", str(copy), "--no-progress", "--threads", "1", *args]) == 0
        assert "calibration: target precision 0.9" in capsys.readouterr().out
        bundle = ModelBundle.open(copy)
        thresholds = [t.threshold for t in bundle.vocabulary.tags]
        assert len(thresholds) == 5 and all(t is not None for t in thresholds), (name, thresholds)
        if bundle.score_transform.kind == "sigmoid":
            assert all(0.0 < t < 1.0 for t in thresholds if t is not None), thresholds
        else:
            assert all(-1.0 <= t <= 1.0 for t in thresholds if t is not None), thresholds
