"""The export run: checkpoint -> ONNX encoders -> parity -> tag embeddings -> quantization -> manifest."""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from cliptag.bundle import FORMAT_VERSION, MANIFEST, ModelBundle, file_sha256
from cliptag.encoder import ImageEncoder
from cliptag.imaging import Preprocessing
from cliptag.scoring import l2_normalise
from cliptag.text import TextEncoder, TextSettings
from cliptag.vocabulary import Vocabulary
from numpy.typing import NDArray

from model_export import near_duplicates, parity
from model_export.checkpoint import Checkpoint, load_checkpoint
from model_export.onnx_export import export_encoders
from model_export.photos import coco_photos, parity_photos
from model_export.quantize import TEXT_VARIANTS, VARIANTS
from model_export.queries import default_queries
from model_export.tag_embeddings import all_prompts, embed_vocabulary
from model_export.vocabulary_file import load_vocabulary

QUANTIZED_MIN_COSINE = 0.99
# A quantized text encoder embeds search queries only where it finds what fp32 finds: cosine to
# fp32 over the tag prompts and the free-text queries, and the top-10 photos of each query.
TEXT_MIN_COSINE = 0.99
TEXT_MEAN_COSINE = 0.995
TEXT_MIN_TOP10_OVERLAP = 0.9
# Cosine above which a tag is kept, for real CLIP weights with prompt ensembling; random
# weights have no meaningful scale, so their bundles keep the top-k only.
REAL_MODEL_THRESHOLD = 0.24
RANDOM_MODEL_THRESHOLD = -1.0
PARITY_PROMPTS = 128


class ParityError(RuntimeError):
    """The exported model does not compute what the original computes."""


@dataclass
class ExportOptions:
    source: str
    out_dir: Path
    vocabulary: Path
    geometry_dir: Path
    revision: str | None = None
    quantize: str = "auto"  # auto | none | int8 | fp16
    photos: int = 16
    seed: int = 0
    progress: bool = True
    descriptions: bool = True  # False: prompts from names and synonyms only (the ablation)
    default_descriptions: bool = True  # False: without a companion file, none from the default's either


def _log(msg: str) -> None:
    print(f"[export] {msg}", flush=True)


def _tool_versions() -> dict[str, str]:
    import onnx
    import onnxruntime
    import tokenizers
    import torch
    import transformers

    versions = {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
        "tokenizers": tokenizers.__version__,
    }
    for name in ("open_clip", "timm"):  # when the export used them
        if name in sys.modules:
            versions[name] = str(getattr(sys.modules[name], "__version__", "?"))
    return versions


def run_export(opts: ExportOptions) -> dict[str, Any]:
    """Export into a temporary sibling of ``opts.out_dir``, renamed into place only once complete.

    A failed or interrupted export leaves no half-written directory behind, and an existing good
    one stays as it was. The checkpoint is loaded first, so a model that cannot be had (no Hub,
    not cached: CheckpointUnavailable) fails in seconds without writing anything.
    """
    started = time.perf_counter()
    vocab = load_vocabulary(opts.vocabulary, opts.descriptions, opts.default_descriptions)
    _log(f"vocabulary {opts.vocabulary}: {len(vocab.tags)} tags, version {vocab.version}")

    with tempfile.TemporaryDirectory() as tmp:
        ckpt = load_checkpoint(opts.source, opts.revision, opts.geometry_dir, Path(tmp), seed=opts.seed)
        _log(f"model {ckpt.model_id} ({ckpt.source}, revision {ckpt.revision})")
        with _staging(opts.out_dir) as out:
            manifest, report = _export_into(out, ckpt, vocab, opts)
    chosen = f"image encoder: {manifest['image_encoder']['file']}, text encoder: {manifest['text_encoder']['file']}"
    _log(f"done in {time.perf_counter() - started:.1f} s -> {opts.out_dir} ({chosen})")
    print(format_report(report), flush=True)
    return manifest


def _export_into(
    out: Path, ckpt: Checkpoint, vocab: Vocabulary, opts: ExportOptions
) -> tuple[dict[str, Any], dict[str, Any]]:
    image_fp32, text_fp32 = export_encoders(ckpt, out)
    shutil.copy(ckpt.tokenizer_json, out / "tokenizer.json")
    sizes = f"image {image_fp32.stat().st_size / 1e6:.1f} MB, text {text_fp32.stat().st_size / 1e6:.1f} MB"
    _log(f"ONNX written: {sizes}")
    report, pixels, reference = _check_parity(ckpt, out, vocab, opts.photos)

    text_encoder = _RecordingTextEncoder(text_fp32, out / "tokenizer.json", ckpt.text)
    tag_matrix = embed_vocabulary(text_encoder, vocab, progress=opts.progress)
    np.save(out / "tag_embeddings.npy", tag_matrix)
    (out / "vocabulary.json").write_text(json.dumps(vocab.to_json(), ensure_ascii=False, indent=1), "utf-8")

    chosen, variants = _quantize(out, image_fp32, opts, tag_matrix, pixels, reference)
    report["variants"] = variants
    image_encoder = out / chosen["file"]
    text_chosen, report["text_variants"] = _quantize_text(
        text_encoder, all_prompts(vocab), image_encoder, ckpt.preprocessing, opts
    )
    (out / "parity.json").write_text(json.dumps(report, indent=2), "utf-8")

    manifest = _manifest(ckpt, out, vocab, tag_matrix.shape, (chosen, variants), (text_chosen, report["text_variants"]))
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2), "utf-8")
    ModelBundle.open(out).tag_embeddings  # noqa: B018 - load it back exactly as the Lambda will
    photos = near_duplicates.default_photos()
    if len(photos) >= 2:  # this model's own near-duplicate threshold, through the shipped encoder
        manifest["near_duplicates"] = near_duplicates.measure(out, photos)
        near_duplicates.write(out, manifest["near_duplicates"])
        _log(near_duplicates.summary(manifest["near_duplicates"]))
    return manifest, report


@contextlib.contextmanager
def _staging(out: Path) -> Iterator[Path]:
    """A fresh hidden sibling of ``out`` to export into; on success it replaces ``out``."""
    created = [p for p in (out.parent, *out.parent.parents) if not p.exists()]
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.with_name(f".{out.name}.partial-{uuid.uuid4().hex[:12]}")
    staging.mkdir()
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        for parent in created:  # deepest first; only directories this run created, and only if empty
            with contextlib.suppress(OSError):
                parent.rmdir()
        raise
    try:
        _publish(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _publish(staging: Path, out: Path) -> None:
    """Put ``staging`` at ``out``; the old ``out`` is set aside first and restored if that fails."""
    if not (out.exists() or out.is_symlink()):
        staging.rename(out)
        return
    previous = out.with_name(f".{out.name}.previous-{uuid.uuid4().hex[:12]}")
    out.rename(previous)
    try:
        staging.rename(out)
    except BaseException:
        previous.rename(out)
        raise
    if previous.is_dir() and not previous.is_symlink():
        shutil.rmtree(previous)
    else:
        previous.unlink()


def _check_parity(
    ckpt: Checkpoint, out: Path, vocab: Vocabulary, n_photos: int
) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    """The parity report, plus the real photos' pixels and fp32 ONNX embeddings for quantization."""
    photos = parity_photos(n_photos)
    pixels = parity.photo_batch(photos, ckpt.preprocessing)
    onnx_image = ImageEncoder(out / "image_encoder.onnx").session.run(None, {"pixel_values": pixels})[0]
    image = parity.cosine_stats(ckpt.reference.image_embeds(pixels), onnx_image)

    prompts = all_prompts(vocab)
    step = max(1, len(prompts) // PARITY_PROMPTS)
    sample = prompts[::step][:PARITY_PROMPTS] + list(parity.HARD_TEXTS)
    text_encoder = TextEncoder(out / "text_encoder.onnx", out / "tokenizer.json", settings=ckpt.text)
    ids = text_encoder.token_ids(sample)
    onnx_text = text_encoder.session.run(None, {"input_ids": ids})[0]
    text = parity.cosine_stats(ckpt.reference.text_embeds(ids), onnx_text)
    # Where the runtime drops trailing padding, it must give the same vectors as the full length.
    trimmed = parity.cosine_stats(onnx_text, text_encoder.embed(sample))

    report: dict[str, Any] = {
        "reference": ckpt.reference.name,
        "photos": [p.name for p in photos],
        "image_fp32": parity.as_dict(image),
        "text_fp32": parity.as_dict(text),
        "text_trimmed_padding": parity.as_dict(trimmed),
        "preprocessing": parity.preprocessing_parity(photos, ckpt.preprocessing, ckpt.reference),
        "tokenizer": parity.tokenizer_parity(out / "tokenizer.json", ckpt.reference, prompts, ckpt.text),
    }
    failures = [
        f"{name} min cosine {stats.min_cosine:.7f} < {parity.FP32_MIN_COSINE}"
        for name, stats in (("image encoder", image), ("text encoder", text), ("trimmed text", trimmed))
        if stats.min_cosine < parity.FP32_MIN_COSINE
    ]
    if not report["preprocessing"]["ok"]:
        failures.append(
            f"preprocessing differs from {ckpt.reference.name}'s by {report['preprocessing']['max_abs_diff']:.2e}"
        )
    if not report["tokenizer"]["ok"]:
        failures.append(
            f"tokenizer ids differ from {ckpt.reference.name}'s on {report['tokenizer']['mismatches']} texts: "
            f"{report['tokenizer']['examples']}"
        )
    if failures:
        raise ParityError("parity check failed: " + "; ".join(failures))
    return report, pixels, l2_normalise(onnx_image)


def _quantize(
    out: Path, image_fp32: Path, opts: ExportOptions, tag_matrix: np.ndarray, pixels: np.ndarray, reference: np.ndarray
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    variants: list[dict[str, Any]] = [
        {
            "quantization": "fp32",
            "file": image_fp32.name,
            "bytes": image_fp32.stat().st_size,
            "min_cosine": 1.0,
            "mean_cosine": 1.0,
            "top5_agreement": 1.0,
        }
    ]
    wanted = [] if opts.quantize == "none" else (list(VARIANTS) if opts.quantize == "auto" else [opts.quantize])
    for name in wanted:
        path = VARIANTS[name](image_fp32, out / f"image_encoder.{name}.onnx")
        embeds = ImageEncoder(path).embed(pixels)
        stats = parity.cosine_stats(reference, embeds)
        variants.append(
            {
                "quantization": name,
                "file": path.name,
                "bytes": path.stat().st_size,
                "min_cosine": stats.min_cosine,
                "mean_cosine": stats.mean_cosine,
                "top5_agreement": parity.top5_agreement(reference, embeds, tag_matrix),
            }
        )
    eligible = [v for v in variants if v["min_cosine"] >= QUANTIZED_MIN_COSINE]
    if opts.quantize not in ("auto", "none"):  # an explicit choice is honoured, with its figures recorded
        eligible = [v for v in variants if v["quantization"] == opts.quantize]
    chosen = dict(min(eligible, key=lambda v: v["bytes"]))
    others = ", ".join(f"{v['quantization']} {v['bytes'] / 1e6:.1f} MB min cos {v['min_cosine']:.4f}" for v in variants)
    chosen["reason"] = (
        f"explicitly requested (--quantize {opts.quantize})"
        if opts.quantize not in ("auto", "none")
        else f"smallest variant with min cosine >= {QUANTIZED_MIN_COSINE} vs fp32 on {len(pixels)} real photos"
        f" ({others})"
    )
    return chosen, variants


class _RecordingTextEncoder(TextEncoder):
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


def _quantize_text(
    fp32: _RecordingTextEncoder, prompts: list[str], image_encoder: Path, prep: Preprocessing, opts: ExportOptions
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
    variants = [_text_variant("fp32", fp32.model_path, parity.text_variant_figures(reference, reference, images))]
    for name, quantize in ({} if opts.quantize == "none" else TEXT_VARIANTS).items():
        path = quantize(fp32.model_path, fp32.model_path.with_name(f"text_encoder.{name}.onnx"))
        encoder = TextEncoder(path, fp32.tokenizer_path, settings=fp32.settings)
        candidate = (encoder.embed(prompts), parity.query_embeddings(encoder, queries))
        variants.append(_text_variant(name, path, parity.text_variant_figures(reference, candidate, images)))
    chosen = choose_text_encoder(variants)
    _log(f"text encoder variants compared in {time.perf_counter() - started:.1f} s: {chosen['file']} for queries")
    return chosen, variants


def _text_variant(name: str, path: Path, figures: dict[str, Any]) -> dict[str, Any]:
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


def _manifest(
    ckpt: Checkpoint,
    out: Path,
    vocab: Vocabulary,
    shape: tuple[int, ...],
    image: tuple[dict[str, Any], list[dict[str, Any]]],
    text: tuple[dict[str, Any], list[dict[str, Any]]],
) -> dict[str, Any]:
    (chosen, variants), (text_chosen, text_variants) = image, text
    prep = ckpt.preprocessing
    files = {p.name: file_sha256(p) for p in sorted(out.iterdir()) if p.is_file() and p.name != MANIFEST}
    return {
        "format_version": FORMAT_VERSION,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "model": {
            "id": ckpt.model_id,
            "revision": ckpt.revision,
            "source": ckpt.source,
            "family": ckpt.family,
            "embed_dim": int(shape[1]),
        },
        # Every family difference is data here (the runtime reads it: cliptag.bundle).
        "preprocessing": {
            "size": prep.size,
            "crop": prep.crop,
            "resize": prep.resize,
            "crop_offset": prep.crop_offset,
            "mean": list(prep.mean),
            "std": list(prep.std),
            "resample": prep.resample,
            "reference": ckpt.reference.name,
        },
        "image_encoder": {
            "file": chosen["file"],
            "quantization": chosen["quantization"],
            "reason": chosen["reason"],
            "input": "pixel_values float32 [N,3,H,W]",
            "output": "image_embeds float32 [N,D]",
        },
        "image_encoder_variants": variants,
        # The variant the API embeds search queries with; tag embeddings use the exact fp32 one.
        "text_encoder": {
            "file": text_chosen["file"],
            "quantization": text_chosen["quantization"],
            "reason": text_chosen["reason"],
            "inputs": ["input_ids"],
            "context_length": ckpt.text.context_length,
        },
        "text_encoder_fp32": {"file": text_variants[0]["file"], "quantization": "fp32"},
        "text_encoder_variants": text_variants,
        "tokenizer": {
            "file": "tokenizer.json",
            "context_length": ckpt.text.context_length,
            "pad_id": ckpt.text.pad_id,
            "eot_id": ckpt.text.eot_id,
            "pooling": ckpt.text.pooling,
        },
        "vocabulary": {
            "file": "vocabulary.json",
            "hash": vocab.hash,
            "version": vocab.version,
            "tags": len(vocab.tags),
        },
        "tag_embeddings": {
            "file": "tag_embeddings.npy",
            "shape": list(shape),
            "dtype": "float32",
            "vocabulary_hash": vocab.hash,
        },
        "scoring": {
            "kind": ckpt.score.kind,
            "scale": ckpt.score.scale,
            "bias": ckpt.score.bias,
            "default_threshold": default_threshold(ckpt),
        },
        "files": files,
        "tools": _tool_versions(),
    }


def default_threshold(ckpt: Checkpoint) -> float:
    """The minimum score a tag needs unless the vocabulary or MinScore says otherwise: cosine 0.24
    for real CLIP weights (prompt ensembling); none for random weights, nor for a sigmoid model
    until its thresholds are calibrated on labelled photos (`evaluate --calibrate`): top-k only."""
    if ckpt.is_random:
        return RANDOM_MODEL_THRESHOLD if ckpt.score.kind == "cosine" else 0.0
    return REAL_MODEL_THRESHOLD if ckpt.score.kind == "cosine" else 0.0


def format_report(report: dict[str, Any]) -> str:
    img, txt = report["image_fp32"], report["text_fp32"]
    prep, tok = report["preprocessing"], report["tokenizer"]
    lines = [
        f"parity report (reference: {report.get('reference', 'transformers')})",
        f"  image encoder fp32 vs torch : min cos {img['min_cosine']:.7f}  max |diff| {img['max_abs_diff']:.2e}"
        f"  ({img['n']} real photos)",
        f"  text encoder fp32 vs torch  : min cos {txt['min_cosine']:.7f}  max |diff| {txt['max_abs_diff']:.2e}"
        f"  ({txt['n']} prompts)",
        f"  text as the runtime embeds  : min cos {report['text_trimmed_padding']['min_cosine']:.7f}",
        f"  preprocessing vs reference  : max |diff| {prep['max_abs_diff']:.2e} ({prep['images']} photos)",
        f"  tokenizer vs reference      : {tok['mismatches']} mismatches in {tok['texts']} texts",
        "  image encoder variants:",
    ]
    for v in report.get("variants", []):
        lines.append(
            f"    {v['quantization']:<5} {v['bytes'] / 1e6:8.1f} MB  min cos {v['min_cosine']:.5f}"
            f"  mean cos {v['mean_cosine']:.5f}  top-5 same {v['top5_agreement'] * 100:.0f}%"
        )
    lines.append("  text encoder variants (prompts and queries; top-10 search overlap):")
    for v in report.get("text_variants", []):
        overlap = "n/a" if v["top10_overlap"] is None else f"{v['top10_overlap'] * 100:.1f}%"
        lines.append(
            f"    {v['quantization']:<5} {v['bytes'] / 1e6:8.1f} MB  min cos {v['min_cosine']:.5f}"
            f"  mean cos {v['mean_cosine']:.5f}  top-10 overlap {overlap}"
        )
    return "\n".join(lines)
