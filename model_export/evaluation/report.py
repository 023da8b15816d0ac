"""The evaluation report as a readable table (stdout) and as JSON (``--json``)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

RANDOM_NOTE = (
    "NOTE: this model has random weights ({source}): the figures below are meaningless and only show that the "
    "harness runs. Evaluate a real export (`make model`) for real numbers."
)


def _pct(value: float | None) -> str:
    return "   n/a" if value is None or math.isnan(value) else f"{value * 100:6.1f}"


def _threshold(value: float | None) -> str:
    return "default" if value is None else f"{value:.4f}"


def format_report(report: dict[str, Any]) -> str:
    model, labels, scoring, m = report["model"], report["labels"], report["scoring"], report["metrics"]
    lines = []
    if model["random"]:
        lines += [RANDOM_NOTE.format(source=model["source"]), ""]
    lines += [
        f"model      {model['id']} ({model['source']}), image encoder {model['image_encoder']}, "
        f"vocabulary {model['vocabulary']}",
        f"labels     {labels['name']}: {labels['photos']} photos, {labels['labels']} labels, "
        f"{labels['tags_with_positives']} of {labels['tags']} tags with positives"
        + (f", {len(labels['skipped'])} photos skipped (undecodable)" if labels["skipped"] else ""),
        f"scoring    min score {scoring['min_score']:g} (per-tag thresholds on {scoring['own_thresholds']} "
        f"of these tags), top-k {scoring['top_k'] or 'off'}",
        "",
        "metric (%)              micro   macro",
        f"precision              {_pct(m['micro_precision'])}  {_pct(m['macro_precision'])}",
        f"recall                 {_pct(m['micro_recall'])}  {_pct(m['macro_recall'])}",
        f"F1                     {_pct(m['micro_f1'])}  {_pct(m['macro_f1'])}",
        f"mAP                    {_pct(m['map'])}",
        f"tags per photo (of the label space): {m['tags_per_photo']:.2f}",
        "",
        "tag embeddings (ablation)                 mAP (%)",
    ]
    for row in report["ablations"]:
        if "skipped" in row:
            lines.append(f"  {row['skipped']}")
        else:
            lines.append(f"  {row['name'] + (' (shipped)' if row['shipped'] else ''):<38} {_pct(row['map'])}")
    lines += ["", "image encoder   mAP (%)  change vs fp32  top-5 same as fp32"]
    for row in report["encoders"]:
        if "skipped" in row:
            lines.append(f"  {row['quantization']:<6} skipped: {row['skipped']}")
            continue
        agreement = row["top5_agreement_vs_fp32"]
        lines.append(
            f"  {row['quantization'] + ('*' if row['shipped'] else ''):<12} {_pct(row['map'])}"
            f"  {row['map_change_vs_fp32'] * 100:+13.2f}  {_pct(agreement)}"
        )
    lines.append("  (* shipped; top-5 over the whole vocabulary)")
    if "calibration" in report:
        lines += ["", *format_calibration(report["calibration"])]
    return "\n".join(lines)


def format_calibration(cal: dict[str, Any]) -> list[str]:
    lines = [
        f"calibration: target precision {cal['target_precision']:g}, at least {cal['min_positives']} positives",
    ]
    if not cal["changes"]:
        lines.append("  no threshold changed")
    for c in cal["changes"]:
        lines.append(
            f"  {c['tag']:<24} {_threshold(c['before']):>8} -> {c['threshold']:.4f}  "
            f"(precision {c['precision'] * 100:.0f}%, recall {c['recall'] * 100:.0f}%, {c['positives']} positives)"
        )
    notes: dict[str, int] = {}
    for k in cal["kept"]:
        notes[k["note"]] = notes.get(k["note"], 0) + 1
    for note, count in sorted(notes.items()):
        lines.append(f"  {count} tag(s) kept their threshold: {note}")
    if cal["after"]:
        a = cal["after"]
        lines.append(
            f"  written: vocabulary {a['vocabulary']}; on this same set now micro P/R/F1 "
            f"{_pct(a['micro_precision']).strip()}/{_pct(a['micro_recall']).strip()}/{_pct(a['micro_f1']).strip()}%"
            " (optimistic: calibrated on it). Deploy, then `cliptag retag`."
        )
    return lines


def write_json(report: dict[str, Any], path: Path) -> None:
    """NaN (a tag without positives) is written as null, so any JSON reader takes the file."""
    path.write_text(json.dumps(_clean(report), indent=2, ensure_ascii=False), "utf-8")


def _clean(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value
