"""The gallery against the local stack, in headless Chromium.

This package runs its own local stack (moto in its own process, the poller and the API server
here, with the integration tests' parameters), torn down when the package is done: the
integration tests' session stack (``tests/integration/conftest.py``) then starts afresh, since
two stacks cannot share one in-process moto. With the stack fixtures in ``tests/conftest.py``
both would share one. Tests that need the browser skip, saying why, where it is missing.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from botocore.credentials import Credentials

from cliptag_cli.gallery import chromium
from cliptag_cli.gallery.renditions import Renditions
from cliptag_cli.gallery.server import GalleryServer
from cliptag_cli.gallery.teaching import GalleryTeacher
from cliptag_cli.gallery.upstream import SignedApi
from cliptag_cli.target import Target
from devstack.stack import LocalStack, StackInfo
from tests.conftest import real_photos
from tests.integration.conftest import TEST_PARAMETERS, Api

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

SCREENSHOTS = os.environ.get("CLIPTAG_SCREENSHOTS")  # a directory: `make screenshots` sets docs/screenshots
DESKTOP = (1280, 900)
PHONE = (375, 800)
CAMERA = "photos/camera 12mp.jpg"  # 4000 x 3000


def fetch(url: str, method: str = "GET", **headers: str) -> tuple[int, dict[str, str], bytes]:
    """A request without a browser: (status, headers, body), errors included."""
    request = urllib.request.Request(url, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


@pytest.fixture(scope="package")
def stack(model_dir: Path) -> Iterator[LocalStack]:
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    with LocalStack(model_dir, api_port=0, parameters=TEST_PARAMETERS, moto_process=True) as local:
        yield local


@pytest.fixture(scope="package")
def info(stack: LocalStack) -> StackInfo:
    assert stack.info is not None
    return stack.info


@pytest.fixture(scope="package")
def s3(stack: LocalStack) -> Any:
    return stack.client("s3")


@pytest.fixture(scope="package")
def api(info: StackInfo) -> Api:
    return Api(info.api_url)


@pytest.fixture(scope="package")
def gallery(
    stack: LocalStack, info: StackInfo, s3: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GalleryServer]:
    signed = SignedApi(info.api_url, info.region, Credentials("local", "local"))
    renditions = Renditions(s3, info.bucket, tmp_path_factory.mktemp("renditions"))
    state = stack.write_state(tmp_path_factory.mktemp("state") / "stack.json")
    teacher = GalleryTeacher(Target.local(state), settle_s=1)
    server = GalleryServer(signed, renditions, port=0, teacher=teacher)
    server.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="package")
def photos(s3: Any, info: StackInfo, api: Api) -> dict[str, dict[str, Any]]:
    """Real photos in the bucket, tagged: key -> record. Keys with a space and a slash (both
    travel encoded); one 12 MP camera-size JPEG, which the pages must never show at full size."""
    from bench.common import big_jpeg

    originals = real_photos(12)
    bodies = {f"photos/coco {i:02d}.jpg": p.read_bytes() for i, p in enumerate(originals)}
    bodies[CAMERA] = big_jpeg(originals[0].read_bytes())
    for key, body in bodies.items():
        s3.put_object(Bucket=info.bucket, Key=key, Body=body)
    return {key: api.wait(key, lambda r: r["status"] == "tagged") for key in bodies}


@pytest.fixture(scope="package")
def browser() -> Iterator[WebDriver]:
    reason = chromium.missing()
    if reason:
        pytest.skip(f"no headless Chromium: {reason}")
    with chromium.chromium(*DESKTOP) as driver:
        yield driver


@pytest.fixture
def page(browser: WebDriver) -> WebDriver:
    """The browser at desktop size, whatever the test before it set."""
    chromium.viewport(browser, *DESKTOP)
    return browser


@pytest.fixture
def shot(page: WebDriver) -> Callable[..., None]:
    """Save a screenshot to $CLIPTAG_SCREENSHOTS/<name>.png when it is set (``make screenshots``)."""

    def save(name: str, full_page: bool = False) -> None:
        if SCREENSHOTS:
            chromium.screenshot(page, Path(SCREENSHOTS) / f"{name}.png", full_page)

    return save
