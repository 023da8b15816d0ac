"""The gallery's HTTP server, on 127.0.0.1 only: the pages (``static/``), the API passed on signed
(``/api/...``) and the pictures (``/img/<rendition>/<key>``).

It holds the user's credentials, so it answers only its own pages: a request naming another
Host (DNS rebinding) or sent by another site (Fetch Metadata) is refused, and nothing it sends
may run as script except its own files (Content-Security-Policy).
"""

from __future__ import annotations

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.resources import files
from typing import Any
from urllib.parse import unquote

from cliptag_cli.gallery.renditions import ORIGINAL, Renditions
from cliptag_cli.gallery.upstream import Answer, SignedApi, error

LOOPBACK = "127.0.0.1"
STATIC = files("cliptag_cli.gallery") / "static"
TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Resource-Policy": "same-origin",
}


class GalleryServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, api: SignedApi, renditions: Renditions, port: int = 8080, verbose: bool = False) -> None:
        super().__init__((LOOPBACK, port), GalleryHandler)
        self.api = api
        self.renditions = renditions
        self.verbose = verbose
        self.port = int(self.server_address[1])
        self.hosts = {f"{LOOPBACK}:{self.port}", f"localhost:{self.port}"}
        self.static = {f.name: f.read_bytes() for f in STATIC.iterdir() if f.name.rpartition(".")[1]}

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}/"

    def start(self) -> threading.Thread:
        """Serve from a daemon thread (tests, the measure); ``shutdown()`` stops it."""
        thread = threading.Thread(target=self.serve_forever, name="gallery", daemon=True)
        thread.start()
        return thread


class GalleryHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: a grid is a hundred requests
    server: GalleryServer

    def do_GET(self) -> None:
        self._route()

    def do_HEAD(self) -> None:
        self._route()

    def _route(self) -> None:
        path, _, query = self.path.partition("?")
        refusal = self._refusal(path)
        if refusal:
            return self._json(error(403, refusal))
        try:
            if path == "/":
                self._static("index.html")
            elif path.startswith("/static/"):
                self._static(path.removeprefix("/static/"))
            elif path.startswith("/api/"):
                self._json(self.server.api.get(path.removeprefix("/api"), query))
            elif path.startswith("/img/"):
                rendition, _, key = path.removeprefix("/img/").partition("/")
                self._picture(rendition, unquote(key))
            else:
                self._json(error(404, f"no page {path}"))
        except Exception as exc:  # S3 or the network: shown to the user, the server goes on
            print(f"gallery: {self.command} {self.path}: {exc!r}", file=sys.stderr)
            self._json(error(502, f"{type(exc).__name__}: {exc}"))

    def _refusal(self, path: str) -> str | None:
        if self.headers.get("Host") not in self.server.hosts:
            return f"this gallery answers only as {self.server.url}"
        site = self.headers.get("Sec-Fetch-Site")  # set by browsers; absent from scripts like curl
        # Another site may link to the home page; it may not read, embed or probe anything else.
        link = path == "/" and self.headers.get("Sec-Fetch-Mode") == "navigate"
        if site not in (None, "same-origin", "none") and not link:
            return f"{site} request refused: open {self.server.url} directly"
        return None

    def _static(self, name: str) -> None:
        body = self.server.static.get(name)
        if body is None:
            return self._json(error(404, f"no file {name}"))
        content_type = TYPES.get("." + name.rpartition(".")[2], "application/octet-stream")
        self._send(200, body, f"{content_type}; charset=utf-8", {"Cache-Control": "no-cache"})

    def _picture(self, rendition: str, key: str) -> None:
        renditions = self.server.renditions
        known = self.headers.get("If-None-Match")
        if known and known == renditions.etag(rendition, key):
            return self._send(304, b"", None, {"ETag": known, "Cache-Control": "no-cache"})
        picture = renditions.get(rendition, key)
        if picture.status != 200:
            return self._json(error(picture.status, picture.reason))
        headers = {"ETag": picture.etag, "Cache-Control": "private, no-cache"}  # revalidated: a 304 is a HEAD
        content_type = picture.content_type
        if rendition == ORIGINAL and (not content_type.startswith("image/") or "svg" in content_type):
            # The bucket's bytes are not ours: nothing but a plain image is shown inline from this origin.
            content_type = "application/octet-stream"
            headers["Content-Disposition"] = "attachment"
        self._send(200, picture.body, content_type, headers)

    def _json(self, answer: Answer) -> None:
        self._send(answer.status, answer.body, answer.content_type, {"Cache-Control": "no-store"})

    def _send(self, status: int, body: bytes, content_type: str | None, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in {**SECURITY_HEADERS, **headers}.items():
            self.send_header(name, value)
        if content_type:
            self.send_header("Content-Type", content_type)
        if status != 304:  # a 304 has no body, and no length to announce
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and status != 304:
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            super().log_message(format, *args)


def describe(answer: Answer) -> str:
    """An API answer's error message, for the command's start-up check."""
    try:
        body = json.loads(answer.body)
    except ValueError:
        return answer.body[:200].decode("utf-8", "replace")
    return str(body.get("error") or body.get("message") or body)
