"""The text encoder's variants (issue #12): the export ships int8 for search queries only where it
agrees with fp32 (cosine on prompts and queries, top-10 search overlap), names it in the manifest
with every variant's figures, and keeps the exact fp32 encoder for tag embeddings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.conftest import TOKENIZER_DIR, require

QUANTIZED = "text_encoder.int8.onnx"


@pytest.fixture(scope="module")
def variant_model(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model with text encoder variants: build/model-tiny when it has them, else a fresh
    export (``make model-tiny`` rebuilds only when the vocabulary changes, so it may predate them)."""
    if "text_encoder_variants" in json.loads((model_dir / "manifest.json").read_text("utf-8")):
        return model_dir
    pytest.importorskip("torch", reason=f"{model_dir} predates the text encoder variants; exporting needs torch")
    require(TOKENIZER_DIR)
    from model_export.cli import main

    out = tmp_path_factory.mktemp("variants") / "tiny"
    assert main(["--model", "tiny", "--no-progress", "--out", str(out)]) == 0
    return out


def variant(quantization: str, size: int, min_cos: float = 1.0, mean_cos: float = 1.0, overlap: float | None = 1.0):
    """A variant entry as the export writes it, with made-up figures."""
    return {
        "quantization": quantization,
        "file": "text_encoder.onnx" if quantization == "fp32" else f"text_encoder.{quantization}.onnx",
        "bytes": size,
        "min_cosine": min_cos,
        "mean_cosine": mean_cos,
        "prompts": {"n": 13317, "min_cosine": min_cos, "mean_cosine": mean_cos, "max_abs_diff": 0.0},
        "queries": {"n": 1000, "min_cosine": min_cos, "mean_cosine": mean_cos, "max_abs_diff": 0.0},
        "top10_overlap": overlap,
        "photos": 0 if overlap is None else 128,
    }


FP32 = variant("fp32", 250_000_000)


@pytest.mark.parametrize(
    ("int8", "chosen", "in_reason"),
    [
        (variant("int8", 64_000_000, 0.9989, 0.9993, 0.97), "int8", "top-10 overlap 97.0% >= 90%"),
        (variant("int8", 64_000_000, 0.99, 0.995, 0.9), "int8", "min cosine 0.99000 >= 0.99"),  # limits included
        (variant("int8", 64_000_000, 0.9989, 0.9993, 0.89), "fp32", "top-10 overlap 89.0% < 90%"),
        (variant("int8", 64_000_000, 0.985, 0.9993, 0.97), "fp32", "min cosine 0.98500 < 0.99"),
        (variant("int8", 64_000_000, 0.991, 0.994, 0.97), "fp32", "mean cosine 0.99400 < 0.995"),
        (variant("int8", 64_000_000, 0.9989, 0.9993, None), "int8", "no COCO photos to search: decided on cosine"),
        (variant("int8", 64_000_000, 0.98, 0.9993, None), "fp32", "cosine alone"),
    ],
)
def test_int8_ships_only_where_cosine_and_top10_overlap_hold(int8: dict[str, Any], chosen: str, in_reason: str):
    from model_export.text_variants import choose_text_encoder, text_variant_holds

    choice = choose_text_encoder([FP32, int8])
    assert choice["quantization"] == chosen
    assert in_reason in choice["reason"]
    assert "13,317 prompts and 1,000 queries" in choice["reason"]
    assert text_variant_holds(int8) == (chosen == "int8")
    assert text_variant_holds(variant("fp32", 1, 0.0, 0.0, 0.0)), "fp32 is the reference: it always holds"


def test_without_quantized_variants_fp32_ships_and_says_why():
    from model_export.text_variants import choose_text_encoder

    choice = choose_text_encoder([FP32])
    assert choice["file"] == "text_encoder.onnx" and "--quantize none" in choice["reason"]


def test_the_fp32_text_encoder_is_found_in_new_and_old_manifests():
    from model_export.text_variants import fp32_text_encoder_file

    new = {"text_encoder": {"file": QUANTIZED}, "text_encoder_fp32": {"file": "text_encoder.onnx"}}
    old = {"text_encoder": {"file": "text_encoder.onnx"}}  # exported before the variants: fp32 only
    assert fp32_text_encoder_file(new) == fp32_text_encoder_file(old) == "text_encoder.onnx"


def test_the_query_generator_yields_1000_unique_deterministic_phrases():
    from model_export.queries import default_queries, generate
    from model_export.vocabulary_file import DEFAULT_VOCABULARY, load_vocabulary

    queries = default_queries()
    assert len(queries) == len(set(queries)) == 1000
    again = generate(load_vocabulary(DEFAULT_VOCABULARY, descriptions=False))
    assert again == list(queries), "the same phrases in the same order on every run"
    assert all(3 <= len(q) <= 77 and q == " ".join(q.split()) for q in queries)
    names = {t.name for t in load_vocabulary(DEFAULT_VOCABULARY, descriptions=False).tags}
    assert all(any(name in q for name in names) for q in queries), "every phrase uses the vocabulary's words"
    assert sum(len(q.split()) >= 4 for q in queries) > 700, "mostly phrases, not bare tags"


def test_a_small_vocabulary_gives_fewer_unique_queries_without_looping_forever():
    from cliptag.vocabulary import TagSpec, Vocabulary

    from model_export.queries import generate

    small = generate(Vocabulary(tags=(TagSpec("dog", "animal"), TagSpec("beach", "nature"))))
    assert 0 < len(small) < 1000 and len(small) == len(set(small))


def test_the_manifest_names_a_verified_text_encoder_variant_and_keeps_fp32(variant_model: Path):
    from cliptag.bundle import ModelBundle

    from model_export.tag_embeddings import all_prompts
    from model_export.text_variants import choose_text_encoder, fp32_text_encoder_file

    bundle = ModelBundle.open(variant_model)
    manifest = bundle.manifest
    shipped, variants = manifest["text_encoder"], manifest["text_encoder_variants"]
    assert bundle.verified_path(shipped["file"]).is_file()  # listed, present, hash matches
    assert bundle.verified_path(fp32_text_encoder_file(manifest)).name == "text_encoder.onnx"
    by_file = {v["file"]: v for v in variants}
    assert by_file[shipped["file"]]["quantization"] == shipped["quantization"]
    assert shipped["reason"] and shipped["context_length"] == 77 and shipped["inputs"] == ["input_ids"]
    assert choose_text_encoder(variants)["file"] == shipped["file"], "the recorded choice follows the rule"

    int8 = by_file[QUANTIZED]
    assert int8["quantization"] == "int8" and int8["bytes"] == (variant_model / QUANTIZED).stat().st_size
    assert int8["bytes"] < by_file["text_encoder.onnx"]["bytes"] / 2, "the embedding table is quantized too"
    assert int8["queries"]["n"] == 1000 and int8["prompts"]["n"] == len(all_prompts(bundle.vocabulary))
    assert 0.9 < int8["min_cosine"] <= int8["mean_cosine"] <= 1.0
    assert int8["min_cosine"] == min(int8["prompts"]["min_cosine"], int8["queries"]["min_cosine"])
    assert int8["top10_overlap"] is None or 0.0 <= int8["top10_overlap"] <= 1.0
    report = json.loads(bundle.verified_path("parity.json").read_text("utf-8"))
    assert report["text_variants"] == variants


def test_the_shipped_encoder_embeds_a_query_like_fp32(variant_model: Path):
    from cliptag.bundle import ModelBundle
    from cliptag.text import TextEncoder

    from model_export.text_variants import fp32_text_encoder_file

    bundle = ModelBundle.open(variant_model)
    tokenizer = bundle.verified_path(bundle.manifest["tokenizer"]["file"])
    exact = TextEncoder(bundle.verified_path(fp32_text_encoder_file(bundle.manifest)), tokenizer)
    quantized = TextEncoder(bundle.verified_path(QUANTIZED), tokenizer)
    assert quantized.trims_padding, "quantization keeps the dynamic sequence axis"
    query = ["a dog running on the beach"]
    assert float(np.sum(exact.embed(query) * quantized.embed(query))) > 0.99


def test_siglip2s_image_encoder_ships_per_channel_int8_where_per_tensor_fails():
    """The export's figures for ViT-B-32-SigLIP2-256 (random weights, 128 COCO photos): int8 per
    tensor falls to cosine 0.974 of fp32, per channel holds at the same size; fp16 is twice as big."""
    from model_export.export import choose_image_encoder

    mb = 1_000_000
    variants = [
        {"quantization": "fp32", "bytes": 378 * mb, "min_cosine": 1.0},
        {"quantization": "int8", "bytes": 102 * mb, "min_cosine": 0.97360},
        {"quantization": "int8-per-channel", "bytes": 102 * mb + 449_545, "min_cosine": 0.99940},
        {"quantization": "fp16", "bytes": 189 * mb, "min_cosine": 1.0},
    ]
    chosen = choose_image_encoder(variants, "auto", 128)
    assert chosen["quantization"] == "int8-per-channel" and "int8 102.0 MB min cos 0.9736" in chosen["reason"]
    # Where both int8 variants hold (ViT-B/32, DataComp), per tensor is the smaller file.
    holding = [{**v, "min_cosine": max(v["min_cosine"], 0.9997)} for v in variants]
    assert choose_image_encoder(holding, "auto", 128)["quantization"] == "int8"
    assert choose_image_encoder(variants, "fp16", 128)["quantization"] == "fp16"
