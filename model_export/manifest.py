"""manifest.json: what the export wrote and how the runtime must use it (cliptag.bundle reads it)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cliptag.bundle import FORMAT_VERSION, MANIFEST, file_sha256
from cliptag.vocabulary import Vocabulary

from model_export.checkpoint import Checkpoint

# Cosine above which a tag is kept, for real CLIP weights with prompt ensembling; random
# weights have no meaningful scale, so their bundles keep the top-k only.
REAL_MODEL_THRESHOLD = 0.24
RANDOM_MODEL_THRESHOLD = -1.0


def tool_versions() -> dict[str, str]:
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


def build_manifest(
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
        "tools": tool_versions(),
    }


def default_threshold(ckpt: Checkpoint) -> float:
    """The minimum score a tag needs unless the vocabulary or MinScore says otherwise: cosine 0.24
    for real CLIP weights (prompt ensembling); none for random weights, nor for a sigmoid model
    until its thresholds are calibrated on labelled photos (`evaluate --calibrate`): top-k only."""
    if ckpt.is_random:
        return RANDOM_MODEL_THRESHOLD if ckpt.score.kind == "cosine" else 0.0
    return REAL_MODEL_THRESHOLD if ckpt.score.kind == "cosine" else 0.0
