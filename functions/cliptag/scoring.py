"""Zero-shot scoring: cosine similarity of image and tag embeddings, threshold, top-k.

One matrix product scores a whole batch (or every stored embedding when re-tagging). A model
trained with a sigmoid loss (SigLIP) turns each cosine into a per-tag probability,
``sigmoid(scale * cos + bias)`` with its own learned scale and bias: the manifest says which
(``ScoreTransform``), and thresholds are then probabilities. The transform keeps the order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from numpy.typing import NDArray

from cliptag.keys import round_score
from cliptag.records import CategoryScore, TagScore


def l2_normalise(x: NDArray[np.float32]) -> NDArray[np.float32]:
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    out: NDArray[np.float32] = (x / np.maximum(norms, np.float32(1e-12))).astype(np.float32, copy=False)
    return out


@dataclass(frozen=True)
class ScoreTransform:
    """What a tag's score is: the cosine itself, or SigLIP's probability of it."""

    kind: str = "cosine"  # "cosine" | "sigmoid"
    scale: float = 1.0  # sigmoid: exp(logit_scale) of the checkpoint
    bias: float = 0.0  # sigmoid: its logit_bias

    def apply(self, cosines: NDArray[np.float32]) -> NDArray[np.float32]:
        if self.kind == "cosine":
            return cosines
        logits = np.float32(self.scale) * cosines + np.float32(self.bias)
        out: NDArray[np.float32] = (1.0 / (1.0 + np.exp(-logits))).astype(np.float32)
        return out


COSINE = ScoreTransform()


@dataclass(frozen=True)
class TagScorer:
    names: tuple[str, ...]
    tag_embeddings: NDArray[np.float32]  # [T, D], L2-normalised
    thresholds: NDArray[np.float32]  # [T]: per-tag override or the global minimum, in score units
    top_k: int
    transform: ScoreTransform = COSINE

    @classmethod
    def build(
        cls,
        names: list[str],
        tag_embeddings: NDArray[np.float32],
        per_tag: list[float | None],
        min_score: float,
        top_k: int,
        transform: ScoreTransform = COSINE,
    ) -> TagScorer:
        thresholds = np.array([min_score if t is None else t for t in per_tag], dtype=np.float32)
        return cls(tuple(names), l2_normalise(tag_embeddings.astype(np.float32)), thresholds, top_k, transform)

    def scores(self, embeddings: NDArray[np.float32]) -> NDArray[np.float32]:
        """[N, D] unit vectors -> [N, T] scores (cosine similarities, or their probabilities)."""
        return self.transform.apply(embeddings.astype(np.float32, copy=False) @ self.tag_embeddings.T)

    def tags(self, embeddings: NDArray[np.float32]) -> list[list[TagScore]]:
        """Best tags first, each above its threshold, at most ``top_k`` per image."""
        return self.named(*self.select(self.scores(embeddings)))

    @cached_property
    def positions(self) -> dict[str, int]:
        """Tag name -> its row in ``tag_embeddings``."""
        return {name: i for i, name in enumerate(self.names)}

    def select(
        self, scores: NDArray[np.float32], top_k: int | None = None
    ) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        """[N, T] scores -> ([N, k] tag indices, best first, -1 where fewer passed; [N, k] scores)."""
        n, k = scores.shape[0], min(self.top_k if top_k is None else top_k, scores.shape[1])
        if k <= 0:
            return np.empty((n, 0), np.int64), np.empty((n, 0), np.float32)
        # Thresholds first, so a tag that fails its own threshold never takes a top-k slot.
        passing = np.where(scores >= self.thresholds, scores, -np.inf)
        top = np.argpartition(-passing, k - 1, axis=1)[:, :k]
        values = np.take_along_axis(passing, top, axis=1)
        order = np.argsort(-values, axis=1, kind="stable")
        values = np.take_along_axis(values, order, axis=1).astype(np.float32)
        indices = np.where(np.isfinite(values), np.take_along_axis(top, order, axis=1), -1)
        return indices, values

    def named(self, indices: NDArray[np.int64], values: NDArray[np.float32]) -> list[list[TagScore]]:
        """What ``select`` chose, as tag names with scores in their stored form (6 decimals)."""
        return [
            [TagScore(self.names[i], round_score(s)) for i, s in zip(row_i, row_s, strict=True) if i >= 0]
            for row_i, row_s in zip(indices.tolist(), values.tolist(), strict=True)
        ]


def scoring_version(
    vocabulary_version: str,
    top_k: int,
    min_score: float,
    vector_index: str = "",
    places: bool = False,
    write_back: str = "Off",
) -> str:
    """Names everything that decides an object's tags given its embedding, and the search index
    its vector goes to: a record that carries another one is due a re-tag (which also fills a new
    index, e.g. after search is first deployed or the model changes, and reads the photos never
    located for their GPS position once PlaceTags is on, and writes back the tags of a library
    tagged before WriteBack was)."""
    version = f"{vocabulary_version}/k{top_k}/t{min_score:g}"
    version = f"{version}/v:{vector_index}" if vector_index else version
    version = f"{version}/p" if places else version
    return f"{version}/w:{write_back}" if write_back != "Off" else version


def categorise(tags: Sequence[TagScore], categories: Mapping[str, str]) -> tuple[CategoryScore, ...]:
    """The categories ``tags`` fall in, each scored by its best tag, best first."""
    best: dict[str, float] = {}
    for t in tags:
        category = categories.get(t.tag, "")
        if category and t.score > best.get(category, -2.0):
            best[category] = t.score
    return tuple(CategoryScore(c, s) for c, s in sorted(best.items(), key=lambda cs: (-cs[1], cs[0])))
