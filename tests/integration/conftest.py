"""One local stack per test session: moto's server on loopback, the poller, the API server."""

from __future__ import annotations

import hashlib
import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cliptag import codec
from cliptag.bundle import ModelBundle
from cliptag.encoder import ImageEncoder
from cliptag.imaging import Limits, load_pixels
from cliptag.text import TextEncoder
from numpy.typing import NDArray

from devstack.stack import LocalStack, StackInfo
from tests.conftest import real_photos

# Fast redelivery so the retry/DLQ path runs in seconds.
TEST_PARAMETERS = {"QueueVisibilityTimeout": "2", "MaxReceives": "2", "BatchWindowSeconds": "1"}


@pytest.fixture(scope="session")
def stack(model_dir: Path) -> Iterator[LocalStack]:
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    local = LocalStack(model_dir, api_port=0, parameters=TEST_PARAMETERS)
    local.start()
    yield local
    local.stop()


@pytest.fixture(scope="session")
def caption_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random BLIP, exported (with its parity check) once per session for Captions=On."""
    pytest.importorskip("torch")
    from model_export.caption_export import export

    out = tmp_path_factory.mktemp("captions") / "tiny"
    export("tiny-blip", out, photos=4)
    return out


@pytest.fixture(scope="session")
def info(stack: LocalStack) -> StackInfo:
    assert stack.info is not None
    return stack.info


@pytest.fixture(scope="session")
def s3(stack: LocalStack) -> Any:
    return stack.client("s3")


class Api:
    def __init__(self, base: str) -> None:
        self.base = base

    def get(self, path: str) -> tuple[int, dict[str, Any]]:
        try:
            with urllib.request.urlopen(self.base + path, timeout=10) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"{}")

    def image(self, key: str) -> tuple[int, dict[str, Any]]:
        return self.get(f"/images/{urllib.parse.quote(key, safe='')}/tags")

    def tag(self, tag: str, **params: Any) -> tuple[int, dict[str, Any]]:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        return self.get(f"/tags/{urllib.parse.quote(tag, safe='')}/images{query}")

    def all_keys_with_tag(self, tag: str) -> list[str]:
        keys, token = [], None
        while True:
            params: dict[str, Any] = {"limit": 100}
            if token:
                params["next_token"] = token
            status, body = self.tag(tag, **params)
            assert status == 200, body
            keys += [img["key"] for img in body["images"]]
            token = body.get("next_token")
            if not token:
                return keys

    def wait(self, key: str, until: Any = lambda body: True, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            status, body = self.image(key)
            last = (status, body)
            if status == 200 and until(body):
                return body
            time.sleep(0.25)
        raise AssertionError(f"{key!r} not processed in {timeout}s: last answer {last}")

    def wait_gone(self, key: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.image(key)[0] == 404:
                return
            time.sleep(0.25)
        raise AssertionError(f"{key!r} still has tags after {timeout}s")


@pytest.fixture(scope="session")
def api(info: StackInfo) -> Api:
    return Api(info.api_url)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def bucket(stack: Any, s3: Any) -> str:
    """A bucket of its own that sends no notifications: only the events a test writes reach the
    tagger (tests/integration/handler_events.py delivers them)."""
    name = f"quiet-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="module")
def photos() -> list[bytes]:
    return [p.read_bytes() for p in real_photos(6)]


class Model:
    """The deployed model, run here the way the functions run it."""

    def __init__(self, model_dir: Path) -> None:
        self.bundle = ModelBundle.open(model_dir)
        self.images = ImageEncoder(self.bundle.image_encoder_path())
        self.text = TextEncoder(self.bundle.text_encoder_path(), self.bundle.tokenizer_path())

    def stored(self, data: bytes) -> NDArray[np.float32]:
        pixels = load_pixels(data, self.bundle.preprocessing, Limits())[1]
        return codec.round_trip(self.images.embed(pixels[None])[0])


@pytest.fixture(scope="module")
def model(model_dir: Path) -> Model:
    return Model(model_dir)


@pytest.fixture(scope="module")
def library(s3: Any, info: Any, api: Any, model: Model) -> dict[str, NDArray[np.float32]]:
    """Eight real photos under a folder of their own, and a twin of the first (the same bytes
    under another key): key -> the embedding the tagger stores."""
    folder = f"search-{uuid.uuid4().hex[:8]}/"
    found = {}
    photos = real_photos(8)
    for path in photos:
        key, data = folder + path.name, path.read_bytes()
        s3.put_object(Bucket=info.bucket, Key=key, Body=data)
        found[key] = model.stored(data)
    twin = f"{folder}twin-of-{photos[0].name}"
    s3.put_object(Bucket=info.bucket, Key=twin, Body=photos[0].read_bytes())
    found[twin] = found[folder + photos[0].name]
    for key in found:
        api.wait(key)
    return found


def folder_of(library: dict[str, Any]) -> str:
    return next(iter(library)).split("/", 1)[0] + "/"
