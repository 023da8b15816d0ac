"""``python -m model_export``: export a CLIP checkpoint to the cliptag model directory."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from model_export.checkpoint import DEFAULT_GEOMETRY_DIR, DEFAULT_MODEL, RANDOM_CONFIGS
from model_export.hub import CheckpointUnavailable
from model_export.vocabulary_file import DEFAULT_VOCABULARY, VocabularyError


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m model_export",
        description="Export a CLIP model to ONNX with parity checks, quantization and tag embeddings. "
        "`python -m model_export vocabulary --help`: a new vocabulary for an exported directory, without PyTorch; "
        "`python -m model_export evaluate --help`: its tagging accuracy on labelled photos, calibrated thresholds; "
        "`python -m model_export near-duplicates --help`: its near-duplicate threshold and figures.",
    )
    p.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        help=f"open_clip:<model>/<pretrained tag>, open_clip:hf-hub:<repo>, a Hugging Face transformers CLIP id "
        f"or a local checkpoint dir (default {DEFAULT_MODEL}: docs/models.md); "
        f"or an offline random-weight config: {', '.join(RANDOM_CONFIGS)}",
    )
    p.add_argument("--revision", default=None, help="hub revision (branch, tag or commit) to pin")
    p.add_argument(
        "--out",
        type=Path,
        default=Path("build/model"),
        help="output directory; replaced only when the export succeeds (a failed run leaves it as it was)",
    )
    p.add_argument("--vocabulary", type=Path, default=DEFAULT_VOCABULARY, help="tag vocabulary YAML")
    p.add_argument(
        "--quantize",
        choices=["auto", "none", "int8", "int8-per-channel", "fp16"],
        default="auto",
        help="image encoder variant: auto picks the smallest with min cosine >= 0.99 vs fp32",
    )
    p.add_argument(
        "--geometry-dir",
        type=Path,
        default=DEFAULT_GEOMETRY_DIR,
        help="config.json/tokenizer of the real geometry, for the random configs",
    )
    p.add_argument("--photos", type=int, default=16, help="real photos used for the parity checks")
    p.add_argument("--seed", type=int, default=0, help="seed of the random-weight configs")
    p.add_argument("--no-progress", action="store_true")
    _add_description_flags(p)
    return p


def _add_description_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--no-descriptions",
        action="store_true",
        help="leave the tags' visual descriptions out of their embeddings (inline and <vocabulary>.descriptions.yaml)",
    )
    p.add_argument(
        "--no-default-descriptions",
        action="store_true",
        help="a vocabulary without its own <vocabulary>.descriptions.yaml: do not give tags named like a default "
        "tag the default's descriptions (it does by default, so that a copy of default.yaml embeds like it)",
    )


def vocabulary_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m model_export vocabulary",
        description="Give an exported model directory a new vocabulary without PyTorch: the tags are embedded "
        "by its ONNX text encoder; the tag embeddings, vocabulary and manifest are rewritten. Deploy it, then "
        "run `cliptag retag`.",
    )
    p.add_argument("--model-dir", type=Path, required=True, help="a directory written by `python -m model_export`")
    p.add_argument("--vocabulary", type=Path, required=True, help="the new tag vocabulary YAML")
    p.add_argument("--no-progress", action="store_true")
    _add_description_flags(p)
    return p


def vocabulary_main(argv: list[str]) -> int:
    args = vocabulary_parser().parse_args(argv)
    from cliptag.errors import ModelBundleError

    from model_export.revocabulary import revocabulary

    try:
        manifest = revocabulary(
            args.model_dir,
            args.vocabulary,
            progress=not args.no_progress,
            descriptions=not args.no_descriptions,
            default_descriptions=not args.no_default_descriptions,
        )
    except (VocabularyError, ModelBundleError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    entry = manifest["vocabulary"]
    print(f"{args.model_dir}: vocabulary {entry['version']} with {entry['tags']} tags")
    return 0


def evaluate_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m model_export evaluate",
        description="Tagging accuracy of an exported model directory on labelled photos (mAP, precision, recall, "
        "F1 at its thresholds; tag-embedding ablations; image encoder variants vs fp32), and with --calibrate "
        "per-tag thresholds written into its vocabulary. See docs/accuracy.md.",
    )
    p.add_argument("--model-dir", type=Path, required=True, help="a directory written by `python -m model_export`")
    p.add_argument(
        "--labels",
        type=Path,
        default=None,
        help="a CSV (header path,tags; tags separated by ';'; paths relative to the CSV) or a folder with one "
        "sub-folder per tag (default: COCO val2017 panoptic from ../shared/data beside the repository)",
    )
    p.add_argument("--limit", type=int, default=None, help="only the first N photos")
    p.add_argument(
        "--min-score", type=float, default=None, help="default threshold (default: MIN_SCORE, else the manifest's)"
    )
    p.add_argument("--top-k", type=int, default=None, help="tags kept per photo (default: TOP_K, else 10; 0: no limit)")
    p.add_argument("--calibrate", action="store_true", help="write per-tag thresholds into the model directory")
    p.add_argument("--target-precision", type=float, default=0.9, help="precision each calibrated tag must reach")
    p.add_argument("--min-positives", type=int, default=5, help="positives a tag needs to be calibrated")
    p.add_argument("--json", type=Path, default=None, help="write the full report (per tag too) to this file")
    p.add_argument("--threads", type=int, default=0, help="ONNX Runtime threads (default: one per CPU)")
    p.add_argument("--no-progress", action="store_true")
    return p


def evaluate_main(argv: list[str]) -> int:
    args = evaluate_parser().parse_args(argv)
    if not 0.0 < args.target_precision <= 1.0:
        print("error: --target-precision must be in (0, 1]", file=sys.stderr)
        return 2
    from cliptag.errors import ModelBundleError, PermanentError

    from model_export.evaluation.labels import LabelsError
    from model_export.evaluation.report import format_report, write_json
    from model_export.evaluation.run import EvaluateOptions, evaluate

    options = EvaluateOptions(
        model_dir=args.model_dir,
        labels=args.labels,
        limit=args.limit,
        min_score=args.min_score,
        top_k=args.top_k,
        calibrate=args.calibrate,
        target_precision=args.target_precision,
        min_positives=args.min_positives,
        threads=args.threads,
        progress=not args.no_progress,
    )
    try:
        report = evaluate(options)
    except (LabelsError, ModelBundleError, PermanentError, VocabularyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(format_report(report))
    if args.json:
        write_json(report, args.json)
        print(f"full report: {args.json}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["captions"]:
        from model_export.caption_export import main as captions_main

        return captions_main(argv[1:])
    if argv[:1] == ["vocabulary"]:
        return vocabulary_main(argv[1:])
    if argv[:1] == ["evaluate"]:
        return evaluate_main(argv[1:])
    if argv[:1] == ["near-duplicates"]:
        from model_export.near_duplicates import main as near_duplicates_main

        return near_duplicates_main(argv[1:])
    args = build_parser().parse_args(argv)
    from model_export.export import ExportOptions, run_export
    from model_export.parity import ParityError

    try:
        run_export(
            ExportOptions(
                source=args.model,
                out_dir=args.out,
                vocabulary=args.vocabulary,
                geometry_dir=args.geometry_dir,
                revision=args.revision,
                quantize=args.quantize,
                photos=args.photos,
                seed=args.seed,
                progress=not args.no_progress,
                descriptions=not args.no_descriptions,
                default_descriptions=not args.no_default_descriptions,
            )
        )
    except CheckpointUnavailable as exc:
        print(f"error: {exc.explain(args.out)}", file=sys.stderr)
        return 1
    except (VocabularyError, ParityError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0
