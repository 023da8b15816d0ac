"""`cliptag calibrate --from-decisions` on the local stack: people confirm and reject a tag on real
photos through the API; the threshold proposed is the one computed here from the photos' own
embeddings (the lowest confirmed score whose precision over the decided photos reaches 90%);
--apply writes it into a copy of the model directory, which deployed and re-tagged gives no
photo that tag from the model below it."""

from __future__ import annotations

import re
import shutil
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import pytest
from botocore.credentials import Credentials
from cliptag import wiring
from cliptag.bundle import ModelBundle

from cliptag_cli.gallery.upstream import SignedApi
from cliptag_cli.main import main
from devstack.stack import LocalStack, StackInfo
from tests.conftest import real_photos
from tests.integration.conftest import Model
from tests.integration.test_retag import queue_idle, run_retag

# By the tag's score, highest first: ranks 1-4 and 6 confirmed, the others rejected. At the 4th
# photo's score precision is 4/4; at the 6th's, 5/6 < 90%: the 4th's score is the threshold.
CONFIRMED_RANKS = {0, 1, 2, 3, 5}


def test_thresholds_from_decisions_are_shown_then_written_then_applied_by_a_retag(
    stack: LocalStack, info: StackInfo, api: Any, s3: Any, model: Model, model_dir: Path, tmp_path: Path, capsys: Any
) -> None:
    folder = f"calibrate-{uuid.uuid4().hex[:8]}"
    bodies = {f"{folder}/{i:02d}.jpg": p.read_bytes() + uuid.uuid4().bytes for i, p in enumerate(real_photos(12))}
    for key, body in bodies.items():
        s3.put_object(Bucket=info.bucket, Key=key, Body=body)
    records = {key: api.wait(key) for key in bodies}
    tag = max({t["tag"] for r in records.values() for t in r["tags"]}, key=lambda t: len(api.all_keys_with_tag(t)))
    bundle = ModelBundle.open(model_dir)
    row = bundle.tag_embeddings[bundle.vocabulary.names.index(tag)]
    row = row / np.linalg.norm(row)
    scores = {key: float(model.stored(body) @ row) for key, body in bodies.items()}
    ranked = sorted(bodies, key=lambda k: -scores[k])
    expected = scores[ranked[3]]

    writer = SignedApi(info.api_url, info.region, Credentials("testing", "testing"))
    for rank, key in enumerate(ranked[:10]):
        answer = writer.decide(f"/images/{quote(key, safe='')}/tags/{quote(tag, safe='')}", rank in CONFIRMED_RANKS)
        assert answer.status == 202, answer.body
    calibrated = tmp_path / "calibrated"
    shutil.copytree(model_dir, calibrated)
    state = str(stack.write_state(tmp_path / "stack.json"))
    calibrate = ["calibrate", "--from-decisions", "--model-dir", str(calibrated), "--local-state", state]

    capsys.readouterr()
    assert main(calibrate) == 0
    shown = capsys.readouterr().out
    line = next(line for line in shown.splitlines() if line.startswith(tag[:28]))
    fields = line[28:].split()
    assert fields[:2] == ["5", "5"], line  # confirmed, rejected
    assert float(fields[4]) == pytest.approx(expected, abs=2e-6) and float(fields[4]) <= expected, line
    assert fields[5] == "100%/80%", line  # 4 of the 5 confirmed photos pass it, none rejected
    assert ModelBundle.open(calibrated).vocabulary.tags[bundle.vocabulary.names.index(tag)].threshold is None

    assert main([*calibrate, "--apply"]) == 0
    said = capsys.readouterr().out
    assert "wrote 1 thresholds" in said and re.search(r"re-scored locally: \d+ tag items change", said)
    threshold = ModelBundle.open(calibrated).vocabulary.tags[bundle.vocabulary.names.index(tag)].threshold
    assert threshold == float(fields[4])

    below = [
        k for k in api.all_keys_with_tag(tag) if (score := model_score(api, k, tag)) is not None and score < threshold
    ]
    assert below, "nothing to change: the test could not fail"
    try:
        stack.redeploy(calibrated)
        wiring.pipeline()
        run_retag(Path(state), list(bodies), info.bucket, timeout=300)
        queue_idle(stack, timeout=300)  # the whole library re-tagged, not only this test's photos
        for key in api.all_keys_with_tag(tag):
            status, record = api.image(key)
            if status == 404:
                continue  # deleted by another test's clean-up since the page was read
            given = next(t for t in record["tags"] if t["tag"] == tag)
            assert given["source"] == "person" or given["score"] >= threshold, (key, given)
    finally:
        stack.redeploy(model_dir)  # the other tests' model again
        wiring.pipeline()
        for key in bodies:  # near-duplicates of the other tests' photos: not left for them to find
            s3.delete_object(Bucket=info.bucket, Key=key)
        for key in bodies:
            api.wait_gone(key)


def model_score(api: Any, key: str, tag: str) -> float | None:
    """The model's score for ``tag`` on the object; None when a person confirmed it or the object
    is gone (another test's clean-up deleting it since the tag page was read)."""
    status, record = api.image(key)
    given = next((t for t in record.get("tags", []) if t["tag"] == tag), None) if status == 200 else None
    return None if given is None or given["source"] == "person" else float(given["score"])
