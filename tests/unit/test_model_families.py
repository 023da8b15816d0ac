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
