"""Multi-label metrics in numpy: per-tag average precision, precision/recall/F1 at thresholds.

Conventions (those of scikit-learn, so figures compare): AP is the step-wise area under the
precision-recall curve with tied scores taken together (no interpolation); mAP and macro
averages run over the tags with at least one positive; a tag with no predictions has precision 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


def pr_curve(
    scores: NDArray[np.floating], truth: NDArray[np.bool_]
) -> tuple[NDArray[np.floating], NDArray[np.float64], NDArray[np.float64]]:
    """(thresholds, precision, recall) at each distinct score, highest first: a photo is predicted
    when its score >= the threshold, so photos that tie are ranked together, whatever their order."""
    order = np.argsort(-scores, kind="stable")
    ranked, hits = scores[order], np.cumsum(truth[order])
    last = np.r_[np.flatnonzero(np.diff(ranked) != 0), len(ranked) - 1]
    positives = max(int(hits[-1]), 1) if len(hits) else 1
    return ranked[last], hits[last] / (last + 1), hits[last] / positives


def average_precision(scores: NDArray[np.floating], truth: NDArray[np.bool_]) -> float:
    """AP of one tag over the photos: NaN when it has no positive."""
    if not truth.any():
        return float("nan")
    _, precision, recall = pr_curve(scores, truth)
    return float(np.sum(precision * np.diff(np.r_[0.0, recall])))


def per_tag_ap(scores: NDArray[np.floating], truth: NDArray[np.bool_]) -> NDArray[np.float64]:
    """[N, T] scores and truth -> [T] APs (NaN for tags without positives)."""
    return np.array([average_precision(scores[:, t], truth[:, t]) for t in range(truth.shape[1])])


def mean_ap(scores: NDArray[np.floating], truth: NDArray[np.bool_]) -> float:
    aps = per_tag_ap(scores, truth)
    return float(np.nanmean(aps)) if np.isfinite(aps).any() else float("nan")


@dataclass(frozen=True)
class Counts:
    """Per-tag true positives, predictions and positives of a [N, T] prediction."""

    tp: NDArray[np.int64]
    predicted: NDArray[np.int64]
    positives: NDArray[np.int64]

    @classmethod
    def of(cls, predicted: NDArray[np.bool_], truth: NDArray[np.bool_]) -> Counts:
        return cls((predicted & truth).sum(axis=0), predicted.sum(axis=0), truth.sum(axis=0))

    def precision(self) -> NDArray[np.float64]:
        return _ratio(self.tp, self.predicted)

    def recall(self) -> NDArray[np.float64]:
        return _ratio(self.tp, self.positives)


def _ratio(num: NDArray[np.int64], den: NDArray[np.int64]) -> NDArray[np.float64]:
    out: NDArray[np.float64] = np.divide(num, den, out=np.zeros(len(num)), where=den > 0)
    return out


def f1(precision: NDArray[np.float64], recall: NDArray[np.float64]) -> NDArray[np.float64]:
    total = precision + recall
    out: NDArray[np.float64] = np.divide(2 * precision * recall, total, out=np.zeros(len(total)), where=total > 0)
    return out


def precision_recall_f1(predicted: NDArray[np.bool_], truth: NDArray[np.bool_]) -> dict[str, float]:
    """Micro (pooled over every tag of the label space) and macro (mean over tags with positives)."""
    c = Counts.of(predicted, truth)
    tp, pred, pos = int(c.tp.sum()), int(c.predicted.sum()), int(c.positives.sum())
    micro_p, micro_r = (tp / pred if pred else 0.0), (tp / pos if pos else 0.0)
    seen = c.positives > 0
    precision, recall = c.precision()[seen], c.recall()[seen]
    return {
        "micro_precision": micro_p,
        "micro_recall": micro_r,
        "micro_f1": float(f1(np.array([micro_p]), np.array([micro_r]))[0]),
        "macro_precision": float(precision.mean()) if seen.any() else 0.0,
        "macro_recall": float(recall.mean()) if seen.any() else 0.0,
        "macro_f1": float(f1(precision, recall).mean()) if seen.any() else 0.0,
    }
