"""What the measures share: prices, percentiles and timing, the photos they make (12 MP JPEGs,
6 MP PNGs), objects put in a bucket, the SQS record the tagger is given, and fresh interpreters
to measure in."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent

# Prices (USD, us-east-1, on-demand) used for the cost rows.
LAMBDA_GB_SECOND = {"x86_64": 0.0000166667, "arm64": 0.0000133334}
LAMBDA_PER_REQUEST = 0.20 / 1e6
SQS_PER_REQUEST = 0.40 / 1e6
S3_GET_PER_REQUEST = 0.0004 / 1000
DYNAMODB_PER_WRU = 0.625 / 1e6
REKOGNITION_PER_1000 = 1.00
# Typical in-region round trips, for the modelled-latency row (not measured here: no AWS).
S3_GET_S = 0.020
DYNAMODB_CALL_S = 0.008


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def timed(fn: Callable[..., Any], *args: Any) -> tuple[float, Any]:
    """(milliseconds, result) of one call."""
    start = time.perf_counter()
    result = fn(*args)
    return (time.perf_counter() - start) * 1000, result


def fresh(data: bytes) -> bytes:
    """Same pixels, new content id: bytes after a JPEG's end marker are ignored by decoders."""
    return data + uuid.uuid4().bytes


def _upscaled(data: bytes, size: tuple[int, int], fmt: str, **save: Any) -> bytes:
    img = Image.open(io.BytesIO(data)).convert("RGB").resize(size, Image.Resampling.BICUBIC)
    buf = io.BytesIO()
    img.save(buf, format=fmt, **save)
    return buf.getvalue()


def big_jpeg(data: bytes, size: tuple[int, int] = (4000, 3000)) -> bytes:
    return _upscaled(data, size, "JPEG", quality=90)


def big_png(data: bytes, size: tuple[int, int] = (3000, 2000)) -> bytes:
    return _upscaled(data, size, "PNG", compress_level=1)


def put_objects(s3: Any, bucket: str, blobs: Mapping[str, bytes], workers: int = 8) -> None:
    """PutObject every (key, body), ``workers`` at a time: set-up, never timed."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(lambda kv: s3.put_object(Bucket=bucket, Key=kv[0], Body=kv[1]), blobs.items()))


def sqs_record(bucket: str, key: str) -> dict[str, Any]:
    """The SQS record of an S3 ObjectCreated notification, as the event source mapping sends it."""
    notification = {
        "Records": [
            {
                "eventSource": "aws:s3",
                "eventName": "ObjectCreated:Put",
                "s3": {"bucket": {"name": bucket}, "object": {"key": quote_plus(key)}},
            }
        ]
    }
    return {
        "messageId": str(uuid.uuid4()),
        "receiptHandle": "bench",
        "body": json.dumps(notification),
        "attributes": {},
        "messageAttributes": {},
        "eventSource": "aws:sqs",
        "awsRegion": "us-east-1",
    }


def python_env(model_dir: Path | None = None) -> dict[str, str]:
    """The environment of a fresh interpreter; with ``model_dir``, configured like the tagger function.

    With no AWS to talk to: building the tagger's pipeline records the deployment in DynamoDB, and
    without credentials that one call fails at once (logged, tagging goes on). So no request
    leaves this machine, and no retries against a local stack stopped meanwhile are timed.
    """
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'functions'}:{ROOT}"}
    if model_dir is not None:
        env = {k: v for k, v in env.items() if not k.startswith("AWS_")}
        env.update(MODEL_DIR=str(model_dir), POWERTOOLS_TRACE_DISABLED="true", AWS_DEFAULT_REGION="us-east-1")
        env.update(AWS_EC2_METADATA_DISABLED="true", AWS_SHARED_CREDENTIALS_FILE=os.devnull, AWS_CONFIG_FILE=os.devnull)
    return env


def run_python(code: str, args: list[str], env: dict[str, str], preexec: Callable[[], None] | None = None) -> str:
    """``code`` in a fresh interpreter; its standard output (an error if it fails)."""
    out = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        preexec_fn=preexec,  # only to join a cgroup before exec
    )
    return out.stdout
