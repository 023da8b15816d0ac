"""Fitting a tag from example photos' stored embeddings (numpy only; no model, no AWS).

With few examples the tag is their **prototype**: the normalised mean of the positives. With
enough positives and negatives a person marked (``PROBE_MIN`` each) it is a **linear probe**: an
L2-regularised logistic regression on the embeddings (positives against the person's negatives
and a sample of the library), whose weight direction becomes the tag's vector. Either way the tag
is scored as a cosine with that vector.

The threshold comes from **leave-one-out**: each positive is scored by the tag fitted without it
(what a new photo of the thing would score), the negatives by the whole fit, and the threshold is
the cut that maximises F1 over those scores, placed midway in the gap it falls in. The library
sample counts as negative, except the photos that score as high as an example left out (by the
examples' prototype): those cannot be told from the examples and are most likely more of the
same thing, so they are reported ("alike") and neither fitted nor counted against precision.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from cliptag.scoring import l2_normalise

PROBE_MIN = 5  # positives and marked negatives each, before a probe is fitted instead of a prototype
MIN_EXAMPLES = 2  # leave-one-out needs one to leave out
EDGE_MARGIN = 0.02  # below the lowest positive when no negative lies under it
L2 = 1.0  # the probe's regularisation (on unit vectors: keeps few examples from overfitting)


class TeachingError(ValueError):
    """The examples cannot make a tag (too few, or nothing to tell them apart)."""


@dataclass(frozen=True)
class Fit:
    vector: NDArray[np.float32]  # [D], unit
    threshold: float
    method: str  # prototype | probe
    held_out: tuple[float, ...]  # each positive's score by the fit without it
    negatives: int  # scored against the threshold: marked ones and the library sample
    negatives_passing: int
    alike: int = 0  # library photos scoring like the examples: left out of the negatives
    sampled: int = 0  # library photos sampled

    @property
    def alike_share(self) -> float:
        """The share of the library sample that scores like the examples (and will get the tag)."""
        return self.alike / self.sampled if self.sampled else 0.0

    @property
    def recall(self) -> float:
        return sum(s >= self.threshold for s in self.held_out) / len(self.held_out)

    @property
    def precision(self) -> float:
        found = sum(s >= self.threshold for s in self.held_out)
        return found / (found + self.negatives_passing) if found else 0.0


def prototype(positives: NDArray[np.float32]) -> NDArray[np.float32]:
    unit: NDArray[np.float32] = l2_normalise(positives.mean(axis=0, keepdims=True).astype(np.float32))[0]
    return unit


def probe(positives: NDArray[np.float32], negatives: NDArray[np.float32], steps: int = 25) -> NDArray[np.float32]:
    """Logistic regression by Newton's method, classes weighted equally; its unit direction."""
    x = np.concatenate([positives, negatives]).astype(np.float64)
    x = np.concatenate([x, np.ones((len(x), 1))], axis=1)  # the bias column
    y = np.concatenate([np.ones(len(positives)), np.zeros(len(negatives))])
    weight = np.where(y == 1, 0.5 / len(positives), 0.5 / len(negatives))
    penalty = np.full(x.shape[1], L2 / len(x))
    penalty[-1] = 0.0  # the bias is not shrunk
    w = np.zeros(x.shape[1])
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-np.clip(x @ w, -30, 30)))
        gradient = x.T @ (weight * (p - y)) + penalty * w
        hessian = (x * (weight * p * (1 - p))[:, None]).T @ x + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if np.abs(step).max() < 1e-7:
            break
    direction = w[:-1]
    if not np.isfinite(direction).all() or np.linalg.norm(direction) < 1e-9:
        raise TeachingError("the examples and the negatives cannot be told apart")
    unit: NDArray[np.float32] = l2_normalise(direction[None, :].astype(np.float32))[0]
    return unit


def _fit_vector(positives: NDArray[np.float32], negatives: NDArray[np.float32], use_probe: bool) -> NDArray[np.float32]:
    return probe(positives, negatives) if use_probe else prototype(positives)


def threshold_for(held_out: NDArray[np.float32], negative_scores: NDArray[np.float32]) -> float:
    """The cut maximising F1 (positives ``held_out``, negatives ``negative_scores``), midway in its gap;
    among equal F1, the widest gap."""
    points = np.concatenate([held_out, negative_scores]).astype(np.float64)
    positive = np.concatenate([np.ones(len(held_out), bool), np.zeros(len(negative_scores), bool)])
    order = np.argsort(-points, kind="stable")
    points, positive = points[order], positive[order]
    best: tuple[float, float, float] | None = None  # (F1, gap, threshold)
    true_pos = false_pos = 0
    for k in range(len(points)):  # predict the k+1 best points positive
        true_pos += int(positive[k])
        false_pos += int(not positive[k])
        if not positive[k]:
            continue  # a cut right under a negative is never better than one above it
        below = points[k + 1] if k + 1 < len(points) else points[k] - 2 * EDGE_MARGIN
        f1 = 2 * true_pos / (2 * true_pos + false_pos + (len(held_out) - true_pos))
        candidate = (f1, float(points[k] - below), float((points[k] + below) / 2))
        if best is None or candidate[:2] > best[:2]:
            best = candidate
    assert best is not None  # there is at least one positive
    return round(best[2], 6)


def fit(positives: NDArray[np.float32], negatives: NDArray[np.float32], background: NDArray[np.float32]) -> Fit:
    """A tag from [P, D] example embeddings, [N, D] marked negatives and [B, D] library photos
    that are not examples (every row a unit vector)."""
    if len(positives) < MIN_EXAMPLES:
        raise TeachingError(f"teaching needs at least {MIN_EXAMPLES} example photos (leave-one-out leaves one out)")
    dim = positives.shape[1]
    negatives = negatives.reshape(-1, dim)
    background = background.reshape(-1, dim)
    use_probe = len(positives) >= PROBE_MIN and len(negatives) >= PROBE_MIN
    alike = np.zeros(len(background), bool)
    if len(background):
        by_prototype = [float(positives[i] @ prototype(np.delete(positives, i, axis=0))) for i in range(len(positives))]
        alike = background @ prototype(positives) >= min(by_prototype)
    others = np.concatenate([negatives, background[~alike]]).astype(np.float32)
    vector = _fit_vector(positives, others, use_probe)
    held_out = []
    for i in range(len(positives)):
        rest = np.delete(positives, i, axis=0)
        held_out.append(float(positives[i] @ _fit_vector(rest, others, use_probe)))
    negative_scores = (others @ vector).astype(np.float32) if len(others) else np.zeros(0, np.float32)
    threshold = threshold_for(np.array(held_out, np.float32), negative_scores)
    return Fit(
        vector=vector.astype(np.float32),
        threshold=threshold,
        method="probe" if use_probe else "prototype",
        held_out=tuple(round(s, 6) for s in held_out),
        negatives=len(others),
        negatives_passing=int((negative_scores >= threshold).sum()),
        alike=int(alike.sum()),
        sampled=len(background),
    )
