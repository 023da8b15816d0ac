"""``python -m model_export vocabulary``: give an exported model directory a new vocabulary,
without PyTorch.

The tags are embedded by the directory's own ONNX text encoder and tokenizer (the way the
export does it), then the tag embeddings, the vocabulary and the manifest's hashes are rewritten.
New files are written beside the old and renamed into place, the manifest last: an interrupted
run leaves a directory the loader refuses (hashes disagree), never a silently mixed one. The
image encoder is untouched, so stored embeddings stay valid and `cliptag retag` re-scores them.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from cliptag.bundle import MANIFEST, ModelBundle, file_sha256
from cliptag.text import TextEncoder
from cliptag.vocabulary import TagSpec, Vocabulary
from numpy.typing import NDArray

from model_export.tag_embeddings import embed_vocabulary
from model_export.text_variants import fp32_text_encoder_file
from model_export.vocabulary_file import load_vocabulary


def revocabulary(
    model_dir: Path,
    vocabulary: Path,
    progress: bool = True,
    descriptions: bool = True,
    default_descriptions: bool = True,
    quiet: bool = False,
) -> dict[str, Any]:
    """``vocabulary`` read as the export reads it (``load_vocabulary``: its companion file, else the
    default's descriptions for tags of the same name), embedded into ``model_dir`` in place."""
    vocab = load_vocabulary(vocabulary, descriptions, default_descriptions, quiet=quiet)
    bundle = ModelBundle.open(model_dir)
    manifest: dict[str, Any] = bundle.manifest
    # The exact fp32 encoder, as the export's tag embeddings use: the shipped one may be int8.
    text = TextEncoder(
        bundle.verified_path(fp32_text_encoder_file(manifest)),
        bundle.verified_path(manifest["tokenizer"]["file"]),
        settings=bundle.text_settings,
    )
    matrix = tag_matrix(bundle, vocab, text, progress)
    files = {manifest["vocabulary"]["file"]: None, manifest["tag_embeddings"]["file"]: None}
    staged = {name: model_dir / f".{name}.new" for name in files}
    vocab_name, tags_name = list(files)
    staged[vocab_name].write_text(json.dumps(vocab.to_json(), ensure_ascii=False, indent=1), "utf-8")
    with staged[tags_name].open("wb") as fh:
        np.save(fh, matrix)
    manifest = json.loads(json.dumps(manifest))  # a copy to edit
    manifest["vocabulary"].update(hash=vocab.hash, version=vocab.version, tags=len(vocab.tags))
    manifest["tag_embeddings"].update(shape=list(matrix.shape), vocabulary_hash=vocab.hash)
    manifest["files"].update({name: file_sha256(path) for name, path in staged.items()})
    manifest["revocabulary"] = {"source": vocabulary.name, "at": datetime.now(UTC).isoformat(timespec="seconds")}
    staged_manifest = model_dir / f".{MANIFEST}.new"
    staged_manifest.write_text(json.dumps(manifest, indent=2), "utf-8")
    for name, path in staged.items():
        os.replace(path, model_dir / name)
    os.replace(staged_manifest, model_dir / MANIFEST)
    ModelBundle.open(model_dir).tag_embeddings  # noqa: B018 - load it back exactly as the Lambda will
    return manifest


def _prompt_key(tag: TagSpec) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    """What a tag's embedding depends on (the templates aside)."""
    return tag.name, tag.synonyms, tag.descriptions


def tag_matrix(bundle: ModelBundle, vocab: Vocabulary, text: TextEncoder, progress: bool) -> NDArray[np.float32]:
    """``vocab``'s tag embeddings: the bundle's own rows for tags whose prompts did not change,
    the others embedded by ``text`` (also what the accuracy harness's ablations use)."""
    old = bundle.vocabulary
    rows: dict[tuple[str, tuple[str, ...], tuple[str, ...]], NDArray[np.float32]] = {}
    if old.templates == vocab.templates:
        rows = {_prompt_key(t): row for t, row in zip(old.tags, bundle.tag_embeddings, strict=True)}
    fresh = [t for t in vocab.tags if _prompt_key(t) not in rows]
    if fresh:
        embedded = embed_vocabulary(text, Vocabulary(tags=tuple(fresh), templates=vocab.templates), progress)
        rows.update({_prompt_key(t): row for t, row in zip(fresh, embedded, strict=True)})
    print(f"[vocabulary] {len(vocab.tags) - len(fresh)} tags kept their embeddings, {len(fresh)} embedded", flush=True)
    return np.stack([rows[_prompt_key(t)] for t in vocab.tags]).astype(np.float32)
