"""Originals without a browser: typed from their bytes (never from the bucket's Content-Type),
sandboxed, capped, streamed in bounded memory, and a browser that leaves midway leaves nothing
behind (docs/gallery.md, "Originals")."""

from __future__ import annotations

import http.client
import io
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import boto3
import pytest
from botocore.config import Config
from botocore.credentials import Credentials
from PIL import Image

from cliptag_cli.gallery.measure import CountingS3
from cliptag_cli.gallery.originals import PROBE_BYTES, sniff
from cliptag_cli.gallery.renditions import Renditions
from cliptag_cli.gallery.server import GalleryServer
from cliptag_cli.gallery.upstream import SignedApi
from cliptag_cli.main import build_parser
from devstack.stack import LocalStack, StackInfo
from tests.browser.conftest import fetch
from tests.conftest import FORMATS, ROOT

SHOWN = {"JPEG": "image/jpeg", "PNG": "image/png", "GIF": "image/gif", "WEBP": "image/webp", "BMP": "image/bmp"}
HTML = b"<!doctype html><title>pwned</title><script>fetch('/api/tags?pwned=1')</script>"
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>fetch("/api/tags?pwned=1")</script></svg>'
BIG = 2 * 1024**3  # the streamed object: 2 GiB
RSS_BOUND = 32 * 1024**2  # what streaming it may add to the gallery's peak RSS (measured: ~2 MiB)


def encode(fmt: str, size: tuple[int, int] = (64, 48), noise: bool = False) -> bytes:
    pixels = os.urandom(size[0] * size[1] * 3) if noise else bytes(size[0] * size[1] * 3)
    out = io.BytesIO()
    Image.frombytes("RGB", size, pixels).save(out, format=fmt, **({"lossless": True} if fmt == "WEBP" else {}))
    return out.getvalue()


class Recording(CountingS3):
    """Counts GetObject calls and bytes, and keeps each streaming body to see it closed."""

    def __init__(self, s3: Any) -> None:
        super().__init__(s3)
        self.bodies: list[Any] = []

    def get_object(self, **kwargs: Any) -> Any:
        obj = super().get_object(**kwargs)
        self.bodies.append(obj["Body"])
        return obj


@pytest.fixture(scope="module")
def bucket(s3: Any) -> str:
    """A bucket of the local S3 outside the stack: nothing put here is tagged."""
    name = f"originals-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=name)
    return name


@pytest.fixture
def serve(s3: Any, info: StackInfo, bucket: str, tmp_path: Path) -> Iterator[Callable[..., GalleryServer]]:
    """Starts galleries on ``bucket`` (through a ``Recording`` S3 client), stopped after the test."""
    started: list[GalleryServer] = []

    def start(max_original_bytes: int = 5 * 1024**3) -> GalleryServer:
        signed = SignedApi(info.api_url, info.region, Credentials("local", "local"))
        renditions = Renditions(Recording(s3), bucket, tmp_path / f"cache{len(started)}")
        server = GalleryServer(signed, renditions, port=0, max_original_bytes=max_original_bytes)
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.shutdown()
        server.server_close()


def recording(server: GalleryServer) -> Recording:
    s3 = server.renditions.s3
    assert isinstance(s3, Recording)
    return s3


def head(url: str) -> tuple[int, dict[str, str], bytes]:
    return fetch(url, "HEAD")


def original(server: GalleryServer, key: str) -> str:
    return f"{server.url}img/original/{quote(key, safe='')}"


def test_the_probe_knows_the_five_formats_browsers_show_by_their_bytes() -> None:
    for fmt, content_type in SHOWN.items():
        body = encode(fmt)
        assert sniff(body, len(body)) == content_type, fmt
    others = [encode("TIFF"), encode("PPM"), HTML, SVG, b"", b"GIF89a<script>", os.urandom(4096)]
    for name in ("heic/IMG_5195.HEIC", "heic/samplefilehub.heif", "misc/hopper.avif", "misc/hopper.tif"):
        if (FORMATS / name).is_file():
            others.append((FORMATS / name).read_bytes())
    for body in others:
        assert sniff(body, len(body)) is None, body[:16]
    if (FORMATS / "misc/frozenpond.mpo").is_file():  # a camera's multi-picture JPEG is a JPEG
        mpo = (FORMATS / "misc/frozenpond.mpo").read_bytes()
        assert sniff(mpo, len(mpo)) == "image/jpeg"


def test_a_webp_longer_than_the_probe_is_told_by_its_header() -> None:
    webp = encode("WEBP", (700, 700), noise=True)  # lossless noise: larger than the probe
    assert len(webp) > PROBE_BYTES
    assert sniff(webp[:PROBE_BYTES], len(webp)) == "image/webp"
    assert sniff(webp[:PROBE_BYTES], len(webp) + 2) is None  # its RIFF length is not the object's
    big_png = encode("PNG", (700, 700), noise=True)  # the other formats need only their header
    assert sniff(big_png[:PROBE_BYTES], len(big_png)) == "image/png"


def test_originals_are_typed_by_their_bytes_never_by_their_stored_type(
    serve: Callable[..., GalleryServer], s3: Any, bucket: str
) -> None:
    gallery = serve()
    cases = {  # key: (bytes, the type stored with them, the type the gallery must send)
        "a.png": (encode("PNG"), "text/html", "image/png"),
        "b.jpg": (encode("JPEG"), "application/octet-stream", "image/jpeg"),
        "c.webp": (encode("WEBP"), "image/png,text/html", "image/webp"),
        "d.gif": (encode("GIF"), "image/SVG+xml", "image/gif"),
        "e.bmp": (encode("BMP"), "text/javascript", "image/bmp"),
        "f.html": (HTML, "image/png,text/html", None),
        "g.html": (HTML, " image/jpeg , text/html", None),
        "h.svg": (SVG, "image/SVG+xml", None),
        "i.tif": (encode("TIFF"), "image/tiff", None),
        "folder/j k.js": (b"fetch('/api/tags')", "image/png,text/javascript", None),
        "empty": (b"", "image/png", None),
    }
    for key, (body, stored, _) in cases.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=stored)
    for key, (body, _, shown) in cases.items():
        status, headers, sent = fetch(original(gallery, key))
        assert status == 200 and sent == body and headers["Content-Length"] == str(len(body)), key
        assert headers["Content-Type"] == (shown or "application/octet-stream"), key
        assert "sandbox" in headers["Content-Security-Policy"].split("; "), key
        assert headers["X-Content-Type-Options"] == "nosniff", key
        if shown:
            assert "Content-Disposition" not in headers, key
        else:
            name = quote(key.rpartition("/")[2], safe="")
            assert headers["Content-Disposition"] == f"attachment; filename*=UTF-8''{name}", key
        status, same, nothing = head(original(gallery, key))  # HEAD: the same answer without the body
        assert status == 200 and nothing == b""
        for name in ("Content-Type", "Content-Length", "ETag", "Content-Disposition"):
            assert same.get(name) == headers.get(name), (key, name)


def test_every_answer_under_img_is_sandboxed_and_pages_are_not(
    serve: Callable[..., GalleryServer], s3: Any, bucket: str
) -> None:
    gallery = serve(max_original_bytes=100)
    s3.put_object(Bucket=bucket, Key="photo.jpg", Body=encode("JPEG", (400, 300)))
    s3.put_object(Bucket=bucket, Key="notes.txt", Body=b"not a picture")
    grid = f"{gallery.url}img/grid/photo.jpg"
    _, first, _ = fetch(grid)
    answers = {
        "rendition": (fetch(grid), 200),
        "304": (fetch(grid, **{"If-None-Match": first["ETag"]}), 304),
        "no such object": (fetch(f"{gallery.url}img/grid/missing.jpg"), 404),
        "no such rendition": (fetch(f"{gallery.url}img/huge/photo.jpg"), 404),
        "not a picture": (fetch(f"{gallery.url}img/large/notes.txt"), 415),
        "over the cap": (fetch(original(gallery, "photo.jpg")), 413),
        "another site": (fetch(grid, **{"Sec-Fetch-Site": "cross-site"}), 403),
    }
    for name, ((status, headers, _), expected) in answers.items():
        assert status == expected, name
        assert headers["Content-Security-Policy"].endswith("; sandbox"), name
        assert headers["Content-Security-Policy"].startswith("default-src 'self'"), name
        assert headers["X-Content-Type-Options"] == "nosniff", name
    for page in ("", "static/app.js", "api/tags"):
        assert "sandbox" not in fetch(gallery.url + page)[1]["Content-Security-Policy"], page


def test_an_original_over_the_cap_is_refused_without_reading_it(
    serve: Callable[..., GalleryServer], s3: Any, bucket: str
) -> None:
    gallery = serve(max_original_bytes=1024**2)
    s3.put_object(Bucket=bucket, Key="large.png", Body=encode("PNG") + bytes(2 * 1024**2))
    for status, headers, _ in (fetch(original(gallery, "large.png")), head(original(gallery, "large.png"))):
        assert status == 413 and headers["Content-Type"] == "application/json"
    error = json.loads(fetch(original(gallery, "large.png"))[2])["error"]
    assert "over the gallery's cap of 1,048,576 bytes" in error and "--max-original-bytes" in error
    assert recording(gallery).gets == 0  # a HeadObject said it all
    assert build_parser().parse_args(["gallery"]).max_original_bytes == 5 * 1024**3  # the command's default
    assert build_parser().parse_args(["gallery", "--max-original-bytes", "500MiB"]).max_original_bytes == 500 << 20


def test_a_head_request_reads_at_most_the_probe(serve: Callable[..., GalleryServer], s3: Any, bucket: str) -> None:
    gallery = serve()
    size = 8 * 1024**2
    s3.put_object(Bucket=bucket, Key="eight.png", Body=encode("PNG") + bytes(size - len(encode("PNG"))))
    status, headers, _ = head(original(gallery, "eight.png"))
    assert status == 200 and headers["Content-Type"] == "image/png" and headers["Content-Length"] == str(size)
    s3_read = recording(gallery)
    assert s3_read.gets == 1 and s3_read.bytes <= PROBE_BYTES
    assert all(body._raw_stream.closed for body in s3_read.bodies)


def test_a_browser_that_leaves_midway_leaves_no_trace_and_no_s3_connection(
    serve: Callable[..., GalleryServer], s3: Any, bucket: str, capfd: pytest.CaptureFixture[str]
) -> None:
    gallery = serve()
    s3.put_object(Bucket=bucket, Key="long.bmp", Body=encode("BMP") + bytes(48 * 1024**2))
    for _ in range(2):  # twice: leaving after the headers, and after a few MB
        client = socket.create_connection(("127.0.0.1", gallery.port), timeout=10)
        client.sendall(f"GET /img/original/long.bmp HTTP/1.1\r\nHost: 127.0.0.1:{gallery.port}\r\n\r\n".encode())
        received = client.recv(65536)
        assert received.startswith(b"HTTP/1.1 200") and b"Content-Type: image/bmp" in received
        client.close()  # unread bytes: the kernel answers the gallery's next write with a reset
    bodies = recording(gallery).bodies
    deadline = time.monotonic() + 20
    while not all(body._raw_stream.closed for body in bodies) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(bodies) == 2 and all(body._raw_stream.closed for body in bodies)  # S3's connections dropped
    assert all(body._amount_read < 48 * 1024**2 for body in bodies)  # the gallery stopped reading, and closed
    assert fetch(original(gallery, "long.bmp"))[0] == 200  # and the server goes on
    err = capfd.readouterr().err
    assert err == "", err  # no traceback, no line: a browser that leaves is not an error


def peak_rss(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))) * 1024


def test_a_2_gib_original_streams_through_a_gallery_process_in_bounded_memory(
    stack: LocalStack, info: StackInfo, bucket: str, tmp_path: Path
) -> None:
    if not Path("/proc/self/status").is_file():
        pytest.skip("peak RSS is read from /proc/<pid>/status (Linux)")
    # No checksum over the body (botocore would read 2 GiB once more for it); moto stores the bytes.
    s3 = boto3.client(
        "s3", endpoint_url=stack.endpoint, region_name=info.region,
        config=Config(request_checksum_calculation="when_required", response_checksum_validation="when_required"),
    )  # fmt: skip
    body = tmp_path / "big.png"
    with body.open("wb") as f:  # a PNG header, then zeros: sparse, no 2 GiB written to disk here
        f.write(encode("PNG"))
        f.truncate(BIG)
    started = time.monotonic()
    with body.open("rb") as f:
        s3.put_object(Bucket=bucket, Key="big.png", Body=f)
    put_s = time.monotonic() - started
    s3.put_object(Bucket=bucket, Key="small.png", Body=encode("PNG"))
    state = json.loads(stack.write_state(tmp_path / "state.json").read_text())
    (tmp_path / "state.json").write_text(json.dumps({**state, "bucket": bucket}))
    command = [sys.executable, "-m", "cliptag_cli", "gallery", "--local-state", str(tmp_path / "state.json")]
    stderr = (tmp_path / "stderr").open("w")
    proc = subprocess.Popen(
        [*command, "--port", "0", "--cache-dir", str(tmp_path / "cache")],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=stderr, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().split()[3]
        assert fetch(url + "img/original/small.png")[0] == 200  # warm: every module a download uses is loaded
        before = peak_rss(proc.pid)
        started = time.monotonic()
        conn = http.client.HTTPConnection(url.split("/")[2], timeout=60)
        conn.request("GET", "/img/original/big.png")
        resp = conn.getresponse()
        assert resp.status == 200 and resp.headers["Content-Type"] == "image/png"
        received = 0
        while chunk := resp.read(1024**2):
            received += len(chunk)
        conn.close()
        get_s = time.monotonic() - started
        after = peak_rss(proc.pid)
        assert head(url + "img/original/big.png")[1]["Content-Length"] == str(BIG)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        stderr.close()
        s3.delete_object(Bucket=bucket, Key="big.png")  # moto keeps it in a temporary file
    growth = after - before
    print(
        f"\n2 GiB original: put into moto {put_s:.1f} s, through the gallery {get_s:.1f} s "
        f"({BIG / get_s / 1024**2:.0f} MiB/s); gallery peak RSS {before / 1024**2:.1f} -> {after / 1024**2:.1f} MiB "
        f"(+{growth / 1024**2:.1f} MiB, bound {RSS_BOUND // 1024**2} MiB)"
    )
    assert received == BIG
    assert growth < RSS_BOUND, f"peak RSS grew by {growth / 1024**2:.1f} MiB"
    assert (tmp_path / "stderr").read_text() == ""
