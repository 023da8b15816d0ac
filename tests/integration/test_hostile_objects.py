"""Objects that must be refused before they cost memory or time: recorded failed, with a reason."""

from __future__ import annotations

import struct
import time
import uuid
import zlib

from cliptag import wiring


def png_claiming(width: int, height: int) -> bytes:
    """A few hundred bytes whose header claims width x height pixels (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def test_a_30000_pixel_square_png_is_refused_before_decoding(s3, info, api):
    key = f"hostile/{uuid.uuid4().hex[:6]}-30k.png"
    started = time.monotonic()
    s3.put_object(Bucket=info.bucket, Key=key, Body=png_claiming(30_000, 30_000))
    body = api.wait(key)
    assert body["status"] == "failed" and "30000x30000" in body["error"] and "pixel limit" in body["error"]
    assert time.monotonic() - started < 20


def test_a_200_mb_object_is_refused_without_downloading_it(s3, info, api):
    key = f"hostile/{uuid.uuid4().hex[:6]}-huge.jpg"
    s3.put_object(Bucket=info.bucket, Key=key, Body=b"\xff\xd8" + b"\x00" * (200 * 1024 * 1024))
    body = api.wait(key, timeout=60)
    limit = wiring.settings().max_object_bytes
    assert body["status"] == "failed" and f"over the {limit}-byte limit" in body["error"]


def test_a_bad_file_seen_again_under_another_key_is_failed_again_not_retried_forever(s3, info, api):
    """The second copy finds the first copy's cached failure (found by `make soak`: an empty
    object skipped the cache lookup, met the cached failure at the claim and was dead-lettered)."""
    folder = f"hostile/again-{uuid.uuid4().hex[:6]}"
    for body in (b"", b"not an image\n"):
        first, second = f"{folder}/first-{len(body)}.jpg", f"{folder}/second-{len(body)}.jpg"
        s3.put_object(Bucket=info.bucket, Key=first, Body=body)
        assert api.wait(first)["status"] == "failed"
        s3.put_object(Bucket=info.bucket, Key=second, Body=body)
        again = api.wait(second, timeout=15)
        assert again["status"] == "failed" and again["error"] == api.wait(first)["error"]
