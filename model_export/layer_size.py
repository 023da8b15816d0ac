"""Unzipped size of each function with its layers against Lambda's 250 MB limit.

Usage: ``python -m model_export.layer_size [.aws-sam/build]`` after ``sam build``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024
# Each function: its code, then its layers (the template's Layers).
FUNCTIONS = {
    "tagger": {
        "function": "TaggerFunction",
        "runtime layer": "RuntimeLayer",
        "model layer": "ModelLayer",
        "places layer": "PlacesLayer",  # PlaceTags=On only: counted, as the tagger must fit with it
    },
    "api": {
        "function": "ApiFunction",
        "runtime layer": "RuntimeLayer",
        "text layer": "TextLayer",
        "model layer": "ApiModelLayer",
    },
}


def tree_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def report(build_dir: Path) -> tuple[str, bool]:
    rows, all_fit = [], True
    for function, parts in FUNCTIONS.items():
        total = 0
        rows.append(f"  {function}")
        for label, name in parts.items():
            part = build_dir / name
            if not part.is_dir():
                return f"{part} not found: run `make build` first", False
            size = tree_bytes(part)
            total += size
            rows.append(f"    {label:<18} {size / 2**20:8.1f} MiB")
        fits = total <= LAMBDA_UNZIPPED_LIMIT
        all_fit &= fits
        verdict = "fits" if fits else "DOES NOT FIT"
        rows.append(f"    {'total':<18} {total / 2**20:8.1f} MiB of {LAMBDA_UNZIPPED_LIMIT / 2**20:.0f} MiB: {verdict}")
    if not all_fit:
        rows.append("  -> deploy with ModelS3Uri=s3://bucket/prefix (model loaded into /tmp at cold start), see README")
    if not _api_layer_has_text_encoder(build_dir / FUNCTIONS["api"]["model layer"]):
        rows.append(
            "  -> the API's layer has no text encoder (too big for it, layers/model/pack.py): deploy with"
            " ApiModelS3Uri=s3://bucket/prefix holding the export directory, or search by text answers 503"
        )
    return "unzipped deployment size per function\n" + "\n".join(rows), all_fit


def _api_layer_has_text_encoder(layer: Path) -> bool:
    manifest = layer / "model" / "manifest.json"
    if not manifest.is_file():
        return True  # nothing to say about a layer without a manifest
    name = str(json.loads(manifest.read_text("utf-8"))["text_encoder"]["file"])
    return (layer / "model" / name).is_file()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    text, fits = report(Path(args[0] if args else ".aws-sam/build"))
    print(text)
    return 0 if fits else 1


if __name__ == "__main__":
    raise SystemExit(main())
