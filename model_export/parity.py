"""Proof that the exported model computes what the original computes, on every export.

* ONNX fp32 vs PyTorch: image embeddings on real photos and text embeddings on the tag
  prompts; cosine >= 0.99999 or the export fails.
* Our Pillow+numpy preprocessing vs the family's own (transformers' CLIPImageProcessor, or
  open_clip's transform): max |diff| <= 1e-4.
* The ``tokenizers`` ids vs the family's tokenizer (CLIPTokenizer, or open_clip's) on prompts and
  hard cases.
* Quantized variants vs fp32: mean/min cosine and top-5 tag agreement (image encoder); min/mean
  cosine on the tag prompts and free-text queries and top-10 search overlap (text encoder).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from cliptag.encoder import ImageEncoder
from cliptag.imaging import Limits, Preprocessing, decode, preprocess
from cliptag.text import TextEncoder, TextSettings, configure_tokenizer
from numpy.typing import NDArray
from PIL import Image


class ParityError(RuntimeError):
    """The exported model does not compute what the original computes."""


FP32_MIN_COSINE = 0.99999
PREPROCESS_MAX_ABS = 1e-4
HARD_TEXTS = (
    "a photo of a dog.",
    "Hello, World!!! It's a ‘quoted’ test... (with punctuation); & symbols: #1 @home",
    "crème brûlée à la café, naïve façade, Ångström, São Paulo",
    "emoji 🐶🌅🍕 and CJK 犬 猫 and Ελληνικά",
    "UPPER case and MiXeD CaSe and     lots   of\twhitespace\n",
    "don't can't won't they're we've i'm she'll he'd",
    " ".join(["a very long caption that goes on"] * 20),  # > 77 tokens: truncated
)


@dataclass
class CosineStats:
    n: int
    min_cosine: float
    mean_cosine: float
    max_abs_diff: float


def cosine_stats(reference: NDArray[np.float32], candidate: NDArray[np.float32]) -> CosineStats:
    ref = reference / np.linalg.norm(reference, axis=1, keepdims=True)
    cand = candidate / np.linalg.norm(candidate, axis=1, keepdims=True)
    cos = np.sum(ref * cand, axis=1)
    return CosineStats(
        n=len(cos),
        min_cosine=float(cos.min()),
        mean_cosine=float(cos.mean()),
        max_abs_diff=float(np.abs(reference - candidate).max()),
    )


def photo_batch(paths: list[Path], prep: Preprocessing) -> NDArray[np.float32]:
    """Reference preprocessing (no draft decoding) of real photos -> [N,3,H,W]."""
    limits = Limits()
    return np.stack([preprocess(decode(p.read_bytes(), limits).image, prep) for p in paths])


def preprocessing_parity(paths: list[Path], prep: Preprocessing, reference: Any) -> dict[str, Any]:
    """Our Pillow+numpy preprocessing against the family's own (``reference``: a directory with
    transformers' preprocessor_config.json, or a model_export.references object)."""
    if isinstance(reference, Path):
        from model_export.references import TransformersReference

        reference = TransformersReference(None, reference, reference)
    worst = 0.0
    for path in paths:
        with Image.open(path) as img:
            rgb = img.convert("RGB")
            theirs = reference.pixels(rgb)
            ours = preprocess(rgb, prep)
        worst = max(worst, float(np.abs(theirs - ours).max()))
    return {
        "images": len(paths),
        "max_abs_diff": worst,
        "limit": PREPROCESS_MAX_ABS,
        "reference": reference.name,
        "ok": worst <= PREPROCESS_MAX_ABS,
    }


def reference_tokenizer(vocab_dir: Path) -> Any:
    """transformers' CLIPTokenizer built from vocab.json + merges.txt alone.

    The directory is copied without tokenizer.json, so transformers constructs the tokenizer
    from the BPE files with its own CLIP rules: an independent reference for our tokenizer.json.
    """
    import shutil
    import tempfile

    from transformers import CLIPTokenizer

    tmp = Path(tempfile.mkdtemp(prefix="clip-tok-"))
    for name in ("vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json"):
        if (vocab_dir / name).is_file():
            shutil.copy(vocab_dir / name, tmp / name)
    if not (tmp / "vocab.json").is_file() or not (tmp / "merges.txt").is_file():
        raise FileNotFoundError(f"{vocab_dir} lacks vocab.json/merges.txt for the tokenizer parity check")
    return CLIPTokenizer.from_pretrained(str(tmp))


def tokenizer_parity(
    tokenizer_json: Path, reference: Any, texts: list[str], settings: TextSettings | None = None
) -> dict[str, Any]:
    """Our ``tokenizers`` ids against the family's tokenizer (``reference``: a directory with
    vocab.json + merges.txt for CLIPTokenizer, or a model_export.references object)."""
    from tokenizers import Tokenizer

    if isinstance(reference, Path):
        from model_export.references import TransformersReference

        reference = TransformersReference(None, reference, reference)
    settings = settings or TextSettings()
    ours = Tokenizer.from_file(str(tokenizer_json))
    configure_tokenizer(ours, settings)
    all_texts = list(texts) + list(HARD_TEXTS)
    expected = reference.ids(all_texts, settings.context_length)
    got = [e.ids for e in ours.encode_batch(all_texts)]
    mismatches = [t for t, a, b in zip(all_texts, expected, got, strict=True) if list(a) != list(b)]
    return {
        "texts": len(all_texts),
        "mismatches": len(mismatches),
        "examples": mismatches[:3],
        "reference": reference.name,
        "ok": not mismatches,
    }


def top5_agreement(reference: NDArray[np.float32], candidate: NDArray[np.float32], tags: NDArray[np.float32]) -> float:
    """Share of images whose top-5 tags are the same set under both encoders."""
    ref_top = np.argsort(-(reference @ tags.T), axis=1)[:, :5]
    cand_top = np.argsort(-(candidate @ tags.T), axis=1)[:, :5]
    return float(np.mean([set(a) == set(b) for a, b in zip(ref_top, cand_top, strict=True)]))


def top_k_overlap(
    reference: NDArray[np.float32], candidate: NDArray[np.float32], images: NDArray[np.float32], k: int = 10
) -> float:
    """Mean share of the top-``k`` images (by cosine) that two sets of query embeddings agree on:
    what a search user would see change."""
    k = min(k, len(images))
    ref_top = np.argpartition(-(reference @ images.T), k - 1, axis=1)[:, :k]
    cand_top = np.argpartition(-(candidate @ images.T), k - 1, axis=1)[:, :k]
    return float(np.mean([len(set(a) & set(b)) / k for a, b in zip(ref_top, cand_top, strict=True)]))


def photo_embeddings(encoder: Path, photos: list[Path], prep: Preprocessing, batch: int = 16) -> NDArray[np.float32]:
    """L2-normalised embeddings of real photos through an image encoder (a batch at a time: 128
    photos at once would hold 77 MB of pixels)."""
    image_encoder = ImageEncoder(encoder)
    chunks = [image_encoder.embed(photo_batch(photos[i : i + batch], prep)) for i in range(0, len(photos), batch)]
    return np.concatenate(chunks)


def query_embeddings(encoder: TextEncoder, queries: list[str]) -> NDArray[np.float32]:
    """One query per call, as the API embeds them: dynamic int8 quantizes the activations with one
    scale per call (over the whole batch, padding included), so a batch is not what a search gets.
    Measured, int8 vs fp32 over the 1,000 queries on the full-size geometry: min cosine 0.99906
    one at a time, 0.99894 in batches of 64."""
    return encoder.embed(queries, batch_size=1)


def text_variant_figures(
    reference: tuple[NDArray[np.float32], NDArray[np.float32]],
    candidate: tuple[NDArray[np.float32], NDArray[np.float32]],
    images: NDArray[np.float32] | None,
) -> dict[str, Any]:
    """A text encoder variant against fp32: (prompt, query) embeddings of each; ``images`` are the
    photos searched for the top-10 overlap (None: no photos, no overlap figure)."""
    prompts, queries = cosine_stats(reference[0], candidate[0]), cosine_stats(reference[1], candidate[1])
    n = prompts.n + queries.n
    return {
        "min_cosine": min(prompts.min_cosine, queries.min_cosine),
        "mean_cosine": (prompts.mean_cosine * prompts.n + queries.mean_cosine * queries.n) / n,
        "prompts": as_dict(prompts),
        "queries": as_dict(queries),
        "top10_overlap": None if images is None else top_k_overlap(reference[1], candidate[1], images),
        "photos": 0 if images is None else len(images),
    }


def as_dict(stats: CosineStats) -> dict[str, Any]:
    return asdict(stats)
