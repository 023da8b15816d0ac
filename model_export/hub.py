"""Can a Hugging Face model be had: from the Hub, or from the local cache? Decided in seconds.

Left to itself, a download on a machine without internet spends ~34 s in huggingface_hub's
retries and ends in a raw traceback (measured with ``make demo``). So before loading a hub id
the export checks, cheaply and in this order:

1. a complete copy in the local Hugging Face cache (``HF_HOME`` / ``HF_HUB_CACHE``), which is
   used without the network if the Hub cannot be reached or ``HF_HUB_OFFLINE=1`` is set;
2. ``HF_HUB_OFFLINE=1``: no network at all, so without a cached copy the export stops here;
3. the Hub itself (``HF_ENDPOINT``, default https://huggingface.co): one HEAD request, bounded
   to ``PROBE_TIMEOUT_S`` including name resolution.

Hub and network errors raised later, during the download itself, are turned into the same
``CheckpointUnavailable`` by ``download_error``, so the user always gets one message saying
what to do instead of a traceback.
"""

from __future__ import annotations

import importlib
import os
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

DEFAULT_ENDPOINT = "https://huggingface.co"
PROBE_TIMEOUT_S = 3.0
TRUE_VALUES = {"1", "ON", "YES", "TRUE"}  # huggingface_hub's own reading of boolean variables
# What the export reads from a snapshot: it must all be cached for an offline export to work.
NEEDED_FILES = ("config.json", "preprocessor_config.json", "vocab.json", "merges.txt")
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)


class CheckpointUnavailable(RuntimeError):
    """The requested weights cannot be had here; the message says why and what to do instead."""

    def __init__(self, model: str, reason: str) -> None:
        self.model = model
        self.reason = reason
        super().__init__(self.explain())

    def explain(self, out_dir: Path | None = None) -> str:
        copy = f"copy its output directory to {out_dir}" if out_dir else "copy its output directory here"
        return (
            f"cannot download {self.model}: {self.reason}.\n"
            "  For the offline demo run `make demo MODEL=tiny` (random weights: a real pipeline, meaningless tags);\n"
            f"  or run this export on a machine with internet and {copy};\n"
            "  or pass --model /path/to/a/local/checkpoint (with make: MODEL=/path/to/a/local/checkpoint),\n"
            "  a CLIP directory saved with save_pretrained."
        )


def endpoint() -> str:
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def offline_mode() -> bool:
    value = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return value.strip().upper() in TRUE_VALUES


def reachable(url: str, timeout_s: float = PROBE_TIMEOUT_S) -> bool:
    """Whether a server answers at ``url`` (any HTTP status counts) within ``timeout_s``.

    Runs in a daemon thread because the socket timeout does not bound name resolution.
    Honours the same proxy variables (HTTPS_PROXY, ...) as huggingface_hub.
    """
    answered: list[bool] = []

    def probe() -> None:
        try:
            urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout_s).close()
            answered.append(True)
        except urllib.error.HTTPError:  # a status code is an answer: the host is up
            answered.append(True)
        except (OSError, ValueError):  # refused, unresolvable, timed out, malformed endpoint
            answered.append(False)

    thread = threading.Thread(target=probe, name="hub-probe", daemon=True)
    thread.start()
    thread.join(timeout_s + 0.5)
    return bool(answered and answered[0])


# An OpenCLIP repository: the configuration comes with open_clip itself, the weights from the Hub.
OPENCLIP_FILES: tuple[tuple[str, ...], tuple[str, ...]] = (
    (),
    ("open_clip_model.safetensors", "open_clip_pytorch_model.bin"),
)


def cached_snapshot(
    model_id: str, revision: str | None, files: tuple[tuple[str, ...], tuple[str, ...]] = (NEEDED_FILES, WEIGHT_FILES)
) -> Path | None:
    """The cached snapshot of ``model_id`` at ``revision`` if it holds everything the export reads:
    all of ``files[0]`` and one of ``files[1]`` (the weights)."""
    from huggingface_hub import snapshot_download

    try:
        path = Path(snapshot_download(model_id, revision=revision, local_files_only=True))
    except (OSError, ValueError):  # not cached (LocalEntryNotFoundError), or not a valid repo id
        return None
    needed, weights = files
    complete = all((path / name).is_file() for name in needed) and any((path / name).is_file() for name in weights)
    return path if complete else None


@dataclass(frozen=True)
class HubAccess:
    local_files_only: bool  # True: load from the cache and never touch the network
    note: str  # what was decided, for the export log


def check_access(
    model_id: str, revision: str | None, files: tuple[tuple[str, ...], tuple[str, ...]] = (NEEDED_FILES, WEIGHT_FILES)
) -> HubAccess:
    """How to load ``model_id``; raises CheckpointUnavailable if it cannot be loaded at all."""
    cached = cached_snapshot(model_id, revision, files)
    where = f"the cached copy in {cached}"
    if offline_mode():
        if cached is None:
            raise CheckpointUnavailable(
                model_id, "HF_HUB_OFFLINE=1 is set and the model is not (completely) in the local Hugging Face cache"
            )
        return HubAccess(True, f"HF_HUB_OFFLINE=1: using {where}")
    url = endpoint()
    if reachable(url):
        return HubAccess(False, f"the Hugging Face Hub ({url}) is reachable")
    if cached is not None:
        return HubAccess(True, f"the Hugging Face Hub ({url}) is unreachable: using {where}")
    raise CheckpointUnavailable(model_id, f"the Hugging Face Hub ({url}) is unreachable")


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _network_error_types() -> tuple[type[BaseException], ...]:
    from huggingface_hub.errors import LocalEntryNotFoundError, OfflineModeIsEnabled

    types: list[type[BaseException]] = [
        LocalEntryNotFoundError,  # could not connect, and not in the cache
        OfflineModeIsEnabled,
        ConnectionError,
        TimeoutError,
        socket.gaierror,
        urllib.error.URLError,
    ]
    # huggingface_hub's HTTP client has changed over versions: requests (< 1.0), httpx, httpx2.
    for name in ("httpx2", "httpx", "requests"):
        try:
            client = importlib.import_module(name)
        except ImportError:
            continue
        for error in ("TransportError", "ConnectionError", "Timeout"):
            if isinstance(getattr(client, error, None), type):
                types.append(getattr(client, error))
    return tuple(types)


def download_error(model_id: str, revision: str | None, exc: BaseException) -> CheckpointUnavailable | None:
    """The CheckpointUnavailable that ``exc`` (raised while downloading) amounts to, or None if it
    is not a hub or network problem (a bug or a local error: let it surface as it is)."""
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError

    url = endpoint()
    network = _network_error_types()
    for link in _chain(exc):
        if isinstance(link, GatedRepoError):
            return CheckpointUnavailable(
                model_id, f"it is gated on {url}: request access on its page, then log in with `hf auth login`"
            )
        if isinstance(link, RepositoryNotFoundError):
            return CheckpointUnavailable(
                model_id, f"there is no such model on {url} (or it is private: log in with `hf auth login`)"
            )
        if isinstance(link, RevisionNotFoundError):
            return CheckpointUnavailable(model_id, f"revision {revision!r} does not exist on {url}")
    # The deepest network error names the cause best ("Connection refused", "Name or service not known").
    causes = [link for link in _chain(exc) if isinstance(link, network) or _server_error(link, HfHubHTTPError)]
    if not causes:
        return None
    text = str(causes[-1]).strip()
    detail = text.splitlines()[0] if text else type(causes[-1]).__name__
    return CheckpointUnavailable(model_id, f"the Hugging Face Hub ({url}) is unreachable ({detail})")


def _server_error(exc: BaseException, http_error: type[BaseException]) -> bool:
    status = getattr(getattr(exc, "response", None), "status_code", None)
    return isinstance(exc, http_error) and status in (429, 500, 502, 503, 504)
