"""Originals: an object's own bytes, streamed from S3 to the browser, typed by what they are.

The bucket and its metadata are untrusted: anyone who can upload can choose an object's bytes
and its stored Content-Type (``image/png,text/html``, ``image/SVG+xml``, ...). Served as stored,
such an object would render as a page of the gallery's origin, or load as one of its scripts,
and read the signed API. So the stored type is never used: the first bytes (``PROBE_BYTES``)
are opened with Pillow, restricted to the formats every browser shows, and only those are sent
inline, with a Content-Type written here (``INLINE``). Anything else (HEIC, TIFF, SVG, HTML,
unknown) is ``application/octet-stream``, a download (the server adds the headers).

An original is never held whole: the probe's bytes are sent first, then the rest in
``CHUNK_BYTES`` pieces as they arrive from S3, with the length S3 announced. Objects over the
cap (``MAX_BYTES`` by default, ``--max-original-bytes``) are refused from their HeadObject alone.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from PIL import Image, WebPImagePlugin

from cliptag_cli.gallery.renditions import Renditions

# Pillow format -> the Content-Type sent. MPO (a camera's multi-picture JPEG) is a JPEG file.
INLINE: Mapping[str, str] = {
    "JPEG": "image/jpeg",
    "MPO": "image/jpeg",
    "PNG": "image/png",
    "GIF": "image/gif",
    "WEBP": "image/webp",
    "BMP": "image/bmp",
}
OPENERS = ("JPEG", "PNG", "GIF", "WEBP", "BMP")  # the only plugins the probe may use
DOWNLOAD = "application/octet-stream"
PROBE_BYTES = 1024 * 1024  # read before the headers are sent: enough for any header Pillow parses
CHUNK_BYTES = 64 * 1024  # then copied from S3 to the socket in pieces of this size
MAX_BYTES = 5 * 1024**3  # S3's own limit for a single PUT
_RANGE_TOTAL = re.compile(r"/(\d+)$")


def sniff(head: bytes, size: int) -> str | None:
    """The Content-Type an object of ``size`` bytes starting with ``head`` is shown inline with;
    None when it is not one of ``INLINE``'s formats (or cannot be told from these bytes)."""
    try:
        with Image.open(io.BytesIO(head), formats=OPENERS) as img:
            return INLINE.get(img.format or "")
    except Exception:  # any bytes at all arrive here: Pillow's errors on them vary
        pass
    # Pillow's WebP opener hands the whole file to libwebp; for an object longer than the probe,
    # its own header checks decide, and the RIFF length must be the object's.
    try:  # (Pillow's own, private checks: if a release renames them, a WebP becomes a download)
        webp = WebPImagePlugin._accept(head) is True and WebPImagePlugin._get_size(head) is not None
    except Exception:
        return None
    riff_size = int.from_bytes(head[4:8], "little") + 8
    return "image/webp" if webp and size > len(head) and riff_size == size else None


@dataclass
class Original:
    status: int  # 200, or 404/413 with ``reason``
    reason: str = ""
    size: int = 0  # the Content-Length: the whole object's
    etag: str = ""
    content_type: str = DOWNLOAD
    first: bytes = b""  # the probed bytes, sent first
    rest: Iterator[bytes] = field(default_factory=lambda: iter(()))  # the remainder, from S3
    body: Any = None  # botocore's StreamingBody, closed by ``close``

    @property
    def inline(self) -> bool:
        return self.content_type != DOWNLOAD

    def chunks(self) -> Iterator[bytes]:
        if self.first:
            yield self.first
        yield from self.rest

    def close(self) -> None:
        """Drops the S3 connection if the body was not read to its end (a browser that left)."""
        if self.body is not None:
            self.body.close()


class Originals:
    def __init__(self, renditions: Renditions, max_bytes: int = MAX_BYTES) -> None:
        self.renditions = renditions
        self.max_bytes = max_bytes

    def open(self, rendition: str, key: str, whole: bool = True) -> Original:
        """The object at ``key``, probed and ready to stream (``whole``), or only probed (a HEAD:
        a ranged GetObject of at most ``PROBE_BYTES``). The caller must ``close`` it."""
        r = self.renditions
        head = r.head(key)
        if head is None:
            return Original(404, f"no object {key!r} in s3://{r.bucket}")
        if (refused := self._over_cap(int(head["ContentLength"]))) is not None:
            return refused
        if not whole and head["ContentLength"] == 0:
            return Original(200, size=0, etag=r.http_etag(rendition, head["ETag"]))
        ranged = {} if whole else {"Range": f"bytes=0-{PROBE_BYTES - 1}"}
        obj = r.s3.get_object(Bucket=r.bucket, Key=key, **ranged)  # its ETag may be newer than the HEAD's
        original = Original(200, etag=r.http_etag(rendition, obj["ETag"]), body=obj["Body"])
        try:
            original.size = self._size(obj, whole)
            if (refused := self._over_cap(original.size)) is not None:
                original.close()
                return refused
            chunks = original.body.iter_chunks(CHUNK_BYTES)
            first = bytearray()
            for chunk in chunks:
                first += chunk
                if len(first) >= PROBE_BYTES:
                    break
            original.first = bytes(first)
            original.content_type = sniff(original.first, original.size) or DOWNLOAD
            original.rest = chunks if whole else iter(())
        except BaseException:
            original.close()
            raise
        return original

    def _over_cap(self, size: int) -> Original | None:
        if size <= self.max_bytes:
            return None
        cap = f"the gallery's cap of {self.max_bytes:,} bytes for originals (--max-original-bytes)"
        return Original(413, f"{size:,} bytes: over {cap}")

    @staticmethod
    def _size(obj: dict[str, Any], whole: bool) -> int:
        if whole:
            return int(obj["ContentLength"])
        total = _RANGE_TOTAL.search(obj.get("ContentRange") or "")  # "bytes 0-1048575/2147483648"
        return int(total.group(1)) if total else int(obj["ContentLength"])
