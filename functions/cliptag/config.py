"""Runtime settings, read once from the environment (the SAM template sets them)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    return int(raw) if raw.strip() else default


def _env_float(name: str, default: float | None) -> float | None:
    raw = os.environ.get(name, "").strip()
    return float(raw) if raw else default


@dataclass(frozen=True)
class Settings:
    images_bucket: str = field(default_factory=lambda: os.environ.get("IMAGES_BUCKET", ""))
    table_name: str = field(default_factory=lambda: os.environ.get("TABLE_NAME", "cliptag-tags"))
    model_dir: str = field(default_factory=lambda: os.environ.get("MODEL_DIR", "/opt/model"))
    # s3://bucket/prefix: download the model directory into /tmp at cold start instead of a layer.
    model_s3_uri: str = field(default_factory=lambda: os.environ.get("MODEL_S3_URI", ""))
    # None: use the threshold the model manifest recommends (calibrated per model).
    min_score: float | None = field(default_factory=lambda: _env_float("MIN_SCORE", None))
    top_k: int = field(default_factory=lambda: _env_int("TOP_K", 10))
    max_object_bytes: int = field(default_factory=lambda: _env_int("MAX_OBJECT_BYTES", 50 * 1024 * 1024))
    max_pixels: int = field(default_factory=lambda: _env_int("MAX_PIXELS", 100_000_000))
    tag_index_shards: int = field(default_factory=lambda: _env_int("TAG_INDEX_SHARDS", 1))
    # 0: one intra-op thread per vCPU the function has.
    inference_threads: int = field(default_factory=lambda: _env_int("INFERENCE_THREADS", 0))
    # Secrets Manager secret whose value signs pagination tokens (the API function only).
    token_secret_arn: str = field(default_factory=lambda: os.environ.get("TOKEN_SECRET_ARN", ""))
    # Browser origin allowed to call the API (CORS); empty: CORS off.
    cors_allow_origin: str = field(default_factory=lambda: os.environ.get("CORS_ALLOW_ORIGIN", "").strip())
