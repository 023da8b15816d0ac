"""The ONNX text encoder and CLIP's tokenizer settings: texts -> L2-normalised embeddings.

The API function embeds free-text search queries with it; the export embeds the vocabulary's
prompts into tag embeddings with the same code, so a query and a tag live in one space.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray

from cliptag.encoder import session_options
from cliptag.scoring import l2_normalise

CONTEXT_LENGTH = 77


class TextEncoder:
    """Texts -> L2-normalised ``text_embeds [N,D]`` through the model's own BPE tokenizer."""

    def __init__(self, model_path: Path, tokenizer_path: Path, threads: int = 0) -> None:
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(str(tokenizer_path))
        configure_clip_tokenizer(self.tokenizer)
        self.session = ort.InferenceSession(
            str(model_path), session_options(threads), providers=["CPUExecutionProvider"]
        )
        self.eot = _eot_id(self.tokenizer)
        shape = self.session.get_inputs()[0].shape
        self.trims_padding = len(shape) == 2 and not isinstance(shape[1], int)

    def token_ids(self, texts: list[str]) -> NDArray[np.int64]:
        return np.array([e.ids for e in self.tokenizer.encode_batch(texts)], dtype=np.int64)

    def trim(self, ids: NDArray[np.int64]) -> NDArray[np.int64]:
        """Drop padding after the longest text: CLIP's text model is causal and pools at the first
        end-of-text token, so later positions cannot change the result (about 7x less compute)."""
        if not self.trims_padding:
            return ids
        longest = int((ids == self.eot).argmax(axis=1).max()) + 1
        return np.ascontiguousarray(ids[:, :longest])

    def embed(self, texts: list[str], batch_size: int = 64) -> NDArray[np.float32]:
        chunks = []
        for start in range(0, len(texts), batch_size):
            ids = self.trim(self.token_ids(texts[start : start + batch_size]))
            (out,) = self.session.run(None, {"input_ids": ids})  # the exporter's contract: no mask
            chunks.append(np.asarray(out, dtype=np.float32))
        return l2_normalise(np.concatenate(chunks, axis=0))


def _eot_id(tokenizer: object) -> int:
    tid = tokenizer.token_to_id("<|endoftext|>")  # type: ignore[attr-defined]
    return int(tid) if tid is not None else 49407


def configure_clip_tokenizer(tokenizer: object) -> None:
    """Truncate to 77 tokens (keeping start/end markers) and pad with <|endoftext|>, like CLIPTokenizer."""
    eot = _eot_id(tokenizer)
    tokenizer.enable_truncation(max_length=CONTEXT_LENGTH)  # type: ignore[attr-defined]
    tokenizer.enable_padding(length=CONTEXT_LENGTH, pad_id=eot, pad_token="<|endoftext|>")  # type: ignore[attr-defined]
