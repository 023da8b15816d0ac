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


def test_an_api_layer_without_its_text_encoder_reads_it_from_the_api_model_uri(
    stack, api, info, s3, photos, model_dir: Path, tmp_path: Path, monkeypatch
):
    """A text encoder too big for the API's layer (SigLIP2's) is left out of it by the build:
    search by text answers 503 saying what to deploy, everything else answers; with the export
    directory in S3 (ApiModelS3Uri) search by text works again, with the layer's manifest."""
    import subprocess
    import sys
    import urllib.parse

    from tests.conftest import ROOT

    key = f"api-layer/{tmp_path.name}.jpg"
    s3.put_object(Bucket=info.bucket, Key=key, Body=photos[0])
    api.wait(key, until=lambda body: body.get("status") == "tagged")  # tagged and indexed by the full model
    layer = tmp_path / "api-layer"
    pack = [sys.executable, str(ROOT / "layers" / "model" / "pack.py"), "api", str(model_dir), str(layer)]
    env = {**os.environ, "CLIPTAG_API_MODEL_LAYER_MIB": "0"}
    subprocess.run(pack, check=True, env=env, capture_output=True, text=True)
    assert {p.name for p in layer.iterdir()} == {"manifest.json", "vocabulary.json", "tag_embeddings.npy"}
    similar = f"/images/{urllib.parse.quote(key, safe='')}/similar"
    monkeypatch.setenv("MODEL_DIR", str(layer))
    wiring.reset()
    try:
        status, body = api.get("/search?q=dog")
        assert status == 503 and "ApiModelS3Uri" in body["error"], body
        assert api.get(similar)[0] == 200 and api.get("/tags")[0] == 200 and api.image(key)[0] == 200
        assert wiring.tag_vector(wiring.bundle().vocabulary.names[0]) is not None  # the vector plan of /images?all=

        # ApiModelS3Uri: the API's MODEL_FILES_S3_URI. Another build's text encoder uploaded there is
        # refused against the layer's manifest (503, saying why); the export's own is used.
        s3.create_bucket(Bucket="api-models")
        encoder = wiring.bundle().text_encoder_file
        s3.put_object(Bucket="api-models", Key=f"tiny/{encoder}", Body=b"another build's encoder")
        s3.upload_file(str(model_dir / "tokenizer.json"), "api-models", "tiny/tokenizer.json")
        monkeypatch.setenv("MODEL_FILES_S3_URI", "s3://api-models/tiny")
        monkeypatch.setenv("CLIPTAG_TMP_MODEL_DIR", str(tmp_path / "tmp-model"))
        wiring.reset()
        status, body = api.get("/search?q=dog")
        assert status == 503 and "does not match the manifest" in body["error"], body
        (tmp_path / "tmp-model" / encoder).unlink()  # a new container: /tmp starts empty
        s3.upload_file(str(model_dir / encoder), "api-models", f"tiny/{encoder}")
        wiring.reset()
        status, body = api.get("/search?q=dog")
        assert status == 200 and body["images"], body
        assert wiring.bundle().root == layer  # the layer's manifest and vocabulary, not S3's
    finally:
        monkeypatch.setenv("MODEL_FILES_S3_URI", "")
        monkeypatch.setenv("MODEL_DIR", str(model_dir))
        os.environ.pop("CLIPTAG_TMP_MODEL_DIR", None)
        wiring.reset()
        wiring.pipeline()
