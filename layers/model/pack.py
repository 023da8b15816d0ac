"""Copy the model files one function opens into its layer (stdlib only: runs wherever sam does).

Usage: python3 pack.py tagger|api MODEL_DIR OUT_DIR
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

# What the API's model layer may hold: Lambda's 250 MiB unzipped, less the API's code, runtime
# layer and text layer (154.5 MiB measured, docs/performance.md), less a margin. A text encoder
# above it (SigLIP2's, 256k-token vocabulary) stays out: the API reads it from ApiModelS3Uri.
API_MODEL_LAYER_MIB = float(os.environ.get("CLIPTAG_API_MODEL_LAYER_MIB", "90"))


def files(function: str, manifest: dict) -> list[str]:  # type: ignore[type-arg]
    """The tagger embeds images and scores tags; the API embeds search queries (the text encoder
    the export chose: int8 where parity holds), resolves tag names and searches near a tag's
    meaning (its embedding: a listing by tags too common for the tag index, cliptag.combined)."""
    vocabulary = manifest["vocabulary"]["file"]
    if function == "tagger":
        return [manifest["image_encoder"]["file"], vocabulary, manifest["tag_embeddings"]["file"]]
    if function == "api":
        return [*text_files(manifest), vocabulary, manifest["tag_embeddings"]["file"]]
    raise SystemExit(f"unknown function {function!r}: tagger or api")


def text_files(manifest: dict) -> list[str]:  # type: ignore[type-arg]
    return [manifest["text_encoder"]["file"], manifest.get("tokenizer", {}).get("file", "tokenizer.json")]


def main(function: str, model_dir: str, out_dir: str) -> None:
    source, target = Path(model_dir), Path(out_dir)
    manifest = json.loads((source / "manifest.json").read_text("utf-8"))
    names = files(function, manifest)
    if function == "api":
        text_mib = sum((source / name).stat().st_size for name in text_files(manifest)) / 2**20
        if text_mib > API_MODEL_LAYER_MIB:
            names = [n for n in names if n not in text_files(manifest)]
            print(
                f"the API's text encoder and tokenizer ({text_mib:.0f} MiB) exceed the {API_MODEL_LAYER_MIB:.0f} MiB"
                " its layer can hold: the layer carries the manifest, vocabulary and tag embeddings only, and"
                f" search by text needs ApiModelS3Uri (upload {source} there; docs/models.md)",
                file=sys.stderr,
            )
    target.mkdir(parents=True, exist_ok=True)
    for name in ["manifest.json", *names]:
        shutil.copy(source / name, target / name)


if __name__ == "__main__":
    main(*sys.argv[1:4])
