"""The gallery's server without a browser: what it refuses, how it signs, the renditions it
sends and the command that starts it (against the local stack, or a recorder of requests)."""

from __future__ import annotations

import http.client
import io
import json
import subprocess
import sys
import threading
import urllib.request
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from PIL import Image

from bench.common import big_jpeg
from cliptag_cli.gallery.measure import CountingS3
from cliptag_cli.gallery.renditions import Renditions
from cliptag_cli.gallery.server import GalleryServer
from cliptag_cli.gallery.upstream import SignedApi, canonical
from cliptag_cli.main import build_parser, main
from devstack.stack import LocalStack
from tests.browser.conftest import fetch
from tests.conftest import ROOT, real_photos


def raw_get(server: GalleryServer, path: str) -> int:
    """A request line sent exactly as written (urllib would resolve the dots)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.putrequest("GET", path, skip_host=True)
    conn.putheader("Host", f"127.0.0.1:{server.port}")
    conn.endheaders()
    status = conn.getresponse().status
    conn.close()
    return status


def test_help_documents_the_local_and_the_deployed_stack(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["gallery", "--help"])
    out = capsys.readouterr().out
    for words in ("make local", "build/local-stack.json", "--stack NAME", "--region", "ApiUrl", "ImagesBucketName"):
        assert words in out
    assert "--port" in out and "--open" in out and "127.0.0.1" in out


def test_it_listens_on_loopback_only(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["gallery", "--host", "0.0.0.0"])
    assert exit_.value.code == 2
    assert "127.0.0.1 only" in capsys.readouterr().err


def test_it_refuses_other_hosts_other_sites_and_what_is_not_an_api_route(gallery: GalleryServer) -> None:
    base = gallery.url
    assert fetch(base)[0] == 200
    assert fetch(f"http://localhost:{gallery.port}/")[0] == 200
    status, _, body = fetch(base, Host="attacker.example")  # DNS rebinding: the name resolves here
    assert status == 403 and b"answers only as" in body
    assert fetch(base + "api/tags", **{"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "cors"})[0] == 403
    assert fetch(base + "img/grid/x.jpg", **{"Sec-Fetch-Site": "same-site", "Sec-Fetch-Mode": "no-cors"})[0] == 403
    assert fetch(base, **{"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"})[0] == 200  # a link to it
    assert fetch(base + "api/tags", **{"Sec-Fetch-Site": "same-origin"})[0] == 200
    assert raw_get(gallery, "/api/../../etc/passwd") == 404
    assert raw_get(gallery, "/api/tags/..%2F..%2Fadmin/images") == 400  # one segment, a bad tag name to the API
    assert raw_get(gallery, "/static/../server.py") == 404
    assert fetch(base + "api/openapi.json")[0] == 404


def test_pages_may_run_only_the_gallery_own_scripts(gallery: GalleryServer) -> None:
    _, headers, body = fetch(gallery.url)
    assert "script-src" not in headers["Content-Security-Policy"]  # default-src 'self' covers scripts
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert b'<script type="module" src="/static/app.js">' in body
    for name in ("app.js", "api.js", "dom.js", "grid.js", "pages.js", "style.css"):
        status, headers, _ = fetch(gallery.url + "static/" + name)
        assert status == 200 and headers["Content-Type"].split(";")[0] in ("text/javascript", "text/css")


def test_canonical_requests_encode_each_segment_and_value_once() -> None:
    assert canonical("/images/photos%2Fa b(1).jpg/tags", "") == "/images/photos%2Fa%20b%281%29.jpg/tags"
    assert canonical("/search", "q=a+dog's+day&limit=5") == "/search?limit=5&q=a%20dog%27s%20day"
    assert canonical("/tags/dog/images", "next_token=ab%3D%3D") == "/tags/dog/images?next_token=ab%3D%3D"
    for refused in ("/tags/../images", "/deployments", "/images/a/b/tags", "/tags//images", "/"):
        assert canonical(refused, "") is None


class Recorder(BaseHTTPRequestHandler):
    seen: ClassVar[list[tuple[str, dict[str, str]]]] = []

    def do_GET(self) -> None:
        Recorder.seen.append((self.path, dict(self.headers.items())))
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_each_call_is_signed_for_execute_api_over_the_bytes_that_arrive(recorder: str) -> None:
    credentials = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "session-token")
    api = SignedApi(recorder + "/v1", "eu-west-1", credentials)
    assert api.get("/images/photos%2Fa b(1).jpg/tags").status == 200
    assert api.get("/search", "q=a+dog's+day&limit=5").status == 200
    for path, headers in Recorder.seen[-2:]:
        auth = headers["Authorization"]
        assert auth.startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
        assert "/eu-west-1/execute-api/aws4_request" in auth
        assert headers["X-Amz-Security-Token"] == "session-token"
        # Recompute the signature from what the server received: the path and query were sent as signed.
        signed = auth.split("SignedHeaders=")[1].split(",")[0].split(";")
        received = {name: value for name, value in headers.items() if name.lower() in signed}
        request = AWSRequest(method="GET", url=recorder + path, headers=received)
        request.context["timestamp"] = headers["X-Amz-Date"]
        signer = SigV4Auth(credentials, "execute-api", "eu-west-1")
        expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
        assert auth.endswith(f"Signature={expected}")
    assert [p for p, _ in Recorder.seen[-2:]] == [
        "/v1/images/photos%2Fa%20b%281%29.jpg/tags",
        "/v1/search?limit=5&q=a%20dog%27s%20day",
    ]


def jpeg(size: tuple[int, int], orientation: int = 1) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    out = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(out, format="JPEG", exif=exif.tobytes())
    return out.getvalue()


def test_renditions_are_small_upright_cached_and_never_stale(s3: Any, tmp_path: Path) -> None:
    bucket = f"gallery-{uuid.uuid4().hex[:8]}"  # not the stack's: nothing here is tagged
    s3.create_bucket(Bucket=bucket)
    counting = CountingS3(s3)
    renditions = Renditions(counting, bucket, tmp_path)
    s3.put_object(Bucket=bucket, Key="camera.jpg", Body=big_jpeg(real_photos(1)[0].read_bytes()))
    grid = renditions.get("grid", "camera.jpg")
    assert grid.status == 200 and Image.open(io.BytesIO(grid.body)).size == (320, 240)
    assert len(grid.body) < 40_000
    assert Image.open(io.BytesIO(renditions.get("large", "camera.jpg").body)).size == (1280, 960)
    gets = counting.gets
    again = renditions.get("grid", "camera.jpg")
    assert again.body == grid.body and counting.gets == gets  # from the disk cache: a HeadObject only
    assert renditions.etag("grid", "camera.jpg") == grid.etag

    s3.put_object(Bucket=bucket, Key="camera.jpg", Body=jpeg((400, 200), orientation=6))  # overwritten
    rotated = renditions.get("grid", "camera.jpg")
    assert Image.open(io.BytesIO(rotated.body)).size == (160, 320)  # upright: EXIF orientation applied
    assert rotated.etag != grid.etag

    s3.put_object(Bucket=bucket, Key="notes.jpg", Body=b"not a picture", ContentType="text/html")
    assert renditions.get("grid", "notes.jpg").status == 415
    assert renditions.get("grid", "missing.jpg").status == 404
    assert renditions.get("huge", "camera.jpg").status == 404


def test_originals_that_are_not_pictures_are_never_shown_inline(
    gallery: GalleryServer, s3: Any, stack: LocalStack
) -> None:
    assert stack.info is not None
    key = f"uploads/{uuid.uuid4().hex[:8]}.html"
    s3.put_object(Bucket=stack.info.bucket, Key=key, Body=b"<script>alert(1)</script>", ContentType="text/html")
    status, headers, _ = fetch(gallery.url + "img/original/" + urllib.request.quote(key, safe=""))
    assert status == 200 and headers["Content-Type"] == "application/octet-stream"
    assert headers["Content-Disposition"].split(";")[0] == "attachment"
    assert "sandbox" in headers["Content-Security-Policy"]


def test_a_picture_unchanged_since_the_browser_saw_it_is_a_304(gallery: GalleryServer, photos: dict[str, Any]) -> None:
    url = gallery.url + "img/grid/" + urllib.request.quote(next(iter(photos)), safe="")
    status, headers, body = fetch(url)
    assert status == 200 and headers["Content-Type"] == "image/jpeg" and body
    assert fetch(url, **{"If-None-Match": headers["ETag"]})[0] == 304


def test_the_command_serves_the_local_stack_from_its_state_file(stack: LocalStack, tmp_path: Path) -> None:
    state = stack.write_state(tmp_path / "local-stack.json")
    command = [sys.executable, "-m", "cliptag_cli", "gallery", "--local-state", str(state), "--port", "0"]
    proc = subprocess.Popen(
        [*command, "--cache-dir", str(tmp_path / "cache")], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("cliptag gallery on http://127.0.0.1:"), first
        url = first.split()[3]
        status, _, body = fetch(url + "api/tags")
        assert status == 200 and json.loads(body)["count"] > 0
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_the_command_says_when_the_api_does_not_answer(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = {
        "aws_endpoint_url": "http://127.0.0.1:9",
        "region": "us-east-1",
        "api_url": "http://127.0.0.1:9",  # discard: nothing listens
        "bucket": "b",
        "table": "t",
        "queue_url": "q",
    }
    (tmp_path / "state.json").write_text(json.dumps(state))
    assert main(["gallery", "--local-state", str(tmp_path / "state.json"), "--port", "0"]) == 1
    err = capsys.readouterr().err
    assert "did not answer" in err and "make local" in err
