"""SnapStart hooks, called as Lambda's runtime would call them around a snapshot."""

from __future__ import annotations

import sys
import types
import uuid
from collections.abc import Callable

import pytest
from cliptag import snapstart, wiring

from tests.conftest import real_photos


def test_a_restored_copy_gets_new_clients_and_still_tags(stack, s3, info, api):
    pipeline = wiring.pipeline()
    before = (wiring.reader().client, wiring.table().client)
    snapstart.after_restore(wiring.renew_clients)
    after = (wiring.reader().client, wiring.table().client)
    assert after[0] is not before[0] and after[1] is not before[1]
    assert pipeline.reader.client is after[0] and pipeline.objects.table.client is after[1]  # type: ignore[attr-defined]
    key = f"restored/{uuid.uuid4().hex[:8]}.jpg"
    s3.put_object(Bucket=info.bucket, Key=key, Body=real_photos(1)[0].read_bytes())
    assert api.wait(key)["status"] == "tagged"


def test_before_snapshot_builds_and_never_sizes_threads_from_the_host(monkeypatch):
    built: list[int] = []
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "3538")
    snapstart.before_snapshot(lambda: built.append(1))
    assert built == [1]
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
    monkeypatch.delenv("INFERENCE_THREADS", raising=False)
    with pytest.raises(RuntimeError, match="INFERENCE_THREADS"):
        snapstart.before_snapshot(lambda: built.append(2))
    assert built == [1]


def test_hooks_are_registered_with_the_runtime_module(monkeypatch):
    assert snapstart.register(lambda: None, lambda: None) is False  # no SnapStart runtime here
    hooks: dict[str, Callable[[], None]] = {}
    runtime = types.ModuleType("snapshot_restore_py")
    runtime.register_before_snapshot = lambda fn: hooks.__setitem__("before", fn)  # type: ignore[attr-defined]
    runtime.register_after_restore = lambda fn: hooks.__setitem__("after", fn)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", runtime)
    monkeypatch.setenv("INFERENCE_THREADS", "2")
    calls: list[str] = []
    assert snapstart.register(lambda: calls.append("build"), lambda: calls.append("renew")) is True
    hooks["before"]()
    hooks["after"]()
    assert calls == ["build", "renew"]


def test_the_api_snapshot_holds_the_text_encoder_and_a_restored_copy_still_searches(stack, api):
    from handlers import api as api_handler

    wiring.reset()
    api_handler._build_for_snapshot()
    encoder, index = wiring.text_encoder(), wiring.vector_index()  # built before the snapshot: reused
    assert index is not None
    before = index.client
    snapstart.after_restore(wiring.renew_clients)
    assert index.client is not before and wiring.text_encoder() is encoder
    assert wiring.search().index.client is index.client  # type: ignore[union-attr]
    status, body = api.get("/search?q=a%20dog&limit=3")
    assert status == 200 and "images" in body
