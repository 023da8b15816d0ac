"""The ONNX Runtime image encoder the tagger runs, and ``session_options`` (ORT tuned for Lambda).

Images only: no function embeds text. Images are scored against tag embeddings computed at
export time, and the API answers tag queries from DynamoDB, so the text encoder and the
tokenizer live in ``model_export.text_encoder`` (the offline tools also reuse ``session_options``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray

from cliptag.config import vcpus
from cliptag.scoring import l2_normalise


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
