"""The export without the Hugging Face Hub: one clear message in seconds, nothing half-written,
and a model already in the local Hugging Face cache still exports."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.conftest import ROOT, TOKENIZER_DIR, require

pytest.importorskip("huggingface_hub", reason="the export needs the export extra (make venv)")

HUB_MODEL = "openai/clip-vit-base-patch32"
FAKE_COMMIT = "0123456789abcdef0123456789abcdef01234567"


def closed_port() -> int:
    """A loopback port nothing listens on: connections to it are refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def offline_env(hf_home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_CACHE")}
    env |= {
        "HF_ENDPOINT": f"http://127.0.0.1:{closed_port()}",
        "HF_HOME": str(hf_home),
        "PYTHONPATH": f"{ROOT / 'functions'}:{ROOT}",
    }
    return env


def export(args: list[str], env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "model_export", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if ".partial-" in p.name or ".previous-" in p.name)


@pytest.mark.parametrize(
    ("model", "repo"),
    [
        (HUB_MODEL, HUB_MODEL),
        ("open_clip:ViT-B-32-256/datacomp_s34b_b86k", "laion/CLIP-ViT-B-32-256x256-DataComp-s34B-b86K"),
        ("open_clip:hf-hub:timm/ViT-B-32-SigLIP2-256", "timm/ViT-B-32-SigLIP2-256"),
    ],
)
def test_unreachable_hub_fails_fast_with_one_message_and_writes_nothing(tmp_path: Path, model: str, repo: str):
    out = tmp_path / "m"
    started = time.monotonic()
    result = export(["--model", model, "--out", str(out)], offline_env(tmp_path / "hf"))
    elapsed = time.monotonic() - started

    assert result.returncode == 1, result.stderr
    assert "MODEL=tiny" in result.stderr
    assert f"cannot download {repo}" in result.stderr and "unreachable" in result.stderr
    assert "--model /path/to/a/local/checkpoint" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert not out.exists()
    assert leftovers(tmp_path) == []
    assert elapsed < 10, f"took {elapsed:.1f} s"


def test_failed_export_leaves_an_existing_good_directory_untouched(tmp_path: Path):
    out = tmp_path / "m"
    out.mkdir()
    (out / "manifest.json").write_text('{"good": true}')
    (out / "image_encoder.onnx").write_bytes(b"good weights")
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    result = export(["--model", HUB_MODEL, "--out", str(out)], offline_env(tmp_path / "hf"))

    assert result.returncode == 1
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert leftovers(tmp_path) == []


def test_failure_midway_removes_the_partial_export_and_keeps_the_old_one(tmp_path: Path, monkeypatch):
    """A failure after files were written (here: while exporting the encoders) keeps the old
    directory as it was and leaves no staging directory behind; directories it created go too."""
    from model_export import export as export_module

    class Interrupted(RuntimeError):
        pass

    def half_written(ckpt: object, out_dir: Path) -> None:
        (out_dir / "image_encoder.onnx").write_bytes(b"partial")
        raise Interrupted

    monkeypatch.setattr(export_module, "load_checkpoint", lambda *a, **k: _FakeCheckpoint())
    monkeypatch.setattr(export_module, "export_encoders", half_written)
    opts = dict(
        source="tiny",
        vocabulary=ROOT / "model_export" / "vocabulary" / "default.yaml",
        geometry_dir=tmp_path,
    )

    good = tmp_path / "good"
    good.mkdir()
    (good / "manifest.json").write_text("{}")
    with pytest.raises(Interrupted):
        export_module.run_export(export_module.ExportOptions(out_dir=good, **opts))
    assert [p.name for p in good.iterdir()] == ["manifest.json"]
    assert leftovers(tmp_path) == []

    nested = tmp_path / "new" / "deeper" / "m"
    with pytest.raises(Interrupted):
        export_module.run_export(export_module.ExportOptions(out_dir=nested, **opts))
    assert not (tmp_path / "new").exists()


def test_staging_replaces_the_old_directory_only_on_success(tmp_path: Path):
    from model_export.export import _staging

    out = tmp_path / "m"
    out.mkdir()
    (out / "old.txt").write_text("old")
    with _staging(out) as staging:
        assert staging.parent == tmp_path and staging != out
        (staging / "new.txt").write_text("new")
        assert (out / "old.txt").is_file()  # still there while the export runs
    assert sorted(p.name for p in out.iterdir()) == ["new.txt"]
    assert leftovers(tmp_path) == []


class _FakeCheckpoint:
    model = None
    model_id = "cliptag/fake"
    source = "random:fake"
    revision = "seed0"

    class preprocessing:  # noqa: N801 - stands in for a Preprocessing instance
        crop = 224


# The local Hugging Face cache: used when the Hub is unreachable or HF_HUB_OFFLINE=1.


def fake_cache(cache: Path, files: tuple[str, ...]) -> Path:
    repo = cache / f"models--{HUB_MODEL.replace('/', '--')}"
    snapshot = repo / "snapshots" / FAKE_COMMIT
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(FAKE_COMMIT)
    for name in files:
        (snapshot / name).write_text("{}")
    return snapshot


COMPLETE = ("config.json", "preprocessor_config.json", "vocab.json", "merges.txt", "model.safetensors")


@pytest.fixture
def hub_env(tmp_path: Path, monkeypatch) -> Path:
    import huggingface_hub.constants

    cache = tmp_path / "hub"
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    return cache


def test_a_complete_cached_model_is_used_without_the_hub(hub_env: Path, monkeypatch):
    from model_export import hub

    snapshot = fake_cache(hub_env, COMPLETE)
    assert hub.cached_snapshot(HUB_MODEL, None) == snapshot
    access = hub.check_access(HUB_MODEL, None)
    assert access.local_files_only and "unreachable" in access.note and str(snapshot) in access.note

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hub, "reachable", lambda *a, **k: pytest.fail("HF_HUB_OFFLINE=1 must not probe the network"))
    assert hub.check_access(HUB_MODEL, None).local_files_only


def test_offline_mode_without_a_complete_cached_copy_says_so(hub_env: Path, monkeypatch):
    from model_export import hub

    fake_cache(hub_env, ("config.json", "preprocessor_config.json"))  # no weights, no tokenizer
    assert hub.cached_snapshot(HUB_MODEL, None) is None
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(hub.CheckpointUnavailable) as err:
        hub.check_access(HUB_MODEL, None)
    assert "HF_HUB_OFFLINE=1" in str(err.value) and "MODEL=tiny" in str(err.value)


def test_a_reachable_hub_is_used(hub_env: Path, monkeypatch):
    from model_export import hub

    monkeypatch.setattr(hub, "reachable", lambda *a, **k: True)
    assert not hub.check_access(HUB_MODEL, None).local_files_only


def test_reachability_probe_is_bounded_and_counts_any_answer(tmp_path: Path):
    import http.server
    import threading

    from model_export import hub

    started = time.monotonic()
    assert not hub.reachable(f"http://127.0.0.1:{closed_port()}", timeout_s=1.0)
    assert not hub.reachable("not a url", timeout_s=1.0)
    assert time.monotonic() - started < 3

    class NotFound(http.server.BaseHTTPRequestHandler):
        def do_HEAD(self) -> None:
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        assert hub.reachable(f"http://127.0.0.1:{server.server_address[1]}", timeout_s=2.0)
    finally:
        server.shutdown()
        server.server_close()


def test_hub_and_network_errors_during_the_download_become_one_message(monkeypatch):
    from huggingface_hub.errors import LocalEntryNotFoundError, RepositoryNotFoundError

    from model_export import hub

    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")

    def raised(exc: BaseException, cause: BaseException) -> BaseException:
        try:
            try:
                raise cause
            except BaseException as inner:
                raise exc from inner
        except BaseException as outer:
            return outer

    # transformers wraps huggingface_hub's error, which wraps the socket's.
    refused = raised(
        LocalEntryNotFoundError("cannot find the requested files"), ConnectionRefusedError(111, "Connection refused")
    )
    wrapped = raised(OSError("We couldn't connect to 'https://huggingface.co' to load the files"), refused)
    unavailable = hub.download_error(HUB_MODEL, None, wrapped)
    assert unavailable is not None
    text = unavailable.explain(Path("build/m"))
    assert "unreachable ([Errno 111] Connection refused)" in text and "http://127.0.0.1:9" in text
    assert "MODEL=tiny" in text and "build/m" in text

    response = SimpleNamespace(headers={}, request=None, status_code=404)
    missing = raised(OSError("not a valid model identifier"), RepositoryNotFoundError("404", response=response))
    assert "no such model" in str(hub.download_error("nobody/nothing", None, missing))

    assert hub.download_error(HUB_MODEL, None, ValueError("a bug, not the network")) is None


@pytest.mark.slow
def test_a_model_in_the_local_cache_exports_with_the_hub_unreachable(tmp_path: Path):
    """The real path through transformers and huggingface_hub, offline: a (tiny) CLIP checkpoint
    stored in the Hugging Face cache layout under the hub id is exported without a network."""
    pytest.importorskip("torch", reason="the export needs the export extra (make venv)")
    require(TOKENIZER_DIR)
    from model_export.checkpoint import load_checkpoint

    hf_home = tmp_path / "hf"
    snapshot = fake_cache(hf_home / "hub", ())
    load_checkpoint("tiny", None, TOKENIZER_DIR, tmp_path, seed=5).model.save_pretrained(str(snapshot))
    for name in ("tokenizer.json", "vocab.json", "merges.txt", "tokenizer_config.json", "preprocessor_config.json"):
        shutil.copy(TOKENIZER_DIR / name, snapshot / name)
    vocab = tmp_path / "v.yaml"
    vocab.write_text("tags:\n  a: [dog, cat, beach]\n")
    out = tmp_path / "out"

    result = export(
        ["--model", HUB_MODEL, "--out", str(out), "--vocabulary", str(vocab), "--photos", "4", "--no-progress"],
        offline_env(hf_home),
    )

    assert result.returncode == 0, result.stderr[-3000:]
    assert "unreachable: using the cached copy" in result.stdout
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["model"] | {"embed_dim": 0} == {
        "id": HUB_MODEL,
        "revision": FAKE_COMMIT,
        "source": "hub",
        "family": "clip",
        "embed_dim": 0,
    }
