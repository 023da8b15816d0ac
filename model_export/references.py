"""Each model family's own reference pipeline, which the export's parity checks hold ours to:
how it preprocesses a photo, how it tokenizes a text and what its PyTorch towers compute.

- transformers (CLIP checkpoints on the Hub): ``CLIPImageProcessor`` (PIL), ``CLIPTokenizer``
  built from vocab.json + merges.txt, ``CLIPModel``'s towers;
- open_clip: its ``image_transform_v2`` for the model's PreprocessCfg, its tokenizer
  (``get_tokenizer``: CLIP's BPE, or an ``HFTokenizer``), ``encode_image`` / ``encode_text``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image


@dataclass
class TransformersReference:
    model: Any  # transformers.CLIPModel
    processor_dir: Path  # preprocessor_config.json
    vocab_dir: Path  # vocab.json + merges.txt
    name: str = "transformers (CLIPImageProcessor, CLIPTokenizer, CLIPModel)"

    def pixels(self, rgb: Image.Image) -> NDArray[np.float32]:
        import transformers

        # The PIL reference path explicitly (the torchvision backend resizes differently);
        # transformers < 5 has only the PIL implementation, under the plain name.
        cls = getattr(transformers, "CLIPImageProcessorPil", None) or transformers.CLIPImageProcessor
        if not hasattr(self, "_processor"):
            self._processor = cls.from_pretrained(str(self.processor_dir))
        return np.asarray(self._processor(images=rgb, return_tensors="np")["pixel_values"][0], np.float32)

    def ids(self, texts: list[str], context_length: int) -> list[list[int]]:
        from model_export.parity import reference_tokenizer

        if not hasattr(self, "_tokenizer"):
            self._tokenizer = reference_tokenizer(self.vocab_dir)
        out = self._tokenizer(texts, padding="max_length", truncation=True, max_length=context_length)
        return [list(ids) for ids in out["input_ids"]]

    def image_embeds(self, pixels: NDArray[np.float32]) -> NDArray[np.float32]:
        from model_export.onnx_export import torch_image_embeds

        return np.asarray(torch_image_embeds(self.model, pixels), np.float32)

    def text_embeds(self, ids: NDArray[np.int64]) -> NDArray[np.float32]:
        from model_export.onnx_export import torch_text_embeds

        return np.asarray(torch_text_embeds(self.model, ids), np.float32)


@dataclass
class OpenClipReference:
    model: Any  # the open_clip model itself (not the converted copy the export may use)
    preprocess: Any  # open_clip's transform for the model's PreprocessCfg
    tokenizer: Any  # open_clip's tokenizer for the model
    pad_as: int | None = None  # CLIP: open_clip pads with 0 where CLIPTokenizer pads with <|endoftext|>
    name: str = "open_clip"

    def pixels(self, rgb: Image.Image) -> NDArray[np.float32]:
        return np.asarray(self.preprocess(rgb).numpy(), np.float32)

    def ids(self, texts: list[str], context_length: int) -> list[list[int]]:
        rows = self.tokenizer(texts, context_length=context_length).tolist()
        if self.pad_as is None:
            return [list(map(int, row)) for row in rows]
        # After the first end-of-text everything is padding: the same ids, whichever pad id.
        fixed = []
        for row in rows:
            end = row.index(self.pad_as) if self.pad_as in row else len(row)
            fixed.append([int(t) for t in row[: end + 1]] + [self.pad_as] * (len(row) - end - 1))
        return fixed

    def image_embeds(self, pixels: NDArray[np.float32]) -> NDArray[np.float32]:
        import torch

        with torch.no_grad():
            return np.asarray(self.model.encode_image(torch.from_numpy(pixels)).numpy(), np.float32)

    def text_embeds(self, ids: NDArray[np.int64]) -> NDArray[np.float32]:
        import torch

        with torch.no_grad():
            return np.asarray(self.model.encode_text(torch.from_numpy(ids)).numpy(), np.float32)
