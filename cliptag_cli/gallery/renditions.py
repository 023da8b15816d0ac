"""Pictures for the gallery: the originals read from S3 with the user's credentials and resized
here, so a grid of 12 MP photos sends the browser a few hundred KB, not a few hundred MB
(docs/gallery.md has the figures).

A rendition is a JPEG whose long side is at most ``sizes[name]`` pixels, upright (EXIF
orientation applied), decoded with JPEG draft mode (DCT scaling) by the tagger's own ``decode``.
Renditions are cached on disk under a name derived from (bucket, key, ETag, size): each request
asks S3 for the object's current ETag first (HeadObject), so an overwritten object is never
served stale, and an unchanged one is resized once.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError
from cliptag.errors import PermanentError
from cliptag.imaging import Limits, decode
from PIL import Image

SIZES: Mapping[str, int] = {"grid": 320, "large": 1280}  # long side, pixels
ORIGINAL = "original"
QUALITY = 82  # JPEG quality: no visible loss at these sizes, ~20 KB per 320 px thumbnail
LIMITS = Limits()  # the tagger's defaults (50 MB, 100 MP): larger objects are not previewed


@dataclass(frozen=True)
class Picture:
    status: int  # 200, or 404/413/415 with ``reason``
    body: bytes = b""
    etag: str = ""  # the HTTP ETag of this rendition (for the browser's revalidation)
    reason: str = ""


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "cliptag" / "gallery"


def resize(data: bytes, size: int, quality: int = QUALITY) -> bytes:
    """``data`` (any format the tagger decodes) as an upright JPEG at most ``size`` px on its long side."""
    img = decode(data, LIMITS, draft_to=size).image  # draft keeps the short side >= size, so the long one too
    img.thumbnail((size, size), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    img.save(out, format="JPEG", quality=quality, progressive=True)
    return out.getvalue()


class Renditions:
    def __init__(self, s3: Any, bucket: str, cache_dir: Path, sizes: Mapping[str, int | None] = SIZES) -> None:
        """``sizes``: rendition name -> long side; None streams the original instead (``originals``,
        the measure's baseline)."""
        self.s3 = s3
        self.bucket = bucket
        self.cache_dir = cache_dir
        self.sizes: dict[str, int | None] = {**sizes, ORIGINAL: None}
        cache_dir.mkdir(parents=True, exist_ok=True)

    def etag(self, rendition: str, key: str) -> str | None:
        """The HTTP ETag ``get`` would answer with, from a HeadObject alone (None: no such object)."""
        head = self.head(key)
        return None if head is None else self.http_etag(rendition, head["ETag"])

    def get(self, rendition: str, key: str) -> Picture:
        """A resized rendition (an original is streamed by ``originals``, never read whole here)."""
        size = self.sizes.get(rendition)
        if size is None:
            return Picture(404, reason=f"no rendition {rendition!r} (one of {', '.join(self.sizes)})")
        head = self.head(key)
        if head is None:
            return Picture(404, reason=f"no object {key!r} in s3://{self.bucket}")
        if head["ContentLength"] > LIMITS.max_bytes:
            return Picture(413, reason=f"{head['ContentLength']:,} bytes: too large to preview")
        cached = self._path(key, head["ETag"], size)
        if cached.is_file():
            return Picture(200, cached.read_bytes(), etag=self.http_etag(rendition, head["ETag"]))
        obj = self.s3.get_object(Bucket=self.bucket, Key=key)  # its ETag may be newer than the HEAD's
        try:
            body = resize(obj["Body"].read(), size)
        except PermanentError as exc:
            return Picture(415, reason=str(exc))
        self._store(self._path(key, obj["ETag"], size), body)
        return Picture(200, body, etag=self.http_etag(rendition, obj["ETag"]))

    def head(self, key: str) -> dict[str, Any] | None:
        try:
            head: dict[str, Any] = self.s3.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return head

    def http_etag(self, rendition: str, s3_etag: str) -> str:
        return f'"{rendition}{self.sizes.get(rendition) or ""}-{s3_etag.strip(chr(34))}"'

    def _path(self, key: str, s3_etag: str, size: int) -> Path:
        name = hashlib.sha256(f"{self.bucket}\0{key}\0{s3_etag}\0{size}\0{QUALITY}".encode()).hexdigest()
        return self.cache_dir / f"{name}.jpg"

    def _store(self, path: Path, body: bytes) -> None:
        # Written beside, then renamed: a concurrent reader sees the whole file or none.
        fd, tmp = tempfile.mkstemp(dir=self.cache_dir, suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(body)
        os.replace(tmp, path)
