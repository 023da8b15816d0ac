"""The ONNX text encoder and the model's tokenizer settings: texts -> L2-normalised embeddings.

The API function embeds free-text search queries with it; the export embeds the vocabulary's
prompts into tag embeddings with the same code, so a query and a tag live in one space. What
differs between model families (context length, padding, whether padding may be dropped) is
data from the manifest (``TextSettings``), never a branch here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray

from cliptag.encoder import session_options
from cliptag.scoring import l2_normalise

CONTEXT_LENGTH = 77  # CLIP's; a manifest may name another (SigLIP2: 64)


@dataclass(frozen=True)
class TextSettings:
    """How texts become the text encoder's input ids (the manifest's ``tokenizer`` section)."""

    context_length: int = CONTEXT_LENGTH
    pad_id: int | None = None  # None: the end-of-text token (CLIPTokenizer's padding)
    eot_id: int | None = None  # None: <|endoftext|>'s id in the tokenizer
    # "eot_argmax": a causal text model pooled at the first end-of-text token (CLIP): later
    # padding cannot change the result, so it may be dropped. "last": pooled at the last position
    # with bidirectional attention (SigLIP): every position counts, the length is fixed.
    pooling: str = "eot_argmax"


class TextEncoder:
    """Texts -> L2-normalised ``text_embeds [N,D]`` through the model's own tokenizer."""

    def __init__(
        self, model_path: Path, tokenizer_path: Path, threads: int = 0, settings: TextSettings | None = None
    ) -> None:
        from tokenizers import Tokenizer

        self.settings = settings or TextSettings()
        self.tokenizer = Tokenizer.from_file(str(tokenizer_path))
        configure_tokenizer(self.tokenizer, self.settings)
        self.session = ort.InferenceSession(
            str(model_path), session_options(threads), providers=["CPUExecutionProvider"]
        )
        self.eot = self.settings.eot_id if self.settings.eot_id is not None else _eot_id(self.tokenizer)
        shape = self.session.get_inputs()[0].shape
        symbolic = len(shape) == 2 and not isinstance(shape[1], int)
        self.trims_padding = symbolic and self.settings.pooling == "eot_argmax"

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


def configure_tokenizer(tokenizer: object, settings: TextSettings) -> None:
    """Truncate to the context length (the special tokens kept) and pad to it with the pad id."""
    pad = settings.pad_id if settings.pad_id is not None else _eot_id(tokenizer)
    token = tokenizer.id_to_token(pad) or "<pad>"  # type: ignore[attr-defined]
    tokenizer.enable_truncation(max_length=settings.context_length)  # type: ignore[attr-defined]
    tokenizer.enable_padding(length=settings.context_length, pad_id=pad, pad_token=token)  # type: ignore[attr-defined]


def configure_clip_tokenizer(tokenizer: object) -> None:
    """Truncate to 77 tokens (keeping start/end markers) and pad with <|endoftext|>, like CLIPTokenizer."""
    configure_tokenizer(tokenizer, TextSettings())
