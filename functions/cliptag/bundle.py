"""The model directory written by ``model_export``: manifest, encoders, vocabulary, tag embeddings.

Loading checks the manifest before trusting anything: every file it loads must have the
recorded SHA-256, the tag embeddings must match the vocabulary's length, hash and the model's
dimension. A tampered or mismatched directory is refused with ModelBundleError.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from cliptag.errors import ModelBundleError
from cliptag.imaging import Preprocessing
from cliptag.scoring import ScoreTransform
from cliptag.text import CONTEXT_LENGTH, TextSettings
from cliptag.vocabulary import Vocabulary

MANIFEST = "manifest.json"
DEFAULT_NEAR_DUPLICATE = 0.95
FORMAT_VERSION = 2  # 2: a model family's preprocessing, tokenizer and scoring as data
READABLE_VERSIONS = (1, 2)  # a version 1 directory is OpenAI CLIP's: every new field has its default
INTERPOLATIONS = {"bilinear": 2, "bicubic": 3}  # names -> PIL filters


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class ModelBundle:
    root: Path
    manifest: dict[str, Any]
    # Brings a file missing from ``root`` by its manifest name and says where it put it (a model
    # directory kept in S3); the manifest in ``root`` checks it like any other.
    fetch: Callable[[str], Path] | None = None

    @classmethod
    def open(cls, root: str | Path, fetch: Callable[[str], Path] | None = None) -> ModelBundle:
        root = Path(root)
        path = root / MANIFEST
        if not path.is_file():
            raise ModelBundleError(f"{root} has no {MANIFEST}: not a cliptag model directory (run model_export)")
        try:
            manifest = json.loads(path.read_text("utf-8"))
        except json.JSONDecodeError as exc:
            raise ModelBundleError(f"{path} is not valid JSON: {exc}") from exc
        if manifest.get("format_version") not in READABLE_VERSIONS:
            raise ModelBundleError(
                f"{path}: format_version {manifest.get('format_version')!r}, expected one of {READABLE_VERSIONS}"
            )
        return cls(root, manifest, fetch)

    def verified_path(self, name: str) -> Path:
        """Path of a file listed in the manifest, after checking its SHA-256."""
        expected = self.manifest.get("files", {}).get(name)
        if expected is None:
            raise ModelBundleError(f"{name} is not listed in {self.root / MANIFEST}")
        path = self.root / name
        if not path.is_file() and self.fetch is not None:
            path = self.fetch(name)  # into a writable directory of its own (the root may be a layer)
        if not path.is_file():
            raise ModelBundleError(f"{path} is missing")
        actual = file_sha256(path)
        if actual != expected:
            raise ModelBundleError(f"{path} does not match the manifest (sha256 {actual[:12]} != {expected[:12]})")
        return path

    @property
    def model_id(self) -> str:
        return str(self.manifest["model"]["id"])

    @property
    def embed_dim(self) -> int:
        return int(self.manifest["model"]["embed_dim"])

    @property
    def image_encoder_file(self) -> str:
        return str(self.manifest["image_encoder"]["file"])

    @property
    def model_key(self) -> str:
        """Identifies the exact image encoder: embeddings are cached per content under it."""
        enc = self.manifest["image_encoder"]
        revision = self.manifest["model"].get("revision") or "local"
        digest = self.manifest["files"][enc["file"]][:12]
        return f"{self.model_id}@{revision}:{enc['quantization']}:{digest}"

    @property
    def preprocessing(self) -> Preprocessing:
        p = self.manifest["preprocessing"]
        resample = INTERPOLATIONS[p["interpolation"]] if "interpolation" in p else int(p["resample"])
        return Preprocessing(
            size=int(p["size"]),
            crop=int(p.get("crop") or p["size"]),
            mean=tuple(p["mean"]),
            std=tuple(p["std"]),
            resample=resample,
            resize=str(p.get("resize", "shortest")),
            crop_offset=str(p.get("crop_offset", "floor")),
        )

    @property
    def text_settings(self) -> TextSettings:
        t = self.manifest.get("tokenizer", {})
        return TextSettings(
            context_length=int(t.get("context_length", CONTEXT_LENGTH)),
            pad_id=t.get("pad_id"),
            eot_id=t.get("eot_id"),
            pooling=str(t.get("pooling", "eot_argmax")),
        )

    @property
    def score_transform(self) -> ScoreTransform:
        s = self.manifest.get("scoring", {})
        return ScoreTransform(str(s.get("kind", "cosine")), float(s.get("scale", 1.0)), float(s.get("bias", 0.0)))

    @property
    def default_threshold(self) -> float:
        return float(self.manifest.get("scoring", {}).get("default_threshold", 0.0))

    @cached_property
    def vocabulary(self) -> Vocabulary:
        entry = self.manifest["vocabulary"]
        path = self.verified_path(entry["file"])
        doc = json.loads(path.read_text("utf-8"))
        vocab = Vocabulary.from_json(doc)
        if vocab.hash != entry["hash"] or doc.get("hash") != entry["hash"]:
            raise ModelBundleError(
                f"{path}: vocabulary hash {vocab.hash[:12]} does not match the manifest's {entry['hash'][:12]}"
            )
        return vocab

    @cached_property
    def tag_embeddings(self) -> NDArray[np.float32]:
        entry = self.manifest["tag_embeddings"]
        if entry.get("vocabulary_hash") != self.manifest["vocabulary"]["hash"]:
            raise ModelBundleError("tag embeddings were computed for another vocabulary; re-run the export")
        matrix = np.load(self.verified_path(entry["file"]), allow_pickle=False)
        expected = (len(self.vocabulary.tags), self.embed_dim)
        if matrix.shape != expected:
            raise ModelBundleError(f"tag embeddings have shape {matrix.shape}, expected {expected}")
        return np.asarray(matrix, dtype=np.float32)

    def image_encoder_path(self) -> Path:
        return self.verified_path(self.image_encoder_file)

    @property
    def text_encoder_file(self) -> str:
        """The text encoder the export chose for search queries (int8 where parity holds)."""
        return str(self.manifest["text_encoder"]["file"])

    def text_encoder_path(self) -> Path:
        return self.verified_path(self.text_encoder_file)

    def tokenizer_path(self) -> Path:
        return self.verified_path(str(self.manifest.get("tokenizer", {}).get("file", "tokenizer.json")))

    @property
    def near_duplicate_threshold(self) -> float:
        """The cosine the export chose to call two contents near-duplicates (its own figure for
        this model's weights, see docs/search.md); 0.95 for a directory without one."""
        return float(self.manifest.get("near_duplicates", {}).get("threshold", DEFAULT_NEAR_DUPLICATE))
