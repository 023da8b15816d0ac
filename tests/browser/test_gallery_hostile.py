"""Hostile objects in the bucket, opened in headless Chromium through the gallery: whatever an
uploader writes into an object and its stored Content-Type, nothing of it runs on the gallery's
origin, where it could read the signed API (docs/gallery.md, "Originals").

Each hostile upload tries to leave a mark if it ever runs: ``window.name`` and ``localStorage``
set to ``pwned-...``, the page's title changed, and a call to ``/api/tags?pwned=...`` that the
gallery's API proxy would see. The tests check that no mark is ever left."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

pytest.importorskip("selenium", reason="selenium is not installed (pip install -e '.[dev]')")

from PIL import Image
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from cliptag_cli.gallery.server import GalleryServer
from cliptag_cli.gallery.upstream import Answer
from devstack.stack import StackInfo
from tests.browser.conftest import fetch


def mark(where: str) -> str:
    return (
        f"window.name = 'pwned-{where}'; document.title = 'pwned'; "
        f"try {{ localStorage.setItem('pwned', '{where}'); }} catch (e) {{}} "
        f"fetch('/api/tags?pwned={where}');"
    )


SCRIPT = mark("script").encode()
PAGE = (  # its inline script is refused by the gallery's CSP; the script it loads is the gallery's origin's
    "<!doctype html><html><head><title>pwned</title></head><body><h1 id='pwned'>pwned</h1>"
    f"<script>{mark('page')}</script><script src='/img/original/hostile%2Fevil.js'></script></body></html>"
).encode()
DRAWING = (
    "<svg xmlns='http://www.w3.org/2000/svg' width='200' height='200'>"
    f"<rect id='pwned' width='200' height='200' fill='red'/><script>{mark('svg')}</script>"
    "<script href='/img/original/hostile%2Fevil.js'/></svg>"
).encode()


def png(size: tuple[int, int] = (40, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (20, 120, 200)).save(out, format="PNG")
    return out.getvalue()


def gif_that_is_also_script() -> bytes:
    """A GIF Pillow opens that is also valid JavaScript: ``GIF89a/*<the picture>*/=1; <script>``
    (the logical screen width's two bytes open a comment that the picture's bytes stay inside)."""
    out = io.BytesIO()
    Image.new("P", (1, 1)).save(out, format="GIF")
    body = b"GIF89a/*" + out.getvalue()[8:]
    assert b"*/" not in body
    return body + b"*/=1;" + mark("gif").encode()


# key -> (bytes, the Content-Type stored with them, what the gallery must send)
HOSTILE = {
    "hostile/page.html": (PAGE, "image/png,text/html", "application/octet-stream"),
    "hostile/spaced.html": (PAGE, " image/jpeg , text/html", "application/octet-stream"),
    "hostile/drawing.svg": (DRAWING, "image/SVG+xml", "application/octet-stream"),
    "hostile/evil.js": (SCRIPT, "image/png,text/javascript", "application/octet-stream"),
    "hostile/polyglot.png": (png() + PAGE, "image/png,text/html", "image/png"),  # a picture, then a page
    "hostile/polyglot.gif": (gif_that_is_also_script(), "image/png,text/javascript", "image/gif"),
}
DOCUMENTS = ["hostile/page.html", "hostile/spaced.html", "hostile/drawing.svg"]
SCRIPTS = ["hostile/evil.js", "hostile/polyglot.gif"]


class Calls:
    """The gallery's API proxy, recording every query the browser sends through it."""

    def __init__(self, api: Any) -> None:
        self.api = api
        self.queries: list[str] = []

    def get(self, path: str, query: str = "") -> Answer:
        self.queries.append(f"{path}?{query}")
        answer: Answer = self.api.get(path, query)
        return answer

    def marks(self) -> list[str]:
        return [q for q in self.queries if "pwned" in q]


@pytest.fixture(scope="module")
def hostile(s3: Any, info: StackInfo, gallery: GalleryServer) -> dict[str, bytes]:
    for key, (body, stored, sent) in HOSTILE.items():
        s3.put_object(Bucket=info.bucket, Key=key, Body=body, ContentType=stored)
        status, headers, _ = fetch(original(gallery, key))
        assert status == 200 and headers["Content-Type"] == sent, (key, headers)
    return {key: body for key, (body, _, _) in HOSTILE.items()}


@pytest.fixture
def calls(gallery: GalleryServer, monkeypatch: pytest.MonkeyPatch) -> Calls:
    recorder = Calls(gallery.api)
    monkeypatch.setattr(gallery, "api", recorder)
    return recorder


@pytest.fixture
def downloads(page: WebDriver, tmp_path: Path) -> Iterator[Path]:
    """Downloads saved to a directory of the test's own (Chromium's default in headless: none)."""
    cdp: Any = page
    cdp.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(tmp_path)})
    yield tmp_path
    cdp.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "default"})


def original(gallery: GalleryServer, key: str) -> str:
    return f"{gallery.url}img/original/{quote(key, safe='')}"


def at_the_gallery(page: WebDriver, gallery: GalleryServer, unmarked: bool = True) -> None:
    """The gallery's home page, rendered (``unmarked``: with no mark from an earlier test)."""
    page.get("about:blank")
    page.get(gallery.url + "#/")
    WebDriverWait(page, 30).until(lambda d: d.execute_script("return Number(document.body?.dataset.rendered || 0)"))
    if unmarked:
        page.execute_script("localStorage.clear(); window.name = 'gallery';")


def no_mark_left(page: WebDriver, gallery: GalleryServer, calls: Calls) -> None:
    """Nothing hostile ran: checked on the gallery's origin, where a mark would have been left."""
    time.sleep(0.5)  # what a script would have fetched has arrived by now
    if page.current_url != gallery.url + "#/":  # a picture's page (its own opaque origin) or elsewhere
        at_the_gallery(page, gallery, unmarked=False)
    name, stored, title = page.execute_script("return [window.name, localStorage.getItem('pwned'), document.title]")
    assert not name.startswith("pwned") and stored is None and title != "pwned", (name, stored, title)
    assert not page.find_elements(By.ID, "pwned")
    assert calls.marks() == []


@pytest.mark.parametrize("key", DOCUMENTS)
def test_a_hostile_page_or_drawing_downloads_instead_of_rendering(
    page: WebDriver, gallery: GalleryServer, hostile: dict[str, bytes], calls: Calls, downloads: Path, key: str
) -> None:
    at_the_gallery(page, gallery)
    page.get(original(gallery, key))
    # The navigation turned into a download: the gallery's page is still the document, unchanged.
    shown = page.execute_script("return [location.href, document.contentType, document.documentElement.tagName]")
    assert shown == [gallery.url + "#/", "text/html", "HTML"], f"the upload was opened as a page: {shown}"
    assert page.find_element(By.CSS_SELECTOR, "h1").text != "pwned"
    saved = downloads / key.rpartition("/")[2]
    WebDriverWait(page, 20).until(lambda _: saved.is_file() and saved.read_bytes() == hostile[key])
    no_mark_left(page, gallery, calls)


def test_a_picture_with_a_page_inside_is_shown_as_a_sandboxed_picture(
    page: WebDriver, gallery: GalleryServer, hostile: dict[str, bytes], calls: Calls
) -> None:
    at_the_gallery(page, gallery)
    page.get(original(gallery, "hostile/polyglot.png"))
    shown = page.execute_script(
        "const i = document.images[0]; return [document.contentType, origin, document.images.length, "
        "i && i.complete && i.naturalWidth, document.querySelectorAll('script, h1').length]"
    )
    # Chromium's page for a picture, in an opaque origin (CSP sandbox): no storage, no API of ours.
    assert shown == ["image/png", "null", 1, 40, 0], shown
    no_mark_left(page, gallery, calls)


def test_a_gallery_page_never_runs_an_upload_as_its_script(
    page: WebDriver, gallery: GalleryServer, hostile: dict[str, bytes], calls: Calls
) -> None:
    at_the_gallery(page, gallery)
    page.get_log("browser")  # read and forgotten: what came before
    for key in SCRIPTS:  # what a page rendered from the bucket (or an injection) would include
        outcome = page.execute_async_script(
            "const [src, done] = arguments; const s = document.createElement('script'); s.src = src;"
            "s.onload = () => done('ran'); s.onerror = () => done('refused'); document.head.append(s);",
            "/img/original/" + quote(key, safe=""),
        )
        assert outcome == "refused", key
    no_mark_left(page, gallery, calls)
    refusals = [e["message"] for e in page.get_log("browser") if "Refused to execute script" in e["message"]]
    for key, mime in (("hostile/evil.js", "application/octet-stream"), ("hostile/polyglot.gif", "image/gif")):
        assert any(quote(key, safe="") in m and f"MIME type ('{mime}') is not executable" in m for m in refusals), (
            key,
            refusals,
        )
