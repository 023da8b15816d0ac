"""Teaching a tag from the gallery, in headless Chromium against the local stack: photos picked on
search pages, "Check" shows what to expect, "Teach" keeps the tag and the library is re-tagged
(docs/corrections.md#teaching-a-tag, docs/gallery.md)."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote

import pytest

pytest.importorskip("selenium", reason="selenium is not installed (pip install -e '.[dev]')")

from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from cliptag_cli.gallery.server import GalleryServer
from devstack.stack import StackInfo
from tests.browser.test_gallery import Shot, text, visit
from tests.conftest import real_photos
from tests.integration.conftest import Api
from tests.integration.test_teach import copies_of

NAME = "gallery harbour"


def tagged_so_far(outcome: str) -> int:
    found = re.search(r"(\d+)\+? image\(s\) have it so far", outcome)
    return int(found.group(1)) if found else 0


def pick(page: WebDriver, key: str) -> None:
    button = page.find_element(By.CSS_SELECTOR, f'button.pick[data-key="{key}"]')
    button.click()
    assert button.get_attribute("aria-pressed") == "true"


def test_photos_picked_in_the_gallery_teach_a_tag_that_finds_another_copy(
    page: WebDriver, gallery: GalleryServer, info: StackInfo, s3: Any, api: Api, photos: Any, shot: Shot
) -> None:
    photos_here = real_photos(128)
    if len(photos_here) < 128:
        pytest.skip("needs the 128 COCO photos of ../shared/data")
    copies = [f"teach/harbour {i}.jpg" for i in range(4)]
    # A photo no other test of the gallery uploads: only these copies show it.
    for key, data in zip(copies, copies_of(photos_here[-2].read_bytes()), strict=True):
        s3.put_object(Bucket=info.bucket, Key=key, Body=data)
    for key in copies:
        api.wait(key, lambda r: r["status"] == "tagged")
    try:
        visit(page, gallery, f"#/search?like={quote(copies[0], safe='')}")
        pick(page, copies[1])
        pick(page, copies[2])
        visit(page, gallery, f"#/search?like={quote(copies[3], safe='')}")  # the picks are kept for the visit
        pick(page, copies[0])
        assert text(page, "#selection span") == "3 selected"
        page.find_element(By.CSS_SELECTOR, "#selection a").click()
        WebDriverWait(page, 10).until(lambda d: d.find_elements(By.ID, "teach-name"))
        assert {c.get_attribute("data-key") for c in page.find_elements(By.CSS_SELECTOR, "main .card")} == set(
            copies[:3]
        )
        page.find_element(By.ID, "teach-name").send_keys(NAME)
        page.find_element(By.ID, "teach-category").send_keys("places")
        page.find_element(By.CSS_SELECTOR, "button.check").click()
        WebDriverWait(page, 30).until(lambda d: "Expected recall" in text(d, ".teach-outcome"))
        assert text(page, ".lesson-figures").startswith("Expected recall 100%, precision 100%")
        assert api.get(f"/tags/{quote(NAME)}/images")[0] == 404  # checked, not kept
        page.find_element(By.CSS_SELECTOR, ".teach-form button[type=submit]").click()
        WebDriverWait(page, 60).until(lambda d: tagged_so_far(text(d, ".teach-outcome")) >= 3)  # the examples
        assert not page.find_element(By.ID, "selection").is_displayed()  # the picks are spent
        shot("teach", full_page=True)
        record = api.wait(copies[3], lambda r: any(t["tag"] == NAME for t in r["tags"]), timeout=60)
        assert [t["source"] for t in record["tags"] if t["tag"] == NAME] == ["examples"]
        assert not any(NAME in [t["tag"] for t in r["tags"]] for r in photos.values())  # none of the others
        visit(page, gallery, f"#/tag/{quote(NAME)}")
        WebDriverWait(page, 30).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "main .card")) >= 4)
        assert "taught" in page.find_element(By.CSS_SELECTOR, "main .card").text
    finally:
        for key in copies:
            s3.delete_object(Bucket=info.bucket, Key=key)


def post(gallery: GalleryServer, body: bytes, **headers: str) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(gallery.url + "teach", data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def test_only_the_gallerys_own_pages_may_teach(gallery: GalleryServer) -> None:
    """Another site's page could POST a form here: it is refused by where it comes from and by
    its type, before anything is read; bad requests say what is wrong."""
    body = json.dumps({"name": "x", "examples": ["a", "b"]}).encode()
    json_type = {"Content-Type": "application/json"}
    assert post(gallery, body, **json_type, **{"Sec-Fetch-Site": "cross-site"})[0] == 403
    status, answer = post(gallery, body, **{"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 403 and "application/json" in answer["error"]
    assert post(gallery, b"{", **json_type)[0] == 400
    status, answer = post(gallery, json.dumps({"name": "x", "examples": "a"}).encode(), **json_type)
    assert status == 400 and "list of object keys" in answer["error"]
    status, answer = post(gallery, json.dumps({"name": "x/y", "examples": ["a", "b"]}).encode(), **json_type)
    assert status == 400 and "cannot be a tag's name" in answer["error"]
