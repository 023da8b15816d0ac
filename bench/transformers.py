"""cliptag's image path against the plain transformers route, on the same photos in one run.

cliptag: decode + preprocess with ``cliptag.imaging.load_pixels`` (JPEG draft decoding) and the
image encoder the bundle ships (ONNX Runtime, int8 for ViT-B/32), the tagger's session options.
transformers: PIL decode, ``CLIPImageProcessor`` from the real preprocessing config and
``CLIPModel.get_image_features`` in PyTorch (eval mode, ``torch.no_grad()``), the model built from
the real config.json as the export builds its random configurations, so for a random bundle the
weights are the bundle's own. Batches alternate which route goes first; needs the export extra
(torch, transformers) and ../shared/data, and says so when either is missing.
"""

from __future__ import annotations

import importlib.util
import io
import statistics
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from cliptag.imaging import Limits, Preprocessing, load_pixels
from numpy.typing import NDArray
from PIL import Image

from bench.common import timed
from bench.context import Bench, Measure
from bench.stages import batches

SECTION = "transformers"


def torch_model(source: str, revision: str) -> tuple[Any, bool]:
    """(CLIPModel in eval mode, whether its weights are the bundle's): a random bundle's own
    configuration and seed (the export's code), else ViT-B/32 geometry with random weights."""
    from model_export.checkpoint import DEFAULT_GEOMETRY_DIR, RANDOM_CONFIGS, load_checkpoint

    config = source.removeprefix("random:")
    same = source.startswith("random:") and config in RANDOM_CONFIGS and revision.startswith("seed")
    seed = int(revision.removeprefix("seed")) if same else 0
    with tempfile.TemporaryDirectory(prefix="bench-torch-") as tmp:
        ckpt = load_checkpoint(config if same else "vit-b-32-random", None, DEFAULT_GEOMETRY_DIR, Path(tmp), seed)
    return ckpt.model, same


def cliptag_route(encoder: Any, prep: Preprocessing, blobs: list[bytes]) -> tuple[float, float, NDArray[np.float32]]:
    """(ms decode + preprocess, ms inference, embeddings) of one batch."""
    t_prep, pixels = timed(lambda: np.stack([load_pixels(b, prep, Limits())[1] for b in blobs]))
    t_model, embeds = timed(encoder.embed, pixels)
    return t_prep, t_model, embeds


def transformers_route(processor: Any, model: Any, blobs: list[bytes]) -> tuple[float, float, NDArray[np.float32]]:
    import torch

    def prepare() -> Any:
        images = [Image.open(io.BytesIO(b)).convert("RGB") for b in blobs]
        return processor(images=images, return_tensors="pt")["pixel_values"]

    def features(pixels: Any) -> Any:
        with torch.no_grad():
            out = model.get_image_features(pixel_values=pixels)
        return out if isinstance(out, torch.Tensor) else out.pooler_output  # transformers 5: an output object

    t_prep, pixels = timed(prepare)
    t_model, embeds = timed(features, pixels)
    vectors = embeds.numpy().astype(np.float32)
    return t_prep, t_model, vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def missing() -> str | None:
    """Why the transformers route cannot run here, if it cannot."""
    from model_export.checkpoint import DEFAULT_GEOMETRY_DIR

    absent = [m for m in ("torch", "transformers") if importlib.util.find_spec(m) is None]
    if absent:
        return f"{' and '.join(absent)} not installed (the export extra: make venv)"
    if not (DEFAULT_GEOMETRY_DIR / "preprocessor_config.json").is_file():
        return f"no CLIP config in {DEFAULT_GEOMETRY_DIR} (clone the repo beside shared/)"
    return None


def run(bench: Bench) -> None:
    size, todo = bench.args.batch_size, batches(bench)
    reason = missing()
    if reason:
        bench.section("cliptag vs transformers")
        bench.row(SECTION, "transformers route", f"skipped: {reason}")
        return
    import torch
    import transformers
    from cliptag.bundle import ModelBundle
    from cliptag.config import vcpus
    from cliptag.encoder import ImageEncoder

    from model_export.checkpoint import DEFAULT_GEOMETRY_DIR

    bundle = ModelBundle.open(bench.model_dir)
    encoder, prep = ImageEncoder(bundle.image_encoder_path()), bundle.preprocessing
    model, same_weights = torch_model(bundle.manifest["model"]["source"], bundle.manifest["model"]["revision"])
    processor = transformers.CLIPImageProcessor.from_pretrained(str(DEFAULT_GEOMETRY_DIR))
    ours: list[tuple[float, float]] = []
    theirs: list[tuple[float, float]] = []
    cosines: list[NDArray[np.float32]] = []
    cliptag_route(encoder, prep, todo[0])  # warm-up, untimed: first-run allocations on both sides
    transformers_route(processor, model, todo[0])
    for i, blobs in enumerate(todo):
        if i % 2 == 0:  # alternate which route goes first: neither always follows the other
            a, b = cliptag_route(encoder, prep, blobs), transformers_route(processor, model, blobs)
        else:
            b, a = transformers_route(processor, model, blobs), cliptag_route(encoder, prep, blobs)
        ours.append((a[0] / size, a[1] / size))
        theirs.append((b[0] / size, b[1] / size))
        cosines.append(np.sum(a[2] * b[2], axis=1))
    quantization = bundle.manifest["image_encoder"]["quantization"]
    bench.section(
        f"cliptag vs transformers, batch of {size} COCO photos ({len(todo)} batches), ms per image (median);"
        f" ORT {vcpus()} threads, torch {torch.get_num_threads()}"
    )
    rows = (
        ("cliptag: decode + preprocess (load_pixels, draft)", [p for p, _ in ours], None),
        (f"cliptag: ONNX Runtime image encoder ({quantization})", [m for _, m in ours], None),
        ("cliptag: total", [p + m for p, m in ours], "cliptag_ms_per_image"),
        (f"transformers: PIL decode + {type(processor).__name__}", [p for p, _ in theirs], None),
        ("transformers: PyTorch get_image_features (fp32)", [m for _, m in theirs], None),
        ("transformers: total", [p + m for p, m in theirs], "transformers_ms_per_image"),
    )
    medians = {}
    for label, values, key in rows:
        medians[label] = statistics.median(values)
        bench.row(SECTION, label, f"{medians[label]:8.2f} ms", key, medians[label] if key else None)
    ratio = medians["transformers: total"] / medians["cliptag: total"]
    label = "transformers / cliptag (~1.75 expected for ViT-B/32)"
    bench.row(SECTION, label, f"{ratio:8.2f} x", "transformers_over_cliptag", ratio)
    if same_weights:  # the same computation on both sides, up to int8 and draft decoding
        low = float(np.concatenate(cosines).min())
        bench.row(
            SECTION, "embeddings, cliptag vs transformers: min cosine", f"{low:8.5f}", "transformers_min_cosine", low
        )
    else:
        bench.row(SECTION, "embeddings compared", "no: the bundle's weights are not a random configuration")


MEASURE = Measure("transformers", "cliptag decode + int8 ONNX vs CLIPImageProcessor + PyTorch", run)
