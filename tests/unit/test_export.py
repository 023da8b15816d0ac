"""A whole export run, offline: tiny random weights through the real export code."""

import json
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import TOKENIZER_DIR, require

pytest.importorskip("torch", reason="the export needs the export extra (make venv)")


@pytest.mark.slow
def test_tiny_export_with_custom_vocabulary(tmp_path: Path):
    require(TOKENIZER_DIR)
    from cliptag.bundle import ModelBundle
    from cliptag.encoder import ImageEncoder
    from cliptag.text import TextEncoder

    from model_export.cli import main
    from model_export.text_variants import fp32_text_encoder_file
    from model_export.vocabulary_file import DEFAULT_VOCABULARY, load_vocabulary

    vocab = tmp_path / "mine.yaml"
    vocab.write_text(
        "templates: ['a photo of a {}.', 'a picture of the {}.']\n"
        "tags:\n  pets:\n    - {name: dog, synonyms: [puppy], threshold: 0.3}\n    - cat\n"
        "  scenes:\n    - {name: beach, descriptions: ['sand and sea under a blue sky']}\n    - [forest, city]\n"
    )
    out = tmp_path / "model"
    assert (
        main(
            [
                "--model",
                "tiny",
                "--out",
                str(out),
                "--vocabulary",
                str(vocab),
                "--photos",
                "6",
                "--no-progress",
            ]
        )
        == 0
    )

    manifest = json.loads((out / "manifest.json").read_text())
    report = json.loads((out / "parity.json").read_text())
    assert report["image_fp32"]["min_cosine"] >= 0.99999
    assert report["text_fp32"]["min_cosine"] >= 0.99999
    assert report["preprocessing"]["max_abs_diff"] <= 1e-4
    assert report["tokenizer"]["mismatches"] == 0
    assert {v["quantization"] for v in report["variants"]} == {"fp32", "int8", "int8-per-channel", "fp16"}
    chosen = manifest["image_encoder"]
    assert chosen["quantization"] in ("fp32", "int8", "int8-per-channel", "fp16") and "min cosine" in chosen["reason"]
    assert set(manifest["files"]) >= {
        "image_encoder.onnx",
        "text_encoder.onnx",
        "text_encoder.int8.onnx",
        "tokenizer.json",
        "vocabulary.json",
        "tag_embeddings.npy",
    }
    assert manifest["preprocessing"]["size"] == 224 and manifest["model"]["source"] == "random:tiny"

    bundle = ModelBundle.open(out)
    assert bundle.vocabulary.names == ["dog", "cat", "beach", "forest", "city"]
    assert bundle.vocabulary.tags[0].threshold == 0.3
    # Tag embeddings are the renormalised mean of the fp32 ONNX text embeddings of every prompt.
    manifest = bundle.manifest
    text = TextEncoder(
        bundle.verified_path(fp32_text_encoder_file(manifest)), bundle.verified_path(manifest["tokenizer"]["file"])
    )
    # dog has no companion file: it takes the default vocabulary's descriptions, by its name.
    described = bundle.vocabulary.tags[0].descriptions
    default = load_vocabulary(DEFAULT_VOCABULARY)
    assert described and described == default.tags[default.names.index("dog")].descriptions
    prompts = ["a photo of a dog.", "a photo of a puppy.", "a picture of the dog.", "a picture of the puppy."]
    dog = text.embed([*prompts, *described]).mean(axis=0)
    assert float(dog / np.linalg.norm(dog) @ bundle.tag_embeddings[0]) > 0.9999
    # The encoder takes any batch size.
    enc = ImageEncoder(bundle.image_encoder_path())
    assert enc.embed(np.zeros((3, 3, 224, 224), dtype=np.float32)).shape == (3, bundle.embed_dim)


def test_bad_vocabulary_fails_the_export_with_the_line(tmp_path: Path, capsys):
    from model_export.cli import main

    vocab = tmp_path / "bad.yaml"
    vocab.write_text("tags:\n  a:\n    - dog\n    - dog\n")
    assert main(["--model", "tiny", "--out", str(tmp_path / "o"), "--vocabulary", str(vocab)]) == 1
    assert "line 4: duplicate tag or synonym 'dog'" in capsys.readouterr().err


@pytest.mark.slow
def test_export_from_a_local_checkpoint_directory(tmp_path: Path):
    """Real-weight checkpoints load through from_pretrained, the same path as a hub download."""
    require(TOKENIZER_DIR)
    import shutil

    from cliptag.bundle import ModelBundle

    from model_export.checkpoint import load_checkpoint
    from model_export.cli import main

    ckpt = load_checkpoint("tiny", None, TOKENIZER_DIR, tmp_path, seed=3)
    local = tmp_path / "my-clip"
    ckpt.model.save_pretrained(str(local))
    for name in (
        "tokenizer.json",
        "vocab.json",
        "merges.txt",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "preprocessor_config.json",
    ):
        shutil.copy(TOKENIZER_DIR / name, local / name)
    vocab = tmp_path / "v.yaml"
    vocab.write_text("tags:\n  a: [dog, cat, beach]\n")
    out = tmp_path / "out"
    assert (
        main(["--model", str(local), "--out", str(out), "--vocabulary", str(vocab), "--photos", "4", "--no-progress"])
        == 0
    )
    bundle = ModelBundle.open(out)
    assert bundle.manifest["model"]["source"] == "local" and bundle.model_id == "my-clip"
    assert bundle.default_threshold == 0.24  # real-weight default, not the random-model top-k-only one
    assert bundle.manifest["preprocessing"]["mean"][0] == pytest.approx(0.48145466)
