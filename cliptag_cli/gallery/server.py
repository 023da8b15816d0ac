"""The gallery's HTTP server, on 127.0.0.1 only: the pages (``static/``), the API passed on signed
(``/api/...``) and the pictures (``/img/<rendition>/<key>``).

It holds the user's credentials, so it answers only its own pages: a request naming another
Host (DNS rebinding) or sent by another site (Fetch Metadata) is refused, and nothing it sends
may run as script except its own files (Content-Security-Policy). Pictures come from the bucket,
whose bytes and metadata anyone with upload rights chooses: every answer under ``/img/`` is also
sandboxed (CSP ``sandbox``), and an original is typed from its bytes, never from its stored
Content-Type (``originals``).
"""

from __future__ import annotations

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.resources import files
from typing import Any
from urllib.parse import quote, unquote

from cliptag_cli.gallery.originals import MAX_BYTES, Original, Originals
from cliptag_cli.gallery.renditions import Renditions
from cliptag_cli.gallery.teaching import GalleryTeacher
from cliptag_cli.gallery.upstream import Answer, SignedApi, error

LOOPBACK = "127.0.0.1"
MAX_TEACH_BYTES = 256 * 1024  # a teaching request: 200 keys of 1 KB at most, and a name
STATIC = files("cliptag_cli.gallery") / "static"
TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
CSP = (
    "default-src 'self'; img-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
# A picture opened as a page runs nothing and has no origin: no script, storage or API of ours.
PICTURE_CSP = f"{CSP}; sandbox"
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Resource-Policy": "same-origin",
}


class GalleryServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        api: SignedApi,
        renditions: Renditions,
        port: int = 8080,
        verbose: bool = False,
        max_original_bytes: int = MAX_BYTES,
        teacher: GalleryTeacher | None = None,
    ) -> None:
        """``max_original_bytes``: larger originals are refused (413) before any byte is read;
        ``teacher``: teaches tags from selected photos (None: the gallery cannot)."""
        super().__init__((LOOPBACK, port), GalleryHandler)
        self.api = api
        self.teacher = teacher
        self.renditions = renditions
        self.originals = Originals(renditions, max_original_bytes)
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

    def do_PUT(self) -> None:
        self._decide(confirm=True)

    def do_DELETE(self) -> None:
        self._decide(confirm=False)

    def do_POST(self) -> None:
        """``/teach``: a tag taught from selected photos (``teaching``). JSON only, so a page of
        another site cannot send it without a CORS preflight this server never answers."""
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0:
            self.close_connection = True
            return self._json(error(400, "a Content-Length is needed"))
        refusal = self._refusal(self.path)
        if refusal is None and self.headers.get("Sec-Fetch-Site") not in (None, "same-origin"):
            refusal = "only the gallery's own pages may teach tags"
        if refusal is None and self.headers.get_content_type() != "application/json":
            refusal = "POST /teach takes application/json"
        if refusal or self.path != "/teach" or length > MAX_TEACH_BYTES:
            self.close_connection = length > 0  # its body is not read
            if refusal:
                return self._json(error(403, refusal))
            if length > MAX_TEACH_BYTES:
                return self._json(error(413, f"a teaching request is at most {MAX_TEACH_BYTES:,} bytes"))
            return self._json(error(404, "POST is only for /teach"))
        body = self.rfile.read(length)
        if self.server.teacher is None:
            return self._json(error(501, "this gallery cannot teach tags"))
        try:
            self._json(self.server.teacher.handle(body))
        except Exception as exc:  # the network: shown to the user, the server goes on
            print(f"gallery: POST /teach: {exc!r}", file=sys.stderr)
            self._json(error(502, f"{type(exc).__name__}: {exc}"))

    def _decide(self, confirm: bool) -> None:
        """Confirm (PUT) or reject (DELETE) a tag: ``/api/images/<key>/tags/<tag>``, passed on
        signed. Only from this gallery's own pages: a browser sends PUT and DELETE to another
        origin only after a CORS preflight this server never answers, and says where a request
        comes from (Sec-Fetch-Site) when it does."""
        self.close_connection = int(self.headers.get("Content-Length") or 0) > 0  # a body is never read
        path = self.path.partition("?")[0]
        refusal = self._refusal(path)
        if refusal is None and self.headers.get("Sec-Fetch-Site") not in (None, "same-origin"):
            refusal = "only the gallery's own pages may change tags"
        if refusal:
            return self._json(error(403, refusal))
        if not path.startswith("/api/"):
            return self._json(error(405, f"{self.command} is only for /api/images/<key>/tags/<tag>"))
        try:
            self._json(self.server.api.decide(path.removeprefix("/api"), confirm))
        except Exception as exc:  # the network: shown to the user, the server goes on
            print(f"gallery: {self.command} {self.path}: {exc!r}", file=sys.stderr)
            self._json(error(502, f"{type(exc).__name__}: {exc}"))

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
        except ConnectionError:  # the browser left before the answer was sent: nobody to tell
            self.close_connection = True
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
        if rendition not in renditions.sizes:
            return self._json(error(404, f"no rendition {rendition!r} (one of {', '.join(renditions.sizes)})"))
        known = self.headers.get("If-None-Match")
        if known and known == renditions.etag(rendition, key):
            return self._send(304, b"", None, {"ETag": known, "Cache-Control": "no-cache"})
        if renditions.sizes[rendition] is None:
            return self._original(rendition, key)
        picture = renditions.get(rendition, key)
        if picture.status != 200:
            return self._json(error(picture.status, picture.reason))
        # Revalidated: the 304 costs a HeadObject.
        self._send(200, picture.body, "image/jpeg", {"ETag": picture.etag, "Cache-Control": "private, no-cache"})

    def _original(self, rendition: str, key: str) -> None:
        """The object's own bytes, typed from them (``originals.sniff``) and streamed: the first
        ``PROBE_BYTES`` were read to decide the type, the rest goes on as S3 sends it."""
        original = self.server.originals.open(rendition, key, whole=self.command != "HEAD")
        try:
            if original.status != 200:
                return self._json(error(original.status, original.reason))
            headers = {"ETag": original.etag, "Cache-Control": "private, no-cache"}
            if not original.inline:  # not a plain image: a download, never a page of this origin
                name = key.rpartition("/")[2] or "original"
                headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote(name, safe='')}"
            self._head(200, original.content_type, headers, original.size)
            if self.command != "HEAD":
                self._stream(original, key)
        finally:
            original.close()  # a body left unread closes its S3 connection instead of leaking it

    def _stream(self, original: Original, key: str) -> None:
        sent, chunks = 0, original.chunks()
        while True:
            try:
                chunk = next(chunks, None)
            except Exception as exc:  # S3 stopped midway: the headers are sent, so the answer ends short
                print(f"gallery: GET {key!r}: S3 stopped after {sent:,} bytes: {exc!r}", file=sys.stderr)
                break
            if chunk is None:
                if sent == original.size:
                    return
                print(f"gallery: GET {key!r}: S3 sent {sent:,} of {original.size:,} bytes", file=sys.stderr)
                break
            try:
                self.wfile.write(chunk)
            except OSError:  # the browser left (a closed tab, a cancelled download): nothing to report
                break
            sent += len(chunk)
        self.close_connection = True  # the length announced was not sent: the connection cannot go on

    def _json(self, answer: Answer) -> None:
        self._send(answer.status, answer.body, answer.content_type, {"Cache-Control": "no-store"})

    def _send(self, status: int, body: bytes, content_type: str | None, headers: dict[str, str]) -> None:
        self._head(status, content_type, headers, None if status == 304 else len(body))  # a 304 has no length
        if self.command != "HEAD" and status != 304:
            self.wfile.write(body)

    def _head(self, status: int, content_type: str | None, headers: dict[str, str], length: int | None) -> None:
        self.send_response(status)
        csp = PICTURE_CSP if self.path.startswith("/img/") else CSP  # errors and 304s of pictures too
        for name, value in {"Content-Security-Policy": csp, **SECURITY_HEADERS, **headers}.items():
            self.send_header(name, value)
        if content_type:
            self.send_header("Content-Type", content_type)
        if length is not None:
            self.send_header("Content-Length", str(length))
        self.end_headers()

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
