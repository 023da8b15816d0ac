"""Re-scoring stored embeddings in bulk (after a vocabulary or threshold change), without the model.

Stored embeddings are int8 codes (``codec``). An int8 x int8 matrix product in ONNX Runtime (its
VNNI kernels) ranks every tag for every code several times faster than fp32 BLAS can; that
approximate ranking only *chooses candidates*: the best ``top_k + overfetch`` per row are then
scored exactly in fp32, thresholded and ordered, so the result is what ``TagScorer.tags`` gives
on the decoded embeddings. It can differ only when more than ``overfetch`` tags sit within the
int8 rounding (~1e-3) of the k-th score; rows where per-tag thresholds leave that unsure fall back to
the exact scorer. (Building the ranking graph needs the ``onnx`` package: an offline job's
dependency, not the functions'.)
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray
from onnx import TensorProto, helper, numpy_helper

from cliptag.encoder import session_options
from cliptag.scoring import ScoredTag, TagScorer


def _ranking_graph(tag_codes: NDArray[np.int8], tag_scales: NDArray[np.float32], candidates: int) -> bytes:
    """uint8 codes (int8 + 128) [n, D] -> indices of the ``candidates`` best tags [n, c]."""
    dim, tags = tag_codes.shape[1], tag_codes.shape[0]
    nodes = [
        helper.make_node("MatMulInteger", ["codes", "tag_codes", "zero_point"], ["dots"]),
        helper.make_node("Cast", ["dots"], ["dots_f"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["dots_f", "tag_scales"], ["approx"]),
        helper.make_node("TopK", ["approx", "k"], ["best", "indices"]),
    ]
    graph = helper.make_graph(
        nodes,
        "rank_tags",
        [helper.make_tensor_value_info("codes", TensorProto.UINT8, ["n", dim])],
        [helper.make_tensor_value_info("indices", TensorProto.INT64, ["n", candidates])],
        [
            numpy_helper.from_array(np.ascontiguousarray(tag_codes.T), "tag_codes"),
            numpy_helper.from_array(np.array(128, np.uint8), "zero_point"),
            numpy_helper.from_array(tag_scales.reshape(1, tags).astype(np.float32), "tag_scales"),
            numpy_helper.from_array(np.array([candidates], np.int64), "k"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return bytes(model.SerializeToString())


class BulkScorer:
    def __init__(self, scorer: TagScorer, overfetch: int = 6, chunk: int = 1024, threads: int = 0) -> None:
        self.scorer = scorer
        self.chunk = chunk
        tags = scorer.tag_embeddings
        self.candidates = min(scorer.top_k + overfetch, tags.shape[0])
        self._loosest = float(scorer.thresholds.min())
        scales = np.abs(tags).max(axis=1) / 127.0
        tag_codes = np.clip(np.rint(tags / scales[:, None]), -127, 127).astype(np.int8)
        self._session = ort.InferenceSession(
            _ranking_graph(tag_codes, scales.astype(np.float32), self.candidates),
            session_options(threads),
            providers=["CPUExecutionProvider"],
        )

    def tags(self, codes: NDArray[np.int8]) -> list[list[ScoredTag]]:
        """Tags of each stored embedding (int8 codes, [N, D]), as ``TagScorer.tags`` ranks them."""
        return self.scorer.named(*self.scores(codes))

    def scores(self, codes: NDArray[np.int8]) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        """([N, k] tag indices, best first, -1 where fewer passed; [N, k] their cosine scores)."""
        parts = [self._chunk(codes[start : start + self.chunk]) for start in range(0, len(codes), self.chunk)]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    def _chunk(self, codes: NDArray[np.int8]) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        scorer, k = self.scorer, self.scorer.top_k
        shifted = codes.view(np.uint8) ^ np.uint8(0x80)  # int8 -> uint8 with zero point 128
        (candidates,) = self._session.run(None, {"codes": shifted})
        vectors = codes.astype(np.float32)
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), np.float32(1e-12))
        exact = np.einsum("nd,ncd->nc", vectors, scorer.tag_embeddings[candidates])
        passing = exact >= scorer.thresholds[candidates]
        # Fewer than k passed while even the weakest candidate clears the loosest threshold: a
        # tag below the candidates may pass its own (lower) threshold, so score that row fully.
        unsure = np.flatnonzero((passing.sum(axis=1) < k) & (exact.min(axis=1) >= self._loosest))
        exact = np.where(passing, exact, -np.inf)
        order = np.argsort(-exact, axis=1, kind="stable")[:, :k]
        scores = np.take_along_axis(exact, order, axis=1).astype(np.float32)
        indices = np.where(np.isfinite(scores), np.take_along_axis(candidates, order, axis=1), -1)
        if len(unsure):
            indices[unsure], scores[unsure] = scorer.select(scorer.scores(vectors[unsure]))
        return indices, scores
