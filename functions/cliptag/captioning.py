"""Captions with the exported caption model (BLIP): two ONNX graphs and greedy decoding in numpy.

The image graph runs once per photo and gives every decoder layer's cross-attention keys and
values; the step graph then runs once per generated token with the self-attention cache (the
keys and values of the tokens so far), so each step costs one token's work. Greedy: the most
likely token each step, until [SEP] or ``max_new_tokens``; the tokens equal transformers'
``generate()`` (``model_export.caption_parity``). No PyTorch here.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from cliptag.imaging import Preprocessing

MANIFEST = "caption.json"


@dataclass(frozen=True)
class CaptionTiming:
    image_ms: float = 0.0  # the image graph, for the whole batch
    steps: int = 0  # decoder steps run
    step_ms: float = 0.0  # all of them


@dataclass
class Captioner:
    directory: Path
    threads: int = 0  # ONNX Runtime intra-op threads; 0: its default
    manifest: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.manifest = json.loads((self.directory / MANIFEST).read_text("utf-8"))
        options = ort.SessionOptions()
        if self.threads:
            options.intra_op_num_threads = self.threads
        files = self.manifest["files"]
        providers = ["CPUExecutionProvider"]
        self._image = ort.InferenceSession(str(self.directory / files["image"]), options, providers=providers)
        self._step = ort.InferenceSession(str(self.directory / files["step"]), options, providers=providers)
        self.tokenizer = Tokenizer.from_file(str(self.directory / files["tokenizer"]))
        self.timing = CaptionTiming()

    @property
    def preprocessing(self) -> Preprocessing:
        m = self.manifest
        size = int(m["image_size"])
        return Preprocessing(size=size, crop=size, mean=tuple(m["mean"]), std=tuple(m["std"]), resize="squash")

    def token_ids(self, pixels: NDArray[np.float32], max_new_tokens: int | None = None) -> list[list[int]]:
        """Greedy token ids for a batch of preprocessed images, without the prompt, up to [SEP]."""
        m = self.manifest
        limit = int(max_new_tokens or m["max_new_tokens"])
        start = time.perf_counter()
        (cross,) = self._image.run(None, {"pixel_values": pixels.astype(np.float32, copy=False)})
        image_ms = (time.perf_counter() - start) * 1000
        n = pixels.shape[0]
        ids = np.array([[m["bos_token_id"], *m["prompt_ids"]]] * n, dtype=np.int64)
        past = np.zeros((2 * m["layers"], n, m["heads"], 0, m["head_dim"]), dtype=np.float32)
        found: list[list[int]] = [[] for _ in range(n)]
        done = np.zeros(n, dtype=bool)
        steps, start = 0, time.perf_counter()
        for _ in range(limit):
            logits, past = self._step.run(None, {"input_ids": ids, "past": past, "cross": cross})
            chosen = logits.argmax(-1)
            steps += 1
            for i, token in enumerate(chosen.tolist()):
                if not done[i]:
                    done[i] = token == m["sep_token_id"]
                    if not done[i]:
                        found[i].append(token)
            if done.all():
                break
            ids = chosen[:, None].astype(np.int64)
        self.timing = CaptionTiming(image_ms, steps, (time.perf_counter() - start) * 1000)
        return found

    def captions(self, pixels: NDArray[np.float32]) -> list[str]:
        """Captions of a batch of preprocessed images (the prompt, if any, begins each)."""
        prompt = str(self.manifest.get("prompt", ""))
        texts = [self.tokenizer.decode(ids, skip_special_tokens=True).strip() for ids in self.token_ids(pixels)]
        return [f"{prompt} {text}".strip() if prompt else text for text in texts]
