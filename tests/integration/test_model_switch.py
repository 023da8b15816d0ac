"""Switching a deployed stack to another model (docs/models.md): export, deploy, backfill. The two
models' records never meet in one tag page or one search, whatever the moment: two tiny models of
the same dimension (OpenAI CLIP's structure, then OpenCLIP DataComp's), so nothing but the model
itself tells their records apart."""

from __future__ import annotations

import json
import time
import urllib.parse
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cliptag import keys, wiring
from cliptag.bundle import ModelBundle
from cliptag.records import VectorFilter

from cliptag_cli.main import main
from devstack.stack import LocalStack
from tests.conftest import real_photos


@pytest.fixture(scope="module")
def datacomp_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The second model: tiny random weights of OpenCLIP's ViT-B-32-256, the default vocabulary."""
    pytest.importorskip("torch", reason="the export needs the export extra (make venv)")
    try:
        from model_export.openclip import import_open_clip

        import_open_clip()
    except ImportError:
        pytest.skip("the OpenCLIP families need open_clip_torch (make venv)")
    from model_export.cli import main as export

    out = tmp_path_factory.mktemp("switch") / "tiny-datacomp"
    assert export(["--model", "tiny-datacomp", "--out", str(out), "--photos", "4", "--no-progress"]) == 0
    return out


def models(bucket: str, names: list[str]) -> dict[str, str]:
    """Each object's record's model, as the table holds it now."""
    records = wiring.objects().get_many([keys.object_ref(bucket, k) for k in names])
    return {r.key: r.model for r in records.values()}


def wait_models(bucket: str, names: list[str], model: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while set(models(bucket, names).values()) != {model} or len(models(bucket, names)) != len(names):
        assert time.monotonic() < deadline, f"not re-tagged by {model}: {models(bucket, names)}"
        time.sleep(0.3)


def paged_keys(api: Any, tag: str, bucket: str) -> set[str]:
    """Our objects on every page of a tag."""
    found, token = set(), None
    while True:
        params: dict[str, Any] = {"limit": 100, **({"next_token": token} if token else {})}
        status, body = api.get(f"/tags/{urllib.parse.quote(tag, safe='')}/images?{urllib.parse.urlencode(params)}")
        assert status == 200, body
        found |= {img["key"] for img in body["images"] if img["bucket"] == bucket}
        token = body.get("next_token")
        if not token:
            return found


def searched_keys(api: Any, bucket: str) -> set[str]:
    status, body = api.get("/search?" + urllib.parse.urlencode({"q": "a photo", "prefix": "switch/", "limit": 100}))
    assert status == 200, body
    return {img["key"] for img in body["images"] if img["bucket"] == bucket}


def in_index(bucket: str, space: str) -> set[str]:
    """Our objects whose vector the index holds under one model's space (queried over HTTP)."""
    index = wiring.vector_index()
    assert index is not None
    dimension = wiring.bundle().embed_dim  # both models' (the test checks they are equal)
    found = index.nearest(np.ones(dimension, np.float32), 100, VectorFilter(folder="switch/", space=space))
    return {keys.split_ref(n.ref)[1] for n in found if keys.split_ref(n.ref)[0] == bucket}


def test_a_switch_of_model_never_mixes_the_two_and_backfill_re_tags_everything(
    stack: LocalStack, api: Any, s3: Any, model_dir: Path, datacomp_dir: Path, tmp_path: Path, capsys: Any
) -> None:
    first, second = ModelBundle.open(model_dir), ModelBundle.open(datacomp_dir)
    assert first.embed_dim == second.embed_dim and first.model_key != second.model_key
    bucket = f"switch-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    names = [f"switch/{i} {p.name}" for i, p in enumerate(real_photos(4))]
    for name, photo in zip(names, real_photos(4), strict=True):
        s3.put_object(Bucket=bucket, Key=name, Body=photo.read_bytes())
    state = tmp_path / "stack.json"
    state.write_text(json.dumps({**json.loads(stack.write_state(tmp_path / "s.json").read_text()), "bucket": bucket}))
    backfill = ["backfill", "--local-state", str(state), "--prefix", "switch/"]

    assert main(backfill) == 0  # 1. the library, tagged by the first model
    wait_models(bucket, names, first.model_key)
    tag = wiring.objects().get(bucket, names[0]).tags[0].tag  # type: ignore[union-attr]
    assert names[0] in paged_keys(api, tag, bucket) and searched_keys(api, bucket) == set(names)

    # 2. What the switch costs, before deploying it.
    capsys.readouterr()
    assert main([*backfill, "--dry-run", "--model-dir", str(datacomp_dir)]) == 0
    assert "listed 4, would send 4, skipped 0" in capsys.readouterr().out
    try:
        stack.redeploy(datacomp_dir)  # 3. deploy: the API answers for the new model at once
        # Nothing re-tagged yet: the first model's records are in no page and no search of the new one.
        assert paged_keys(api, tag, bucket) == set() and searched_keys(api, bucket) == set()
        capsys.readouterr()
        assert main([*backfill, "--dry-run"]) == 0  # the tagger woken records what it runs now
        assert "listed 4, would send 4, skipped 0" in capsys.readouterr().out

        # 4. re-embed and re-tag: first one object, so that the index holds both models' vectors
        assert main([*backfill[:-1], names[0]]) == 0
        wait_models(bucket, names[:1], second.model_key)
        assert searched_keys(api, bucket) == {names[0]}
        legacy = wiring.legacy_model()
        assert legacy == first.model_key  # the table's first model keeps the original partitions
        assert in_index(bucket, keys.tag_space(first.model_key, legacy)) == set(names[1:])
        assert in_index(bucket, keys.tag_space(second.model_key, legacy)) == {names[0]}

        assert main(backfill) == 0
        wait_models(bucket, names, second.model_key)
        assert in_index(bucket, keys.tag_space(first.model_key, legacy)) == set()
        tags = {t.tag for n in names for t in wiring.objects().get(bucket, n).tags}  # type: ignore[union-attr]
        assert all(paged_keys(api, t, bucket) for t in tags)  # every new tag's page has its objects
        assert searched_keys(api, bucket) == set(names)
        capsys.readouterr()
        assert main([*backfill, "--dry-run"]) == 0
        assert "would send 0, skipped 4" in capsys.readouterr().out
        verify = ["verify", "--local-state", str(state), "--state-dir", str(tmp_path), "--settle", "0"]
        assert main([*verify, "--prefix", "switch/"]) == 0, capsys.readouterr().out  # partitions agree with META
    finally:
        stack.redeploy(model_dir)  # the other tests' model
    # Back on the first model, the second one's records are in none of its pages either.
    assert paged_keys(api, tag, bucket) == set()
