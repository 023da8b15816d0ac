"""Lambda SnapStart: make what init builds safe to snapshot once and restore many times.

With SnapStart on (template parameter ``SnapStart``), Lambda runs init when a version is
published, snapshots the memory and restores copies for cold starts. Before the snapshot the
whole pipeline is built (the model loaded: that is what the snapshot saves). After a restore the
boto3 clients are replaced (the snapshot's hold its credentials and pooled connections) and the
``random`` module, which botocore's retry jitter uses, is reseeded so copies do not retry in
step. The inference and decode thread counts come from the function's memory setting
(``cliptag.config.vcpus``), never from the host that took the snapshot. Outside Lambda's
runtime (``snapshot_restore_py`` is part of it) nothing is registered.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from typing import Any


def before_snapshot(build: Callable[[], Any]) -> None:
    """Build everything init can build, so a restored copy starts warm."""
    if not (os.environ.get("INFERENCE_THREADS") or os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")):
        raise RuntimeError("set INFERENCE_THREADS: the snapshot must not size threads from this host")
    build()


def after_restore(renew_clients: Callable[[], None]) -> None:
    """Give this copy its own AWS clients and random state."""
    renew_clients()
    random.seed()


def register(build: Callable[[], Any], renew_clients: Callable[[], None]) -> bool:
    """Register the hooks with Lambda's runtime; False where there is no SnapStart runtime."""
    try:
        from snapshot_restore_py import (  # type: ignore[import-not-found]  # Lambda runtime only
            register_after_restore,
            register_before_snapshot,
        )
    except ImportError:
        return False
    register_before_snapshot(lambda: before_snapshot(build))
    register_after_restore(lambda: after_restore(renew_clients))
    return True
