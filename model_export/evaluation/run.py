"""``python -m model_export evaluate``: tagging accuracy of a model directory on a labelled set.

The photos are decoded and preprocessed as the tagger does and embedded once per image encoder
variant; everything else is matrix products on those embeddings:

* the shipped configuration (its image encoder, tag embeddings, thresholds and top-k, through
  the runtime's own ``TagScorer``): mAP and micro/macro precision, recall, F1;
* ablations of the tag embeddings (descriptions or not, all templates or one), re-embedded by
  the directory's text encoder for the tags of the label space only: mAP;
* every image encoder variant against fp32: mAP change and top-5 tag agreement;
* with ``calibrate``: per-tag thresholds written into the directory, and the metrics they give.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from cliptag.bundle import ModelBundle
from cliptag.config import Settings
from cliptag.encoder import ImageEncoder
from cliptag.errors import ModelBundleError, PermanentError
from cliptag.imaging import Limits, load_pixels
from cliptag.scoring import TagScorer
from cliptag.text import TextEncoder
from cliptag.vocabulary import Vocabulary
from numpy.typing import NDArray

from model_export.evaluation.calibrate import calibrate, write_thresholds
from model_export.evaluation.labels import load_labels
from model_export.evaluation.metrics import mean_ap, per_tag_ap, precision_recall_f1
from model_export.parity import top5_agreement
from model_export.revocabulary import tag_matrix

SINGLE_TEMPLATE = ("a photo of a {}.",)


@dataclass
class EvaluateOptions:
    model_dir: Path
    labels: Path | None = None  # None: COCO val2017 panoptic from ../shared/data
    limit: int | None = None
    min_score: float | None = None  # None: MIN_SCORE, else the manifest's default (as the functions)
    top_k: int | None = None  # None: TOP_K, else 10 (as the functions); 0: thresholds only
    calibrate: bool = False
    target_precision: float = 0.9
    min_positives: int = 5
    threads: int = 0
    batch: int = 16
    progress: bool = True


def evaluate(opts: EvaluateOptions) -> dict[str, Any]:
    bundle = ModelBundle.open(opts.model_dir)
    vocab = bundle.vocabulary
    labelled = load_labels(opts.labels, vocab.names).head(opts.limit)
    encoders, skipped_encoders = _encoders(bundle, opts.threads)
    embeddings, kept, skipped_photos = _embed(labelled.photos, bundle, encoders, opts)
    truth = labelled.truth[kept]
    position = {name: i for i, name in enumerate(vocab.names)}
    columns = np.array([position[t] for t in labelled.tags], dtype=np.int64)
    shipped = embeddings[bundle.manifest["image_encoder"]["quantization"]]

    settings = Settings()  # MIN_SCORE and TOP_K as the functions read them
    min_score = opts.min_score if opts.min_score is not None else settings.min_score
    min_score = bundle.default_threshold if min_score is None else min_score
    top_k = settings.top_k if opts.top_k is None else opts.top_k
    scorer = _scorer(bundle, min_score, top_k)
    scores = scorer.scores(shipped)
    predicted = _predicted(scorer, scores)[:, columns]
    report: dict[str, Any] = {
        "model": _model_facts(bundle),
        "labels": {
            "name": labelled.name,
            "photos": len(kept),
            "skipped": skipped_photos,
            "tags": len(labelled.tags),
            "tags_with_positives": int((truth.sum(axis=0) > 0).sum()),
            "labels": int(truth.sum()),
            "unmapped": list(labelled.unmapped),
        },
        "scoring": {
            "min_score": min_score,
            "top_k": top_k,
            "own_thresholds": sum(vocab.tags[c].threshold is not None for c in columns),
        },
        "metrics": _metrics(scores[:, columns], predicted, truth),
        "per_tag": _per_tag(labelled.tags, scorer.thresholds[columns], scores[:, columns], predicted, truth),
        "ablations": _ablations(bundle, shipped, truth, columns, opts.threads),
        "encoders": _encoder_table(bundle, embeddings, truth, columns) + skipped_encoders,
    }
    if opts.calibrate:
        report["calibration"] = _calibrate(opts, vocab, labelled.tags, scores, truth, min_score, top_k, columns)
    return report


def _model_facts(bundle: ModelBundle) -> dict[str, Any]:
    source = str(bundle.manifest["model"].get("source", ""))
    return {
        "dir": str(bundle.root),
        "id": bundle.model_id,
        "source": source,
        "random": source.startswith("random:"),
        "image_encoder": bundle.manifest["image_encoder"]["quantization"],
        "vocabulary": bundle.vocabulary.version,
    }


def _scorer(bundle: ModelBundle, min_score: float, top_k: int) -> TagScorer:
    """The functions' scorer: per-tag threshold where the vocabulary sets one, else ``min_score``."""
    vocab = bundle.vocabulary
    per_tag = [t.threshold for t in vocab.tags]
    return TagScorer.build(
        vocab.names, bundle.tag_embeddings, per_tag, min_score, top_k or len(vocab.tags), bundle.score_transform
    )


def _predicted(scorer: TagScorer, scores: NDArray[np.float32]) -> NDArray[np.bool_]:
    """[N, all tags]: the tags the functions would store for each photo."""
    indices, _ = scorer.select(scores)
    out = np.zeros(scores.shape, dtype=bool)
    rows = np.broadcast_to(np.arange(len(scores))[:, None], indices.shape)
    out[rows[indices >= 0], indices[indices >= 0]] = True
    return out


def _metrics(scores: NDArray[np.float32], predicted: NDArray[np.bool_], truth: NDArray[np.bool_]) -> dict[str, float]:
    """[N, T] scores, predictions and truth over the label space."""
    return {
        "map": mean_ap(scores, truth),
        **precision_recall_f1(predicted, truth),
        "tags_per_photo": float(predicted.sum(axis=1).mean()) if len(predicted) else 0.0,
    }


def _per_tag(
    tags: tuple[str, ...],
    thresholds: NDArray[np.float32],
    scores: NDArray[np.float32],
    predicted: NDArray[np.bool_],
    truth: NDArray[np.bool_],
) -> list[dict[str, Any]]:
    aps = per_tag_ap(scores, truth)
    tp, pred = (predicted & truth).sum(axis=0), predicted.sum(axis=0)
    return [
        {
            "tag": tag,
            "positives": int(truth[:, t].sum()),
            "ap": None if math.isnan(aps[t]) else float(aps[t]),
            "threshold": float(thresholds[t]),
            "predicted": int(pred[t]),
            "true_positives": int(tp[t]),
        }
        for t, tag in enumerate(tags)
    ]


def _encoders(bundle: ModelBundle, threads: int) -> tuple[dict[str, ImageEncoder], list[dict[str, Any]]]:
    """Every image encoder variant the manifest lists (the shipped one at least) that is present."""
    listed = {v["quantization"]: v["file"] for v in bundle.manifest.get("image_encoder_variants", [])}
    listed.setdefault(bundle.manifest["image_encoder"]["quantization"], bundle.image_encoder_file)
    encoders, skipped = {}, []
    for quantization, file in listed.items():
        try:
            encoders[quantization] = ImageEncoder(bundle.verified_path(file), threads=threads)
        except ModelBundleError as exc:
            if file == bundle.image_encoder_file:
                raise
            skipped.append({"quantization": quantization, "file": file, "skipped": str(exc)})
    return encoders, skipped


def _embed(
    photos: tuple[Path, ...], bundle: ModelBundle, encoders: dict[str, ImageEncoder], opts: EvaluateOptions
) -> tuple[dict[str, NDArray[np.float32]], list[int], list[dict[str, str]]]:
    """Each photo decoded once, then embedded by every encoder, a batch at a time (bounded memory)."""
    from tqdm import tqdm

    prep, limits = bundle.preprocessing, Limits()
    chunks: dict[str, list[NDArray[np.float32]]] = {q: [] for q in encoders}
    kept: list[int] = []
    skipped: list[dict[str, str]] = []
    bar = tqdm(total=len(photos), desc="photos", unit="photo", disable=not opts.progress)
    for start in range(0, len(photos), opts.batch):
        pixels = []
        for i in range(start, min(start + opts.batch, len(photos))):
            try:
                pixels.append(load_pixels(photos[i].read_bytes(), prep, limits)[1])  # as the tagger decodes
                kept.append(i)
            except PermanentError as exc:
                skipped.append({"photo": str(photos[i]), "reason": str(exc)})
        if pixels:
            for quantization, encoder in encoders.items():
                chunks[quantization].append(encoder.embed(np.stack(pixels)))
        bar.update(min(opts.batch, len(photos) - start))
    bar.close()
    if not kept:
        raise PermanentError("none of the labelled photos could be decoded")
    return {q: np.concatenate(c) for q, c in chunks.items()}, kept, skipped


def _ablations(
    bundle: ModelBundle,
    images: NDArray[np.float32],
    truth: NDArray[np.bool_],
    columns: NDArray[np.int64],
    threads: int,
) -> list[dict[str, Any]]:
    """mAP with the tag embeddings made four ways; rows equal to the shipped ones are reused."""
    vocab = bundle.vocabulary
    manifest = bundle.manifest
    try:
        text = TextEncoder(
            bundle.verified_path(manifest["text_encoder"]["file"]),
            bundle.verified_path(manifest["tokenizer"]["file"]),
            threads=threads,
            settings=bundle.text_settings,
        )
    except (KeyError, ModelBundleError) as exc:
        return [{"name": "ablations skipped", "skipped": f"no text encoder: {exc}"}]
    tags = tuple(vocab.tags[c] for c in columns)
    rows = []
    for templates in (vocab.templates, SINGLE_TEMPLATE):
        for descriptions in (True, False):
            kept = tags if descriptions else tuple(replace(t, descriptions=()) for t in tags)
            matrix = tag_matrix(bundle, Vocabulary(kept, templates), text, progress=False)
            name = f"{len(templates)} template{'s' * (len(templates) > 1)}"
            name += " + descriptions" if descriptions else ", no descriptions"
            rows.append(
                {
                    "name": name,
                    "templates": len(templates),
                    "descriptions": sum(len(t.descriptions) for t in kept),
                    "shipped": templates == vocab.templates and kept == tags,
                    "map": mean_ap(images @ matrix.T, truth),
                }
            )
    return rows


def _encoder_table(
    bundle: ModelBundle,
    embeddings: dict[str, NDArray[np.float32]],
    truth: NDArray[np.bool_],
    columns: NDArray[np.int64],
) -> list[dict[str, Any]]:
    tags = bundle.tag_embeddings
    reference = embeddings.get("fp32")
    base = mean_ap(reference @ tags[columns].T, truth) if reference is not None else float("nan")
    out = []
    for quantization, images in embeddings.items():
        value = mean_ap(images @ tags[columns].T, truth)
        out.append(
            {
                "quantization": quantization,
                "shipped": quantization == bundle.manifest["image_encoder"]["quantization"],
                "map": value,
                "map_change_vs_fp32": value - base,
                "top5_agreement_vs_fp32": top5_agreement(reference, images, tags) if reference is not None else None,
            }
        )
    return out


def _calibrate(
    opts: EvaluateOptions,
    vocab: Vocabulary,
    tags: tuple[str, ...],
    scores: NDArray[np.float32],
    truth: NDArray[np.bool_],
    min_score: float,
    top_k: int,
    columns: NDArray[np.int64],
) -> dict[str, Any]:
    """Thresholds from the shipped encoder's scores, written when any changed; ``scores`` is [N, all tags]."""
    current = {t.name: t.threshold for t in vocab.tags}
    results = calibrate(scores[:, columns], truth, tags, opts.target_precision, opts.min_positives)
    changes = [{**vars(c), "before": current[c.tag]} for c in results if c.threshold not in (None, current[c.tag])]
    after: dict[str, Any] = {}
    if changes:
        manifest = write_thresholds(opts.model_dir, {c["tag"]: c["threshold"] for c in changes})
        scorer = _scorer(ModelBundle.open(opts.model_dir), min_score, top_k)  # read back as the functions will
        # Only thresholds changed: the photos' scores are the same, the tags chosen from them differ.
        after = {
            "vocabulary": manifest["vocabulary"]["version"],
            **_metrics(scores[:, columns], _predicted(scorer, scores)[:, columns], truth),
        }
    return {
        "target_precision": opts.target_precision,
        "min_positives": opts.min_positives,
        "changes": changes,
        "kept": [{"tag": c.tag, "positives": c.positives, "note": c.note} for c in results if c.threshold is None],
        "after": after,
    }
