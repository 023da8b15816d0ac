"""The references the caption export is held to: transformers' own ``generate()`` on the same
pixels (greedy), and the photos preprocessed as the caption function preprocesses them."""

from __future__ import annotations

from typing import Any

import numpy as np
from cliptag.imaging import Limits, Preprocessing, load_pixels
from numpy.typing import NDArray


def preprocessing(manifest: dict[str, Any]) -> Preprocessing:
    size = int(manifest["image_size"])
    return Preprocessing(
        size=size, crop=size, mean=tuple(manifest["mean"]), std=tuple(manifest["std"]), resize="squash"
    )


def preprocess_photos(photos: list[bytes], manifest: dict[str, Any]) -> NDArray[np.float32]:
    prep = preprocessing(manifest)
    return np.stack([load_pixels(p, prep, Limits(), fast=False)[1] for p in photos])


def wordpiece_ids(tokenizer: Any, prompt: str) -> list[int]:
    return list(tokenizer.encode(prompt, add_special_tokens=False).ids) if prompt else []


def torch_generate(
    model: Any, pixels: NDArray[np.float32], start: list[int], sep: int, max_new_tokens: int = 30
) -> list[list[int]]:
    """``BlipForConditionalGeneration.generate()``, greedy, one photo at a time (no padding in
    play): the new tokens of each, up to its [SEP]."""
    import torch

    found = []
    with torch.no_grad():
        for one in pixels:
            ids = torch.tensor([[*start, sep]])  # generate() drops the last id, as its processor's [SEP]
            out = model.generate(
                pixel_values=torch.from_numpy(one[None]),
                input_ids=ids,
                max_new_tokens=max_new_tokens,
                num_beams=1,
                do_sample=False,
                repetition_penalty=1.0,
                min_new_tokens=0,
            )[0].tolist()
            new = out[len(start) :]
            found.append(new[: new.index(sep)] if sep in new else new)
    return found
