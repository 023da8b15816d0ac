"""The near-duplicate threshold of a model, chosen on photos and the copies of them it makes.

A near-duplicate is the same photo stored again differently: resized, recompressed, lightly
cropped, or re-saved without its metadata (EXIF stripped). Positives are each photo against
each of its copies; negatives are every pair of different photos (the COCO set holds several
photos of similar scenes: kitchens, streets, giraffes, tennis courts). Every image goes through
the tagger's own path (decode, image encoder, the stored int8 form), so the cosine compared is
the one the search index holds.

The threshold is the lowest cosine at which no pair of different photos is reported (rounded
up): a near-duplicate report must not be a guess. Recall per kind of copy says what that costs.
Random weights give their own figures; real weights need theirs, which is why the export
computes it for every model directory.

``python -m model_export near-duplicates --model-dir D [--write]`` prints the figures (and
writes them into the manifest).
"""

from __future__ import annotations

import argparse
import io
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from cliptag import codec
from cliptag.bundle import MANIFEST, ModelBundle
from cliptag.encoder import ImageEncoder
from cliptag.imaging import Limits, load_pixels
from numpy.typing import NDArray
from PIL import Image, ImageOps

from model_export.photos import coco_photos, skimage_photos

CROP = 0.05  # "lightly cropped": 5% off each side


def _jpeg(image: Image.Image, quality: int) -> bytes:
    out = io.BytesIO()
    image.convert("RGB").save(out, "JPEG", quality=quality)  # no exif= argument: metadata dropped
    return out.getvalue()


def _cropped(image: Image.Image) -> bytes:
    w, h = image.size
    dx, dy = int(w * CROP), int(h * CROP)
    return _jpeg(image.crop((dx, dy, w - dx, h - dy)), 90)


COPIES: dict[str, Callable[[Image.Image], bytes]] = {
    "resized": lambda im: _jpeg(im.resize((max(1, im.width // 2), max(1, im.height // 2))), 90),
    "recompressed": lambda im: _jpeg(im, 40),
    "cropped": _cropped,
    "exif stripped": lambda im: _jpeg(im, 95),
}


def copies(data: bytes) -> dict[str, bytes]:
    """The near-duplicate copies of one photo, by kind (upright first: what a viewer shows)."""
    image = ImageOps.exif_transpose(Image.open(io.BytesIO(data)))
    image.load()
    return {kind: make(image) for kind, make in COPIES.items()}


def stored_embeddings(bundle: ModelBundle, encoder: ImageEncoder, images: list[bytes]) -> NDArray[np.float32]:
    """What the tagger stores for each image: decoded, embedded, in its int8 round-trip form."""
    pixels = [load_pixels(data, bundle.preprocessing, Limits())[1] for data in images]
    out = [encoder.embed(np.stack(pixels[i : i + 16])) for i in range(0, len(pixels), 16)]
    return np.stack([codec.round_trip(v) for v in np.concatenate(out)])


def threshold_without_false_reports(negatives: NDArray[np.float32]) -> float:
    """The lowest 4-decimal cosine above every pair of different photos."""
    return min(1.0, math.floor(float(negatives.max()) * 1e4 + 1) / 1e4) if negatives.size else 0.95


def figures(
    threshold: float, positives: dict[str, NDArray[np.float32]], negatives: NDArray[np.float32]
) -> dict[str, Any]:
    found = {kind: int((sims >= threshold).sum()) for kind, sims in positives.items()}
    true = sum(found.values())
    false = int((negatives >= threshold).sum())
    total = sum(len(s) for s in positives.values())
    return {
        "threshold": threshold,
        "precision": round(true / (true + false), 4) if true + false else 1.0,
        "recall": round(true / total, 4) if total else 0.0,
        "recall_by_copy": {kind: round(found[kind] / len(sims), 4) for kind, sims in positives.items()},
        "pairs": {"positive": total, "negative": int(negatives.size)},
    }


def measure(model_dir: Path, photos: list[Path], threshold: float | None = None) -> dict[str, Any]:
    """Positives and negatives on ``photos``; the figures at ``threshold`` (default: chosen here)."""
    bundle = ModelBundle.open(model_dir)
    encoder = ImageEncoder(bundle.image_encoder_path())
    originals = [p.read_bytes() for p in photos]
    base = stored_embeddings(bundle, encoder, originals)
    made = [copies(data) for data in originals]
    positives = {}
    for kind in COPIES:
        copy_embeddings = stored_embeddings(bundle, encoder, [m[kind] for m in made])
        positives[kind] = np.einsum("nd,nd->n", base, copy_embeddings)
    similarity = base @ base.T
    negatives = similarity[np.triu_indices(len(base), 1)]
    chosen = threshold_without_false_reports(negatives) if threshold is None else threshold
    report = figures(chosen, positives, negatives)
    report["photos"] = len(photos)
    report["negative_max"] = round(float(negatives.max()), 6) if negatives.size else None
    report["positive_min"] = {kind: round(float(s.min()), 6) for kind, s in positives.items()}
    report["rule"] = "lowest cosine above every pair of different photos"
    return report


def default_photos(limit: int = 128) -> list[Path]:
    return coco_photos()[:limit] or skimage_photos()[:limit]


def write(model_dir: Path, report: dict[str, Any]) -> None:
    """Record the figures in the manifest (not itself a listed file: no hash to update)."""
    path = model_dir / MANIFEST
    manifest = json.loads(path.read_text("utf-8"))
    manifest["near_duplicates"] = report
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(manifest, indent=2), "utf-8")
    tmp.replace(path)


def summary(report: dict[str, Any]) -> str:
    by_copy = ", ".join(f"{kind} {share:.0%}" for kind, share in report["recall_by_copy"].items())
    return (
        f"near-duplicates: threshold {report['threshold']:.4f} on {report['photos']} photos: "
        f"precision {report['precision']:.1%}, recall {report['recall']:.1%} ({by_copy})"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m model_export near-duplicates", description=__doc__)
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--photos", type=int, default=128, help="how many photos (COCO's, else scikit-image's)")
    parser.add_argument("--threshold", type=float, help="report the figures at this threshold instead")
    parser.add_argument("--write", action="store_true", help="record the figures in the manifest")
    args = parser.parse_args(argv)
    photos = default_photos(args.photos)
    if len(photos) < 2:
        raise SystemExit("need at least two photos: place the project beside shared/data or install scikit-image")
    report = measure(args.model_dir, photos, args.threshold)
    print(summary(report))
    if args.write:
        write(args.model_dir, report)
    return 0
