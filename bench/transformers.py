"""cliptag's image path against the model's own reference pipelines, on the same photos in one run.

cliptag: decode + preprocess with ``cliptag.imaging.load_pixels`` (JPEG draft decoding) and the
image encoder the bundle ships (ONNX Runtime, int8), the tagger's session options. Against it:

- open_clip (OpenCLIP models): PIL decode, open_clip's own transform for the model's
  PreprocessCfg and ``encode_image`` in PyTorch;
- transformers (CLIP architectures, OpenCLIP's ViT-B-32-256 too, converted as the export
  converts it): PIL decode, ``CLIPImageProcessor`` with the model's constants and
  ``CLIPModel.get_image_features`` in PyTorch.

Both in eval mode under ``torch.no_grad()``, the model rebuilt as the export builds its random
configurations, so for a random bundle the weights are the bundle's own. Batches rotate which
route goes first; needs the export extra (torch, transformers, open_clip) and ../shared/data.
"""

from __future__ import annotations

import importlib.util
import io
import statistics
import tempfile
from collections.abc import Callable
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
Timed = tuple[float, float, NDArray[np.float32]]  # ms preprocessing, ms model, embeddings
Route = Callable[[list[bytes]], Timed]


def torch_checkpoint(source: str, revision: str) -> tuple[Any, bool]:
    """(the export's Checkpoint, whether its weights are the bundle's): a random bundle's own
    configuration and seed (the export's code), else ViT-B/32 geometry with random weights."""
    from model_export.checkpoint import DEFAULT_GEOMETRY_DIR, RANDOM_CONFIGS, load_checkpoint

    config = source.removeprefix("random:")
    same = source.startswith("random:") and config in RANDOM_CONFIGS and revision.startswith("seed")
    seed = int(revision.removeprefix("seed")) if same else 0
    with tempfile.TemporaryDirectory(prefix="bench-torch-") as tmp:
        ckpt = load_checkpoint(config if same else "vit-b-32-random", None, DEFAULT_GEOMETRY_DIR, Path(tmp), seed)
    return ckpt, same


def cliptag_route(encoder: Any, prep: Preprocessing, blobs: list[bytes]) -> Timed:
    """(ms decode + preprocess, ms inference, embeddings) of one batch."""
    t_prep, pixels = timed(lambda: np.stack([load_pixels(b, prep, Limits())[1] for b in blobs]))
    t_model, embeds = timed(encoder.embed, pixels)
    return t_prep, t_model, embeds


def torch_route(prepare: Callable[[list[Image.Image]], Any], features: Callable[[Any], Any]) -> Route:
    """A reference pipeline: PIL decode + its preprocessing, then its PyTorch image tower."""

    def route(blobs: list[bytes]) -> Timed:
        import torch

        t_prep, pixels = timed(lambda: prepare([Image.open(io.BytesIO(b)).convert("RGB") for b in blobs]))
        with torch.no_grad():
            t_model, embeds = timed(features, pixels)
        vectors = np.asarray(embeds.numpy(), np.float32)
        return t_prep, t_model, vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    return route


def clip_processor(prep: Preprocessing) -> Any:
    """transformers' CLIPImageProcessor (PIL) with the model's own constants."""
    import transformers

    cls = getattr(transformers, "CLIPImageProcessorPil", None) or transformers.CLIPImageProcessor
    return cls(
        size={"shortest_edge": prep.size},
        crop_size={"height": prep.crop, "width": prep.crop},
        image_mean=list(prep.mean),
        image_std=list(prep.std),
        resample=prep.resample,
    )


def reference_routes(ckpt: Any, prep: Preprocessing) -> dict[str, tuple[str, Route]]:
    """The model's reference pipelines: {name: (its preprocessing, its route)}."""
    import torch
    from transformers import CLIPModel

    from model_export.references import OpenClipReference

    routes: dict[str, tuple[str, Route]] = {}
    ref = ckpt.reference
    if isinstance(ref, OpenClipReference):

        def transform(images: list[Image.Image]) -> Any:
            return torch.stack([ref.preprocess(i) for i in images])

        routes["open_clip"] = ("open_clip transform", torch_route(transform, ref.model.encode_image))
    if isinstance(ckpt.model, CLIPModel) and prep.resize == "shortest":
        processor, model = clip_processor(prep), ckpt.model

        def process(images: list[Image.Image]) -> Any:
            return processor(images=images, return_tensors="pt")["pixel_values"]

        def features(pixels: Any) -> Any:
            out = model.get_image_features(pixel_values=pixels)
            return out if isinstance(out, torch.Tensor) else out.pooler_output  # transformers 5: an output object

        routes["transformers"] = (type(processor).__name__, torch_route(process, features))
    return routes


def missing() -> str | None:
    """Why the reference routes cannot run here, if they cannot."""
    from model_export.checkpoint import DEFAULT_GEOMETRY_DIR

    absent = [m for m in ("torch", "transformers", "open_clip") if importlib.util.find_spec(m) is None]
    if absent:
        return f"{' and '.join(absent)} not installed (the export extra: make venv)"
    if not (DEFAULT_GEOMETRY_DIR / "preprocessor_config.json").is_file():
        return f"no CLIP config in {DEFAULT_GEOMETRY_DIR} (clone the repo beside shared/)"
    return None


def run(bench: Bench) -> None:
    size, todo = bench.args.batch_size, batches(bench)
    reason = missing()
    if reason:
        bench.section("cliptag vs the reference pipelines")
        bench.row(SECTION, "reference routes", f"skipped: {reason}")
        return
    import torch
    from cliptag.bundle import ModelBundle
    from cliptag.config import vcpus
    from cliptag.encoder import ImageEncoder

    bundle = ModelBundle.open(bench.model_dir)
    encoder, prep = ImageEncoder(bundle.image_encoder_path()), bundle.preprocessing
    ckpt, same_weights = torch_checkpoint(bundle.manifest["model"]["source"], bundle.manifest["model"]["revision"])
    references = reference_routes(ckpt, prep)
    routes: dict[str, Route] = {"cliptag": lambda blobs: cliptag_route(encoder, prep, blobs)}
    routes.update({name: route for name, (_, route) in references.items()})
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in routes}
    cosines: dict[str, list[NDArray[np.float32]]] = {name: [] for name in references}
    for route in routes.values():
        route(todo[0])  # warm-up, untimed: first-run allocations on every side
    order = list(routes)
    for i, blobs in enumerate(todo):
        turn = order[i % len(order) :] + order[: i % len(order)]  # rotate who goes first
        out = {name: routes[name](blobs) for name in turn}
        for name, (t_prep, t_model, _) in out.items():
            times[name].append((t_prep / size, t_model / size))
        for name in references:
            cosines[name].append(np.sum(out["cliptag"][2] * out[name][2], axis=1))
    quantization = bundle.manifest["image_encoder"]["quantization"]
    bench.section(
        f"cliptag vs the reference pipelines, batch of {size} COCO photos ({len(todo)} batches), ms per image"
        f" (median); ORT {vcpus()} threads, torch {torch.get_num_threads()}"
    )
    labels = {"cliptag": ("decode + preprocess (load_pixels, draft)", f"ONNX Runtime image encoder ({quantization})")}
    for name, (processing, _) in references.items():
        labels[name] = (f"PIL decode + {processing}", "PyTorch image tower (fp32)")
    totals = {}
    for name, (prep_label, model_label) in labels.items():
        values = times[name]
        totals[name] = statistics.median([p + m for p, m in values])
        bench.row(SECTION, f"{name}: {prep_label}", f"{statistics.median(p for p, _ in values):8.2f} ms")
        bench.row(SECTION, f"{name}: {model_label}", f"{statistics.median(m for _, m in values):8.2f} ms")
        bench.row(SECTION, f"{name}: total", f"{totals[name]:8.2f} ms", f"{name}_ms_per_image", totals[name])
    for name in references:
        ratio = totals[name] / totals["cliptag"]
        bench.row(SECTION, f"{name} / cliptag", f"{ratio:8.2f} x", f"{name}_over_cliptag", ratio)
        if same_weights:  # the same computation on both sides, up to int8 and draft decoding
            low = float(np.concatenate(cosines[name]).min())
            bench.row(SECTION, f"embeddings, cliptag vs {name}: min cosine", f"{low:8.5f}", f"{name}_min_cosine", low)
    if not same_weights:
        bench.row(SECTION, "embeddings compared", "no: the bundle's weights are not a random configuration")


MEASURE = Measure("transformers", "cliptag decode + int8 ONNX vs the model's open_clip and transformers pipelines", run)
