"""Re-scoring stored embeddings in bulk (after a vocabulary or threshold change), without the model.

Stored embeddings are int8 codes (``codec``). One ONNX Runtime graph does the heavy part for a
chunk of codes:

1. rank: an integer matrix product of the codes with int8 tag codes (MLAS's u8 x s8 kernels:
   several times faster than fp32 BLAS) gives approximate scores, and TopK keeps the best
   ``top_k + overfetch`` tags per row as *candidates*;
2. re-check: the candidates' fp32 tag embeddings are gathered and scored exactly against the
   normalised codes (a batched [c, D] x [D, 1] product per row).

numpy then applies thresholds and top-k to the small [N, c] exact scores, so the result is what
``TagScorer.tags`` gives on the decoded embeddings. It can differ only when more than ``overfetch``
tags sit within the int8 rounding (~1e-3) of the k-th score; rows where per-tag thresholds leave
that unsure fall back to the exact scorer.

Tag codes use 7 bits (-63..63): on CPUs without VNNI, MLAS multiplies u8 x s8 pairs with
``vpmaddubsw``, whose 16-bit sums saturate for 8-bit tag codes (255 x 127 x 2 > 32767) and would
scramble the ranking; with 7 bits the sums fit on every x86 CPU.

It lives in ``model_export``, not in the functions: building the graph needs the ``onnx``
package, which the Lambda runtime layer does not ship (an offline job's dependency).
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
from cliptag.encoder import session_options
from cliptag.records import TagScore
from cliptag.scoring import TagScorer
from numpy.typing import NDArray
from onnx import TensorProto, helper, numpy_helper

TAG_CODE_MAX = 63  # 7-bit tag codes: see the module docstring


def _rescoring_graph(tags: NDArray[np.float32], candidates: int) -> bytes:
    """uint8 codes (int8 + 128) [n, D] -> (candidate tag indices [n, c], their exact cosines [n, c])."""
    count, dim = tags.shape
    scales = np.abs(tags).max(axis=1) / TAG_CODE_MAX
    tag_codes = np.clip(np.rint(tags / scales[:, None]), -TAG_CODE_MAX, TAG_CODE_MAX).astype(np.int8)
    node = helper.make_node
    nodes = [
        # 1. approximate ranking in integers, candidates by TopK
        node("MatMulInteger", ["codes", "tag_codes", "zero_point"], ["dots"]),
        node("Cast", ["dots"], ["dots_f"], to=TensorProto.FLOAT),
        node("Mul", ["dots_f", "tag_scales"], ["approx"]),
        node("TopK", ["approx", "k"], ["_best", "candidates"]),
        # 2. exact cosines of the candidates: unit code vectors . fp32 tag embeddings
        node("Cast", ["codes"], ["codes_f"], to=TensorProto.FLOAT),
        node("Sub", ["codes_f", "offset"], ["vectors"]),
        node("ReduceL2", ["vectors"], ["norms"], axes=[1], keepdims=1),
        node("Max", ["norms", "tiny"], ["safe_norms"]),
        node("Div", ["vectors", "safe_norms"], ["units"]),
        node("Unsqueeze", ["units", "last_axis"], ["columns"]),
        node("Gather", ["tags", "candidates"], ["candidate_tags"], axis=0),
        node("MatMul", ["candidate_tags", "columns"], ["exact_col"]),
        node("Squeeze", ["exact_col", "last_axis"], ["exact"]),
    ]
    graph = helper.make_graph(
        nodes,
        "rescore_tags",
        [helper.make_tensor_value_info("codes", TensorProto.UINT8, ["n", dim])],
        [
            helper.make_tensor_value_info("candidates", TensorProto.INT64, ["n", candidates]),
            helper.make_tensor_value_info("exact", TensorProto.FLOAT, ["n", candidates]),
        ],
        [
            numpy_helper.from_array(np.ascontiguousarray(tag_codes.T), "tag_codes"),
            numpy_helper.from_array(np.array(128, np.uint8), "zero_point"),
            numpy_helper.from_array(scales.reshape(1, count).astype(np.float32), "tag_scales"),
            numpy_helper.from_array(np.array([candidates], np.int64), "k"),
            numpy_helper.from_array(np.array(128.0, np.float32), "offset"),
            numpy_helper.from_array(np.array(1e-12, np.float32), "tiny"),
            numpy_helper.from_array(np.array([2], np.int64), "last_axis"),
            numpy_helper.from_array(np.ascontiguousarray(tags, dtype=np.float32), "tags"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return bytes(model.SerializeToString())


class BulkScorer:
    def __init__(self, scorer: TagScorer, overfetch: int = 6, chunk: int = 1024, threads: int = 0) -> None:
        self.scorer = scorer
        self.chunk = chunk
        self.candidates = min(scorer.top_k + overfetch, scorer.tag_embeddings.shape[0])
        self._loosest = float(scorer.thresholds.min())
        self._session = ort.InferenceSession(
            _rescoring_graph(scorer.tag_embeddings, self.candidates),
            session_options(threads),
            providers=["CPUExecutionProvider"],
        )

    def tags(self, codes: NDArray[np.int8]) -> list[list[TagScore]]:
        """Tags of each stored embedding (int8 codes, [N, D]), as ``TagScorer.tags`` ranks them."""
        return self.scorer.named(*self.scores(codes))

    def scores(self, codes: NDArray[np.int8]) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        """([N, k] tag indices, best first, -1 where fewer passed; [N, k] their cosine scores)."""
        parts = [self._chunk(codes[start : start + self.chunk]) for start in range(0, len(codes), self.chunk)]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    def _chunk(self, codes: NDArray[np.int8]) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        scorer, k = self.scorer, self.scorer.top_k
        shifted = codes.view(np.uint8) ^ np.uint8(0x80)  # int8 -> uint8 with zero point 128
        candidates, exact = self._session.run(None, {"codes": shifted})
        exact = scorer.transform.apply(exact)  # cosine -> the model's score (order kept)
        passing = exact >= scorer.thresholds[candidates]
        # Fewer than k passed while even the weakest candidate clears the loosest threshold: a
        # tag below the candidates may pass its own (lower) threshold, so score that row fully.
        unsure = np.flatnonzero((passing.sum(axis=1) < k) & (exact.min(axis=1) >= self._loosest))
        exact = np.where(passing, exact, -np.inf)
        order = np.argsort(-exact, axis=1, kind="stable")[:, :k]
        scores = np.take_along_axis(exact, order, axis=1).astype(np.float32)
        indices = np.where(np.isfinite(scores), np.take_along_axis(candidates, order, axis=1), -1)
        if len(unsure):
            vectors = codes.astype(np.float32)[unsure]
            vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), np.float32(1e-12))
            indices[unsure], scores[unsure] = scorer.select(scorer.scores(vectors))
        return indices, scores
