"""ONNX Runtime encoders: images (the tagger) and text (free-text queries, re-embedding tags)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray

from cliptag.config import vcpus
from cliptag.scoring import l2_normalise

CONTEXT_LENGTH = 77


def session_options(threads: int = 0) -> ort.SessionOptions:
    """Tuned for Lambda; ``make bench`` measures them against ORT's defaults.

    The setting that matters is one intra-op thread per vCPU the *function* has: ORT's default
    counts the host's cores, and two threads sharing a 1-vCPU function's quota (Lambda below
    3,538 MB) run up to ~1.4x slower. Full graph optimisation and the memory arena are ORT's
    defaults, kept explicit. No spinning: after a run ORT's idle threads would busy-wait on the
    cores that numpy's BLAS (scoring) and the decoders use next; measured, scoring a batch right
    after inference took 20-30 ms with spinning and ~1.5 ms without.
    """
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.intra_op_num_threads = threads or vcpus()
    opts.inter_op_num_threads = 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.enable_cpu_mem_arena = True
    return opts


class ImageEncoder:
    """``pixel_values [N,3,H,W]`` -> L2-normalised ``image_embeds [N,D]``, one call per batch."""

    def __init__(self, path: Path, threads: int = 0) -> None:
        self.session = ort.InferenceSession(str(path), session_options(threads), providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.images = 0  # images embedded: the proof that duplicates skip the model

    def embed(self, pixels: NDArray[np.float32]) -> NDArray[np.float32]:
        self.images += len(pixels)
        (out,) = self.session.run(None, {self.input_name: np.ascontiguousarray(pixels, dtype=np.float32)})
        return l2_normalise(np.asarray(out, dtype=np.float32))


class TextEncoder:
    """Texts -> L2-normalised ``text_embeds [N,D]`` through the model's own BPE tokenizer."""

    def __init__(self, model_path: Path, tokenizer_path: Path, threads: int = 0) -> None:
        from tokenizers import Tokenizer  # only the API and export need text

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
