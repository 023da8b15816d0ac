"""CORS is off unless CorsAllowOrigin is set; then preflights and answers name that origin only."""

from __future__ import annotations

import importlib
import os
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from cliptag import wiring

ORIGIN = "https://photos.example.com"


def _request(url: str, method: str = "GET") -> tuple[int, dict[str, str]]:
    headers = {"Origin": ORIGIN}
    if method == "OPTIONS":
        headers |= {"Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization"}
    request = urllib.request.Request(url, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}
    except urllib.error.HTTPError as err:
        return err.code, {k.lower(): v for k, v in err.headers.items()}


def _reload_api() -> None:
    """The API module reads CORS_ALLOW_ORIGIN at import, like a Lambda container at cold start."""
    import handlers.api

    wiring.settings.cache_clear()
    importlib.reload(handlers.api)


@pytest.fixture
def cors_on(stack: object) -> Iterator[None]:
    os.environ["CORS_ALLOW_ORIGIN"] = ORIGIN
    _reload_api()
    yield
    os.environ.pop("CORS_ALLOW_ORIGIN")
    _reload_api()


def test_cors_is_off_by_default(info):
    status, headers = _request(f"{info.api_url}/tags/dog/images", "OPTIONS")
    assert status == 404 and "access-control-allow-origin" not in headers
    status, headers = _request(f"{info.api_url}/tags")
    assert status == 200 and "access-control-allow-origin" not in headers


def test_a_configured_origin_gets_preflights_and_headers(info, cors_on):
    for path in ("/tags/dog/images", "/tags", "/images/some%2Fkey.jpg/tags"):
        status, headers = _request(f"{info.api_url}{path}", "OPTIONS")
        assert status == 204, path
        assert headers["access-control-allow-origin"] == ORIGIN
        assert "authorization" in headers["access-control-allow-headers"].lower()
    status, headers = _request(f"{info.api_url}/tags")
    assert status == 200 and headers["access-control-allow-origin"] == ORIGIN
