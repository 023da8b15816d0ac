"""Copy the model files one function opens into its layer (stdlib only: runs wherever sam does).

Usage: python3 pack.py tagger|api MODEL_DIR OUT_DIR
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path


def files(function: str, manifest: dict) -> list[str]:  # type: ignore[type-arg]
    """The tagger embeds images and scores tags; the API embeds search queries (the text encoder
    the export chose: int8 where parity holds) and resolves tag names."""
    vocabulary = manifest["vocabulary"]["file"]
    if function == "tagger":
        return [manifest["image_encoder"]["file"], vocabulary, manifest["tag_embeddings"]["file"]]
    if function == "api":
        tokenizer = manifest.get("tokenizer", {}).get("file", "tokenizer.json")
        return [manifest["text_encoder"]["file"], tokenizer, vocabulary]
    raise SystemExit(f"unknown function {function!r}: tagger or api")


def main(function: str, model_dir: str, out_dir: str) -> None:
    source, target = Path(model_dir), Path(out_dir)
    manifest = json.loads((source / "manifest.json").read_text("utf-8"))
    target.mkdir(parents=True, exist_ok=True)
    for name in ["manifest.json", *files(function, manifest)]:
        shutil.copy(source / name, target / name)


if __name__ == "__main__":
    main(*sys.argv[1:4])
