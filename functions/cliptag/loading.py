"""Loading the model: the slow part of a cold start, started as early as the handler can.

Verifying the image encoder (SHA-256) and building its ONNX Runtime session take ~0.5 s and
release the GIL; importing boto3, Powertools and the X-Ray SDK takes about as long and holds
it. ``start()`` runs the first on a thread while the handler module goes on importing the
second, so on Lambda's 2 vCPUs a cold start pays roughly the longer of the two, not their sum.

Each object is built once per container (single flight under one lock): the thread and the
first invocation can both ask for the encoder and the model is still loaded once. This module
imports only what loading needs (numpy, ONNX Runtime, Pillow), never the AWS SDK up front.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Generic, TypeVar

from cliptag.bundle import MANIFEST, ModelBundle
from cliptag.config import Settings
from cliptag.encoder import ImageEncoder
from cliptag.text import TextEncoder

# Lambda's writable disk, for MODEL_S3_URI: each function fetches only the files it opens
# (CLIPTAG_TMP_MODEL_DIR moves it, for tests).
TMP_MODEL_DIR = "/tmp/cliptag-model"

T = TypeVar("T")
_log = logging.getLogger(__name__)


class single_flight(Generic[T]):  # noqa: N801 - used as a decorator, like functools.cache
    """``functools.cache`` that also makes concurrent first callers wait for one build.

    One lock per builder, not one for all: while the thread builds the encoder, the first
    invocation can still read the settings and build its AWS clients.
    """

    def __init__(self, build: Callable[[], T]) -> None:
        self._cached = cache(build)
        self._lock = threading.Lock()
        self.__doc__ = build.__doc__

    def __call__(self) -> T:
        with self._lock:
            return self._cached()

    def cache_clear(self) -> None:
        with self._lock:
            self._cached.cache_clear()


@single_flight
def settings() -> Settings:
    return Settings()


@single_flight
def bundle() -> ModelBundle:
    s = settings()
    if not (s.model_s3_uri or s.model_files_s3_uri):
        return ModelBundle.open(Path(s.model_dir))
    from cliptag.adapters.s3 import ModelFiles  # boto3: only when the model lives in S3

    tmp_dir = Path(os.environ.get("CLIPTAG_TMP_MODEL_DIR", TMP_MODEL_DIR))
    if s.model_s3_uri:  # the whole model directory, its manifest first
        files = ModelFiles(s.model_s3_uri, tmp_dir)
        files.fetch(MANIFEST)
        return ModelBundle.open(tmp_dir, fetch=files.fetch)
    # The layer's manifest, and from S3 only the files the layer lacks, checked against it.
    return ModelBundle.open(Path(s.model_dir), fetch=ModelFiles(s.model_files_s3_uri, tmp_dir).fetch)


@single_flight
def image_encoder() -> ImageEncoder:
    return ImageEncoder(bundle().image_encoder_path(), threads=settings().inference_threads)


class NoTextEncoder(RuntimeError):
    """The API's layer was built without the text encoder (too big for it: layers/model/pack.py)
    and no model directory in S3 was given: everything but search by text still works."""


@single_flight
def text_encoder() -> TextEncoder:
    b = bundle()
    if b.fetch is None and not (b.root / b.text_encoder_file).is_file():
        raise NoTextEncoder(
            f"search by text is not available: this deployment's layer has no text encoder ({b.text_encoder_file},"
            " too big for a Lambda layer); deploy with ApiModelS3Uri naming the model directory in S3 (docs/models.md)"
        )
    try:
        paths = b.text_encoder_path(), b.tokenizer_path()
    except Exception as exc:  # not in S3, refused, or another build's file: say so, never a bare 500
        _log.error("the text encoder could not be had: %s", exc)
        raise NoTextEncoder(f"search by text is not available: {exc} (ApiModelS3Uri, docs/models.md)") from exc
    return TextEncoder(*paths, threads=settings().inference_threads, settings=b.text_settings)


def start(build: Callable[[], object] | None = None) -> threading.Thread | None:
    """Load the image encoder (or ``build``) on a thread, inside Lambda only (AWS_LAMBDA_FUNCTION_NAME is set).

    Elsewhere (tests, the local stack) nothing starts: they configure the environment first and
    build what they need themselves. A failure here is left for the first invocation, which
    builds again and raises it where Lambda reports it.
    """
    if not os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
        return None

    def run() -> None:
        try:
            (build or image_encoder)()
        except Exception as exc:  # reported by the first invocation's own attempt
            _log.warning("model preload failed; the first invocation will retry: %s", exc)

    thread = threading.Thread(target=run, name="cliptag-preload", daemon=True)
    thread.start()
    return thread


def reset() -> None:
    """Forget everything built (tests and the local stack, after changing the environment)."""
    for fn in (text_encoder, image_encoder, bundle, settings):
        fn.cache_clear()
