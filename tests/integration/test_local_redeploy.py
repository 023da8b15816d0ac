"""The vocabulary -> re-tag flow of docs/lifecycle.md on the local stack, from the command line only,
each step its own process as a user types it: `python -m devstack up`, an upload, a copy of the
default vocabulary with one tag renamed, `python -m model_export vocabulary`, then `python -m
devstack redeploy` (the running stack) or `up` again (an emulator that holds the stack), then
`cliptag retag`: the renamed tag, and only it, changes in the records."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from devstack.stack import free_port
from model_export.vocabulary_file import DEFAULT_VOCABULARY, load_vocabulary
from tests.conftest import ROOT, real_photos
from tests.integration.conftest import Api
from tests.integration.test_existing_bucket import _answers, client, wait_for

ENV = {
    **{k: v for k, v in os.environ.items() if k != "AWS_ENDPOINT_URL"},
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "POWERTOOLS_METRICS_DISABLED": "true",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
}


def run(*args: str) -> str:
    """One command, as typed; its output (it must succeed)."""
    done = subprocess.run(args, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, f"{' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def cliptag(*args: str) -> str:
    script = Path(sys.executable).with_name("cliptag")
    return run(str(script), *args) if script.is_file() else run(sys.executable, "-m", "cliptag_cli", *args)


@contextmanager
def up(state: Path, log: Path, *args: str) -> Iterator[dict[str, Any]]:
    """`python -m devstack up ...` until the block ends (SIGTERM, like Ctrl-C); its state file."""
    state.unlink(missing_ok=True)
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "devstack", "up", "--state", str(state), "--api-port", str(free_port()), *args],
            cwd=ROOT,
            env=ENV,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for(lambda: state.is_file() or process.poll() is not None, 90, "the stack")
            assert process.poll() is None, log.read_text()
            yield json.loads(state.read_text("utf-8"))
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=30)


def renamed_vocabulary(path: Path, old: str, new: str) -> Path:
    """A copy of default.yaml (without its companion) with the tag ``old`` renamed ``new``."""
    entry = re.compile(rf"(?:(?<=\[)|(?<=, )|(?<=name: )|(?<=- )){re.escape(old)}(?=[,\]}}]|$)", re.M)
    text, count = entry.subn(new, DEFAULT_VOCABULARY.read_text("utf-8"))
    assert count == 1, f"{old!r} found {count} times"
    path.write_text(text, "utf-8")
    names = load_vocabulary(path, quiet=True).names
    assert new in names and old not in names
    return path


def new_vocabulary(model_dir: Path, work: Path, old: str) -> tuple[Path, str]:
    """Steps 2-3 of the flow: a copy of the model directory given the edited vocabulary."""
    mine = work / "model-mine"
    shutil.copytree(model_dir, mine)
    vocabulary = renamed_vocabulary(work / "my-tags.yaml", old, f"my {old}")
    out = run(sys.executable, "-m", "model_export", "vocabulary", "--model-dir", str(mine), "--vocabulary",
              str(vocabulary), "--no-progress")  # fmt: skip
    assert "1,619 of 1,620 tags take their descriptions from the default" in out, out
    assert "1619 tags kept their embeddings, 1 embedded" in out, out
    version = json.loads((mine / "manifest.json").read_text("utf-8"))["vocabulary"]["version"]
    return mine, version


def upload(state: dict[str, Any], bucket: str, count: int) -> dict[str, dict[str, Any]]:
    """Photos put into the bucket, and their records once tagged."""
    s3, api = client(state["aws_endpoint_url"], "s3"), Api(state["api_url"])
    keys = {f"library/{photo.name}": photo for photo in real_photos(count)}
    for key, photo in keys.items():
        s3.put_object(Bucket=bucket, Key=key, Body=photo.read_bytes())
    return {key: api.wait(key, timeout=60) for key in keys}


def assert_retagged(api: Api, before: dict[str, dict[str, Any]], old: str, version: str) -> None:
    """Each record re-scored under ``version``: ``old`` gone, every other tag's score unchanged."""
    for key, record in before.items():
        after = api.wait(key, until=lambda body: body["vocabulary_version"] == version, timeout=60)
        scores = {t["tag"]: t["score"] for t in after["tags"]}
        earlier = {t["tag"]: t["score"] for t in record["tags"]}
        assert old not in scores
        kept = set(scores) & set(earlier)
        assert len(kept) >= len(earlier) - 2  # the renamed tag left; one other may have moved in
        assert {t: scores[t] for t in kept} == pytest.approx({t: earlier[t] for t in kept}, abs=2e-6)
    assert api.tag(old)[0] == 404  # no longer a tag of the deployed vocabulary


def test_a_new_vocabulary_redeployed_to_the_running_stack_and_retagged(model_dir: Path, tmp_path: Path):
    state = tmp_path / "local-stack.json"
    with up(state, tmp_path / "up.log", "--model-dir", str(model_dir)) as stack:
        before = upload(stack, stack["bucket"], 2)
        old = next(iter(before.values()))["tags"][0]["tag"]
        mine, version = new_vocabulary(model_dir, tmp_path, old)
        preview = cliptag("retag", "--dry-run", "--model-dir", str(mine), "--local-state", str(state))
        assert re.search(r"[1-9]\d* tag items change", preview), preview
        out = run(sys.executable, "-m", "devstack", "redeploy", "--model-dir", str(mine), "--state", str(state))
        assert f"vocabulary {version}, 1620 tags" in out
        assert json.loads(state.read_text("utf-8"))["model_dir"] == str(mine)
        cliptag("retag", "--local-state", str(state))
        assert_retagged(Api(stack["api_url"]), before, old, version)
        # A directory that is not a model is refused; the stack keeps running the one it has.
        done = subprocess.run(
            [sys.executable, "-m", "devstack", "redeploy", "--model-dir", str(tmp_path), "--state", str(state)],
            cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode == 1 and "manifest" in done.stderr
    assert "redeployed: " in (tmp_path / "up.log").read_text()


def test_up_again_on_an_emulator_holding_the_stack_updates_it(model_dir: Path, tmp_path: Path):
    """The restart path: the user's AWS emulator outlives `up`; the next `up` keeps its data."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    aws = subprocess.Popen(
        [sys.executable, "-m", "devstack.moto_patches", "-H", "127.0.0.1", "-p", str(port)],
        cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for(lambda: _answers(endpoint), 20, "the AWS emulator")
        state, where = tmp_path / "local-stack.json", ["--existing-bucket", "photos", "--aws-endpoint", endpoint]
        with up(state, tmp_path / "up-1.log", "--model-dir", str(model_dir), *where) as stack:
            before = upload(stack, "photos", 1)
        old = next(iter(before.values()))["tags"][0]["tag"]
        mine, version = new_vocabulary(model_dir, tmp_path, old)
        with up(state, tmp_path / "up-2.log", "--model-dir", str(mine), *where) as stack:
            assert stack["updated"] and stack["bucket"] == "photos"
            api = Api(stack["api_url"])
            key = next(iter(before))
            status, record = api.image(key)  # the table kept its records, the index its vectors
            assert status == 200 and record["vocabulary_version"] == before[key]["vocabulary_version"]
            assert [image["key"] for image in api.get("/search?q=a+photo&limit=5")[1]["images"]] == [key]
            cliptag("retag", "--local-state", str(state))
            assert_retagged(api, before, old, version)
        assert "updated the local stack" in (tmp_path / "up-2.log").read_text()
    finally:
        aws.send_signal(signal.SIGTERM)
        aws.wait(timeout=30)


def test_template_parameters_from_the_command_line_reach_the_local_stack(model_dir: Path, tmp_path: Path):
    """`python -m devstack up --parameter TopK=3`: the tagger gives three tags, as a stack deployed
    with that parameter would; a parameter the template does not have stops it, saying so."""
    state = tmp_path / "local-stack.json"
    with up(state, tmp_path / "up.log", "--model-dir", str(model_dir), "--parameter", "TopK=3") as stack:
        records = upload(stack, stack["bucket"], 2)
        assert all(len(record["tags"]) == 3 for record in records.values()), records
    done = subprocess.run(
        [sys.executable, "-m", "devstack", "up", "--state", str(state), "--parameter", "TopKK=3"],
        cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode != 0 and "no such parameter" in done.stderr
