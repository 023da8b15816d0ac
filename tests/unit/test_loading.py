"""Cold start: the model loads on a thread during the handler's imports, once per container."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from cliptag import loading
from cliptag.encoder import ImageEncoder
from cliptag.errors import ModelBundleError


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch, model_dir: Path):
    monkeypatch.setenv("MODEL_DIR", str(model_dir))
    monkeypatch.setenv("MODEL_S3_URI", "")
    loading.reset()
    yield monkeypatch
    loading.reset()


def test_nothing_starts_outside_lambda(fresh: pytest.MonkeyPatch):
    fresh.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    assert loading.start() is None


def test_the_preload_thread_and_the_first_invocation_build_one_encoder(fresh: pytest.MonkeyPatch):
    fresh.setenv("AWS_LAMBDA_FUNCTION_NAME", "cliptag-tagger")
    built: list[ImageEncoder] = []
    slow = threading.Event()

    class Counting(ImageEncoder):
        def __init__(self, path: Path, threads: int = 0) -> None:
            slow.wait(5)  # hold the build until the "first invocation" is waiting for it
            super().__init__(path, threads)
            built.append(self)

    fresh.setattr(loading, "ImageEncoder", Counting)
    thread = loading.start()
    assert thread is not None
    waiter = threading.Timer(0.2, slow.set)
    waiter.start()
    encoder = loading.image_encoder()  # blocks on the thread's build instead of starting another
    thread.join(5)
    assert built == [encoder]
    assert loading.image_encoder() is encoder


def test_a_failed_preload_is_reported_by_the_first_invocation(fresh: pytest.MonkeyPatch, tmp_path: Path):
    fresh.setenv("AWS_LAMBDA_FUNCTION_NAME", "cliptag-tagger")
    fresh.setenv("MODEL_DIR", str(tmp_path))  # no manifest here
    thread = loading.start()
    assert thread is not None
    thread.join(5)
    assert not thread.is_alive()
    with pytest.raises(ModelBundleError, match=r"manifest\.json"):
        loading.image_encoder()


@pytest.mark.parametrize(("memory_mb", "expected"), [(128, 1), (1769, 1), (1770, 2), (3538, 2), (10240, 6)])
def test_threads_follow_the_lambda_memory_setting(monkeypatch: pytest.MonkeyPatch, memory_mb: int, expected: int):
    """Lambda's /proc/cpuinfo shows the host's CPUs; its vCPUs follow memory (1 per 1,769 MB)."""
    from cliptag.config import vcpus
    from cliptag.encoder import session_options

    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", str(memory_mb))
    assert vcpus() == expected
    assert session_options().intra_op_num_threads == expected
