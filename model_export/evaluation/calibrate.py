"""Per-tag thresholds from a labelled set, written into a model directory's vocabulary.

For each tag with enough positives, the lowest threshold whose precision on the set reaches the
target: as many true tags as that precision allows. Other tags keep what they had (the model's
default minimum score, which stays the fallback). The directory is rewritten by ``revocabulary``
(new files beside the old, renamed into place, manifest last, loaded back as the Lambda will);
thresholds do not change any tag embedding, so nothing is embedded again.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from cliptag.bundle import ModelBundle
from cliptag.vocabulary import Vocabulary
from numpy.typing import NDArray

from model_export.evaluation.metrics import pr_curve
from model_export.revocabulary import revocabulary
from model_export.vocabulary_file import load_vocabulary

DECIMALS = 6  # as scores are stored (cliptag.keys.round_score)


@dataclass(frozen=True)
class Calibration:
    tag: str
    positives: int
    threshold: float | None  # None: the tag keeps its current threshold
    precision: float  # on the set, at ``threshold`` (NaN when None)
    recall: float
    note: str


def lowest_threshold(
    scores: NDArray[np.floating], truth: NDArray[np.bool_], target: float
) -> tuple[float, float, float] | None:
    """(threshold, precision, recall) of the lowest threshold with precision >= target, if any."""
    thresholds, precision, recall = pr_curve(scores, truth)
    reached = np.flatnonzero(precision >= target)
    if not len(reached):
        return None
    i = int(reached[-1])  # thresholds fall along the curve: the last that reaches is the lowest
    return _round_down(float(thresholds[i])), float(precision[i]), float(recall[i])


def _round_down(score: float) -> float:
    """``score`` to 6 decimals, never above it as float32 (what the runtime compares), so the photo
    that set the threshold still passes it."""
    rounded = round(score, DECIMALS)
    if np.float32(rounded) > np.float32(score):
        rounded = round(rounded - 10.0**-DECIMALS, DECIMALS)
    return max(-1.0, min(1.0, rounded))


def calibrate(
    scores: NDArray[np.floating], truth: NDArray[np.bool_], tags: tuple[str, ...], target: float, min_positives: int
) -> list[Calibration]:
    """One entry per tag of the label space ([N, T] scores and truth, columns in ``tags`` order)."""
    out = []
    for t, tag in enumerate(tags):
        positives = int(truth[:, t].sum())
        found = lowest_threshold(scores[:, t], truth[:, t], target) if positives >= max(min_positives, 1) else None
        if found is not None:
            out.append(Calibration(tag, positives, *found, note="calibrated"))
        else:
            note = f"fewer than {min_positives} positives" if positives < max(min_positives, 1) else "target unreached"
            out.append(Calibration(tag, positives, None, float("nan"), float("nan"), note))
    return out


def with_thresholds(vocab: Vocabulary, thresholds: dict[str, float]) -> Vocabulary:
    return Vocabulary(
        tuple(replace(t, threshold=thresholds.get(t.name, t.threshold)) for t in vocab.tags), vocab.templates
    )


def vocabulary_yaml(vocab: Vocabulary) -> str:
    """The vocabulary as a YAML file ``load_vocabulary`` reads back to the same hash (order kept:
    every entry carries its own category under one group)."""
    entries = []
    for t in vocab.tags:
        entry: dict[str, Any] = {"name": t.name, "category": t.category}
        if t.synonyms:
            entry["synonyms"] = list(t.synonyms)
        if t.threshold is not None:
            entry["threshold"] = t.threshold
        if t.descriptions:
            entry["descriptions"] = list(t.descriptions)
        entries.append(entry)
    doc = {"templates": list(vocab.templates), "tags": {"calibrated": entries}}
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False, width=10_000)


def write_thresholds(model_dir: Path, thresholds: dict[str, float]) -> dict[str, Any]:
    """Set per-tag thresholds in ``model_dir``; returns the new manifest."""
    wanted = with_thresholds(ModelBundle.open(model_dir).vocabulary, thresholds)
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "calibrated-thresholds.yaml"  # the name the manifest records
        source.write_text(vocabulary_yaml(wanted), "utf-8")
        # Every description is inline: none may come from the default vocabulary's companion.
        if load_vocabulary(source, default_descriptions=False, quiet=True).hash != wanted.hash:
            raise RuntimeError("the calibrated vocabulary does not read back as written; nothing was changed")
        return revocabulary(model_dir, source, progress=False, default_descriptions=False, quiet=True)
