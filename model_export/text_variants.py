"""The text encoder's variants: which one embeds the API's search queries.

Tag embeddings always come from the exact fp32 text encoder; a quantized variant embeds search
queries only where it finds what fp32 finds: cosine to fp32 over the tag prompts and the
free-text queries, and the top-10 photos of each query (docs/search.md).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
from cliptag.imaging import Preprocessing
from cliptag.text import TextEncoder, TextSettings
from numpy.typing import NDArray

from model_export import parity
from model_export.parity import ParityError
from model_export.photos import coco_photos
from model_export.quantize import TEXT_VARIANTS
from model_export.queries import default_queries

TEXT_MIN_COSINE = 0.99
TEXT_MEAN_COSINE = 0.995
TEXT_MIN_TOP10_OVERLAP = 0.9


def log(msg: str) -> None:
    print(f"[export] {msg}", flush=True)


class RecordingTextEncoder(TextEncoder):
    """The fp32 text encoder, keeping what it embeds: the tag embeddings embed every vocabulary
    prompt (13,317 for the default one) in order, and the quantized variants are compared with
    those vectors instead of embedding every prompt with fp32 a second time."""

    def __init__(self, model_path: Path, tokenizer_path: Path, settings: TextSettings) -> None:
        super().__init__(model_path, tokenizer_path, settings=settings)
        self.model_path, self.tokenizer_path = model_path, tokenizer_path
        self.embedded: list[NDArray[np.float32]] = []

    def embed(self, texts: list[str], batch_size: int = 64) -> NDArray[np.float32]:
        vectors = super().embed(texts, batch_size)
        self.embedded.append(vectors)
        return vectors


def quantize_text(
    fp32: RecordingTextEncoder, prompts: list[str], image_encoder: Path, prep: Preprocessing, quantize: str
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The text encoder's variants with their figures against fp32, and the one search queries use.

    The figures: cosine over the vocabulary's prompts (already embedded by fp32 for the tag
    embeddings) and the free-text queries, and the top-10 overlap of searching the COCO photos,
    embedded once with the image encoder that ships.
    """
    started = time.perf_counter()
    reference_prompts = np.concatenate(fp32.embedded)
    if len(reference_prompts) != len(prompts):  # the tag embeddings embed each prompt exactly once, in order
        raise ParityError(f"{len(reference_prompts)} fp32 prompt embeddings recorded for {len(prompts)} prompts")
    queries = list(default_queries())
    reference = (reference_prompts, parity.query_embeddings(fp32, queries))
    photos = coco_photos()
    images = parity.photo_embeddings(image_encoder, photos, prep) if photos else None
    variants = [text_variant("fp32", fp32.model_path, parity.text_variant_figures(reference, reference, images))]
    for name, make in ({} if quantize == "none" else TEXT_VARIANTS).items():
        path = make(fp32.model_path, fp32.model_path.with_name(f"text_encoder.{name}.onnx"))
        encoder = TextEncoder(path, fp32.tokenizer_path, settings=fp32.settings)
        candidate = (encoder.embed(prompts), parity.query_embeddings(encoder, queries))
        variants.append(text_variant(name, path, parity.text_variant_figures(reference, candidate, images)))
    chosen = choose_text_encoder(variants)
    log(f"text encoder variants compared in {time.perf_counter() - started:.1f} s: {chosen['file']} for queries")
    return chosen, variants


def text_variant(name: str, path: Path, figures: dict[str, Any]) -> dict[str, Any]:
    return {"quantization": name, "file": path.name, "bytes": path.stat().st_size, **figures}


def text_variant_holds(variant: dict[str, Any]) -> bool:
    """fp32 always holds; a quantized variant where its cosine and top-10 overlap meet the limits
    (no overlap figure: no photos to search, cosine alone decides)."""
    overlap = variant["top10_overlap"]
    return variant["quantization"] == "fp32" or (
        variant["min_cosine"] >= TEXT_MIN_COSINE
        and variant["mean_cosine"] >= TEXT_MEAN_COSINE
        and (overlap is None or overlap >= TEXT_MIN_TOP10_OVERLAP)
    )


def choose_text_encoder(variants: list[dict[str, Any]]) -> dict[str, Any]:
    """The smallest variant that holds, with the reason: its figures, or why the others did not."""
    chosen = dict(min((v for v in variants if text_variant_holds(v)), key=lambda v: v["bytes"]))
    quantized = [v for v in variants if v["quantization"] != "fp32"]
    if not quantized:
        chosen["reason"] = "no quantized variant tried (--quantize none)"
        return chosen
    judged = ", ".join(f"{v['quantization']}: {_text_checks(v)}" for v in quantized)
    verdict = (
        "smallest variant whose parity with fp32 holds"
        if chosen["quantization"] != "fp32"
        else "no quantized variant holds parity with fp32"
    )
    photos = (
        f"top-10 overlap of searching {quantized[0]['photos']} COCO photos"
        if quantized[0]["top10_overlap"] is not None
        else "no COCO photos to search: decided on cosine alone"
    )
    counts = f"{quantized[0]['prompts']['n']:,} prompts and {quantized[0]['queries']['n']:,} queries"
    chosen["reason"] = f"{verdict} (cosine over {counts}; {photos}): {judged}"
    return chosen


def _text_checks(variant: dict[str, Any]) -> str:
    def check(what: str, value: float, limit: float, fmt: str, limit_fmt: str) -> str:
        return f"{what} {value:{fmt}} {'>=' if value >= limit else '<'} {limit:{limit_fmt}}"

    checks = [
        check("min cosine", variant["min_cosine"], TEXT_MIN_COSINE, ".5f", "g"),
        check("mean cosine", variant["mean_cosine"], TEXT_MEAN_COSINE, ".5f", "g"),
    ]
    if variant["top10_overlap"] is not None:
        checks.append(check("top-10 overlap", variant["top10_overlap"], TEXT_MIN_TOP10_OVERLAP, ".1%", ".0%"))
    return ", ".join(checks)


def fp32_text_encoder_file(manifest: dict[str, Any]) -> str:
    """The exact (fp32) text encoder, for tag embeddings; directories exported before the text
    variants name only that one, as ``text_encoder``."""
    return str(manifest.get("text_encoder_fp32", manifest["text_encoder"])["file"])
