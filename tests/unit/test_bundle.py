"""The model directory is checked before it is trusted."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from cliptag.bundle import ModelBundle
from cliptag.errors import ModelBundleError


@pytest.fixture
def bundle_copy(model_dir: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "model"
    shutil.copytree(model_dir, dest)
    return dest


def test_loads_and_exposes_the_contract(model_dir: Path):
    bundle = ModelBundle.open(model_dir)
    assert bundle.tag_embeddings.shape == (len(bundle.vocabulary.tags), bundle.embed_dim)
    norms = np.linalg.norm(bundle.tag_embeddings, axis=1)
    assert np.allclose(norms, 1.0, atol=1e-5)
    assert bundle.image_encoder_path().is_file()
    assert bundle.model_key.startswith(bundle.model_id)


def test_tampered_encoder_is_refused(bundle_copy: Path):
    bundle = ModelBundle.open(bundle_copy)
    path = bundle_copy / bundle.image_encoder_file
    path.write_bytes(path.read_bytes()[:-1] + b"\x00")
    with pytest.raises(ModelBundleError, match="does not match the manifest"):
        ModelBundle.open(bundle_copy).image_encoder_path()


def test_tag_embeddings_of_another_vocabulary_are_refused(bundle_copy: Path):
    manifest = json.loads((bundle_copy / "manifest.json").read_text())
    manifest["tag_embeddings"]["vocabulary_hash"] = "0" * 64
    (bundle_copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelBundleError, match="another vocabulary"):
        _ = ModelBundle.open(bundle_copy).tag_embeddings


def test_edited_vocabulary_is_refused(bundle_copy: Path):
    doc = json.loads((bundle_copy / "vocabulary.json").read_text())
    doc["tags"][0]["name"] = "edited"
    (bundle_copy / "vocabulary.json").write_text(json.dumps(doc))
    with pytest.raises(ModelBundleError):
        _ = ModelBundle.open(bundle_copy).vocabulary


def test_missing_file_and_missing_manifest(bundle_copy: Path, tmp_path: Path):
    (bundle_copy / "tag_embeddings.npy").unlink()
    with pytest.raises(ModelBundleError, match="missing"):
        _ = ModelBundle.open(bundle_copy).tag_embeddings
    with pytest.raises(ModelBundleError, match=r"no manifest\.json"):
        ModelBundle.open(tmp_path / "empty")
