"""Proof that the exported model computes what the original computes, on every export.

* ONNX fp32 vs PyTorch: image embeddings on real photos and text embeddings on the tag
  prompts; cosine >= 0.99999 or the export fails.
* Our Pillow+numpy preprocessing vs the checkpoint's own CLIPImageProcessor: max |diff| <= 1e-4.
* The ``tokenizers`` ids vs transformers' CLIPTokenizer on prompts and hard cases.
* Quantized variants vs fp32: mean/min cosine and top-5 tag agreement.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from cliptag.imaging import Limits, Preprocessing, decode, preprocess
from numpy.typing import NDArray
from PIL import Image

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


def preprocessing_parity(paths: list[Path], prep: Preprocessing, processor_dir: Path) -> dict[str, Any]:
    import transformers

    # The PIL reference path explicitly (the torchvision backend resizes differently);
    # transformers < 5 has only the PIL implementation, under the plain name.
    processor_class = getattr(transformers, "CLIPImageProcessorPil", None) or transformers.CLIPImageProcessor
    processor = processor_class.from_pretrained(str(processor_dir))
    worst = 0.0
    for path in paths:
        with Image.open(path) as img:
            rgb = img.convert("RGB")
            theirs = processor(images=rgb, return_tensors="np")["pixel_values"][0]
            ours = preprocess(rgb, prep)
        worst = max(worst, float(np.abs(theirs - ours).max()))
    return {
        "images": len(paths),
        "max_abs_diff": worst,
        "limit": PREPROCESS_MAX_ABS,
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


def tokenizer_parity(tokenizer_json: Path, vocab_dir: Path, texts: list[str]) -> dict[str, Any]:
    from tokenizers import Tokenizer

    from model_export.text_encoder import configure_clip_tokenizer

    ours = Tokenizer.from_file(str(tokenizer_json))
    configure_clip_tokenizer(ours)
    theirs = reference_tokenizer(vocab_dir)
    all_texts = list(texts) + list(HARD_TEXTS)
    expected = theirs(all_texts, padding="max_length", truncation=True, max_length=77)["input_ids"]
    got = [e.ids for e in ours.encode_batch(all_texts)]
    mismatches = [t for t, a, b in zip(all_texts, expected, got, strict=True) if list(a) != list(b)]
    return {
        "texts": len(all_texts),
        "mismatches": len(mismatches),
        "examples": mismatches[:3],
        "ok": not mismatches,
    }


def top5_agreement(reference: NDArray[np.float32], candidate: NDArray[np.float32], tags: NDArray[np.float32]) -> float:
    """Share of images whose top-5 tags are the same set under both encoders."""
    ref_top = np.argsort(-(reference @ tags.T), axis=1)[:, :5]
    cand_top = np.argsort(-(candidate @ tags.T), axis=1)[:, :5]
    return float(np.mean([set(a) == set(b) for a, b in zip(ref_top, cand_top, strict=True)]))


def as_dict(stats: CosineStats) -> dict[str, Any]:
    return asdict(stats)
