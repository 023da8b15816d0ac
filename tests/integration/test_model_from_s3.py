"""ModelS3Uri: models too big for a layer are copied from S3 into /tmp at cold start."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cliptag import wiring


def test_model_directory_loads_from_an_s3_uri(stack, s3, info, model_dir: Path, tmp_path: Path, monkeypatch):
    s3.create_bucket(Bucket="my-models")
    for path in model_dir.iterdir():
        if path.is_file():
            s3.upload_file(str(path), "my-models", f"cliptag/tiny/{path.name}")
    monkeypatch.setenv("MODEL_S3_URI", "s3://my-models/cliptag/tiny")
    monkeypatch.setenv("CLIPTAG_TMP_MODEL_DIR", str(tmp_path / "model"))
    wiring.reset()
    try:
        bundle = wiring.bundle()
        assert bundle.root == tmp_path / "model"
        assert bundle.tag_embeddings.shape[0] == len(bundle.vocabulary.tags)
        assert wiring.pipeline().model_key == bundle.model_key
        # Only what the tagger opens was copied: not the text encoder, the other image encoder
        # variants or the parity report (a whole export directory would overflow /tmp).
        manifest = bundle.manifest
        needed = {"manifest.json", bundle.image_encoder_file, manifest["vocabulary"]["file"]}
        needed.add(manifest["tag_embeddings"]["file"])
        assert {p.name for p in bundle.root.iterdir()} == needed
        assert len(needed) < len([p for p in model_dir.iterdir() if p.is_file()])
    finally:
        monkeypatch.setenv("MODEL_S3_URI", "")
        os.environ.pop("CLIPTAG_TMP_MODEL_DIR", None)
        wiring.reset()
        wiring.pipeline()  # back to the stack's model for the other tests


def test_a_bad_model_uri_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("MODEL_S3_URI", "https://example.com/model")
    wiring.reset()
    try:
        with pytest.raises(ValueError, match="s3://bucket/prefix"):
            wiring.bundle()
    finally:
        monkeypatch.setenv("MODEL_S3_URI", "")
        wiring.reset()
        wiring.pipeline()
