"""The export run: checkpoint -> ONNX encoders -> parity -> tag embeddings -> quantization -> manifest."""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from cliptag.bundle import MANIFEST, ModelBundle
from cliptag.encoder import ImageEncoder
from cliptag.scoring import l2_normalise
from cliptag.text import TextEncoder
from cliptag.vocabulary import Vocabulary

from model_export import near_duplicates, parity
from model_export.checkpoint import Checkpoint, load_checkpoint
from model_export.manifest import build_manifest
from model_export.onnx_export import export_encoders
from model_export.parity import ParityError
from model_export.photos import parity_photos
from model_export.quantize import VARIANTS
from model_export.tag_embeddings import all_prompts, embed_vocabulary
from model_export.text_variants import RecordingTextEncoder, quantize_text
from model_export.vocabulary_file import load_vocabulary

QUANTIZED_MIN_COSINE = 0.99
PARITY_PROMPTS = 128


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

    text_encoder = RecordingTextEncoder(text_fp32, out / "tokenizer.json", ckpt.text)
    tag_matrix = embed_vocabulary(text_encoder, vocab, progress=opts.progress)
    np.save(out / "tag_embeddings.npy", tag_matrix)
    (out / "vocabulary.json").write_text(json.dumps(vocab.to_json(), ensure_ascii=False, indent=1), "utf-8")

    chosen, variants = _quantize(out, image_fp32, opts, tag_matrix, pixels, reference)
    report["variants"] = variants
    image_encoder = out / chosen["file"]
    text_chosen, report["text_variants"] = quantize_text(
        text_encoder, all_prompts(vocab), image_encoder, ckpt.preprocessing, opts.quantize
    )
    (out / "parity.json").write_text(json.dumps(report, indent=2), "utf-8")

    text = (text_chosen, report["text_variants"])
    manifest = build_manifest(ckpt, out, vocab, tag_matrix.shape, (chosen, variants), text)
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
    return choose_image_encoder(variants, opts.quantize, len(pixels)), variants


def choose_image_encoder(variants: list[dict[str, Any]], quantize: str, photos: int) -> dict[str, Any]:
    """The smallest variant whose min cosine to fp32 holds (an explicit ``--quantize`` is
    honoured), with the reason and every variant's figures."""
    eligible = [v for v in variants if v["min_cosine"] >= QUANTIZED_MIN_COSINE]
    if quantize not in ("auto", "none"):  # an explicit choice is honoured, with its figures recorded
        eligible = [v for v in variants if v["quantization"] == quantize]
    chosen = dict(min(eligible, key=lambda v: v["bytes"]))
    others = ", ".join(f"{v['quantization']} {v['bytes'] / 1e6:.1f} MB min cos {v['min_cosine']:.4f}" for v in variants)
    chosen["reason"] = (
        f"explicitly requested (--quantize {quantize})"
        if quantize not in ("auto", "none")
        else f"smallest variant with min cosine >= {QUANTIZED_MIN_COSINE} vs fp32 on {photos} real photos ({others})"
    )
    return chosen


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
