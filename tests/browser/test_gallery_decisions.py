"""People's decisions and refined searches in the gallery, in headless Chromium against the local
stack (docs/gallery.md, docs/corrections.md)."""

from __future__ import annotations

from collections import Counter
from typing import Any
from urllib.parse import quote

import pytest

pytest.importorskip("selenium", reason="selenium is not installed (pip install -e '.[dev]')")

from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from cliptag_cli.gallery.server import GalleryServer
from devstack.stack import StackInfo
from tests.browser.conftest import CAMERA
from tests.browser.test_gallery import Shot, cards, text, then, visit
from tests.conftest import real_photos
from tests.integration.conftest import Api


def test_a_person_rejects_and_confirms_tags_on_the_image_page(
    page: WebDriver, gallery: GalleryServer, info: StackInfo, s3: Any, api: Api, shot: Shot
) -> None:
    """✕ rejects a tag and ✓ (or the box, for a tag the model did not give) confirms one: the page
    shows the decision once the tagger has applied it, and the tag's page lists the image first."""
    key = "decided/photo.jpg"
    s3.put_object(Bucket=info.bucket, Key=key, Body=real_photos(1)[0].read_bytes() + b"decided in the gallery")
    record = api.wait(key, lambda r: r["status"] == "tagged")
    given = [t["tag"] for t in record["tags"]]
    missing = next(t["name"] for t in api.get("/tags")[1]["tags"] if t["name"] not in given)
    try:
        visit(page, gallery, f"#/image/{quote(key, safe='')}")
        page.find_element(
            By.CSS_SELECTOR, f'.tags-decided li[data-tag="{given[0]}"] button[aria-label^="Reject"]'
        ).click()
        WebDriverWait(page, 30).until(lambda d: text(d, ".decision-status").startswith(f"Rejected “{given[0]}”."))
        assert given[0] not in [
            li.get_attribute("data-tag") for li in page.find_elements(By.CSS_SELECTOR, ".tags-decided li")
        ]
        box = page.find_element(By.CSS_SELECTOR, ".add-tag input")
        box.send_keys(missing, Keys.ENTER)
        WebDriverWait(page, 30).until(lambda d: text(d, ".decision-status").startswith(f"Confirmed “{missing}”."))
        first = page.find_element(By.CSS_SELECTOR, ".tags-decided li")
        assert first.get_attribute("data-tag") == missing and first.get_attribute("data-source") == "person"
        assert "✓ confirmed" in first.text
        shot("decided", full_page=True)
        visit(page, gallery, f"#/tag/{quote(missing)}")
        card = page.find_element(By.CSS_SELECTOR, ".grid li:first-child .card")
        assert card.get_attribute("data-key") == key and "✓ confirmed" in card.text
    finally:  # a confirmed image would lead the pages the other tests read
        s3.delete_object(Bucket=info.bucket, Key=key)
        api.wait_gone(key)


def test_a_search_is_refined_with_chips_and_an_image_plus_words(
    page: WebDriver, gallery: GalleryServer, photos: dict[str, Any], api: Api
) -> None:
    """Require a tag, exclude one, remove a chip, and "more like this" from an image's page: the
    address carries each refinement and the results obey it (checked against the records)."""
    tags = {key: {t["tag"] for t in record["tags"]} for key, record in photos.items()}
    wanted = Counter(t for held in tags.values() for t in held).most_common(1)[0][0]
    with_wanted = [held for held in tags.values() if wanted in held]
    excluded = next(
        t
        for held in with_wanted
        for t in sorted(held)
        if t != wanted and sum(t in h for h in with_wanted) < len(with_wanted)
    )
    visit(page, gallery, "#/search?q=a%20photo")

    def refine(tag: str, action: str) -> None:
        box = page.find_element(By.CSS_SELECTOR, ".refine-tags input")
        box.clear()
        box.send_keys(tag)
        if action == "tag":  # Enter requires, as the first button does
            then(page, lambda: box.send_keys(Keys.ENTER))
        else:
            then(page, page.find_element(By.CSS_SELECTOR, f'.refine-tags button[data-action="{action}"]').click)

    refine(wanted, "tag")
    refine(excluded, "not_tag")
    assert "tag=" in page.current_url and "not_tag=" in page.current_url
    chips = [
        (c.get_attribute("data-name"), c.get_attribute("data-value"))
        for c in page.find_elements(By.CSS_SELECTOR, ".chip")
    ]
    assert chips == [("tag", wanted), ("not_tag", excluded)]
    shown = {key for key, _ in cards(page)} & set(photos)  # the package's photos: their records are known
    assert shown == {k for k, held in tags.items() if wanted in held and excluded not in held}
    then(page, page.find_element(By.CSS_SELECTOR, '.chip[data-name="not_tag"] .chip-remove').click)
    assert "not_tag" not in page.current_url
    assert {key for key, _ in cards(page)} & set(photos) == {k for k, held in tags.items() if wanted in held}

    visit(page, gallery, f"#/image/{quote(CAMERA, safe='')}")
    page.find_element(By.CSS_SELECTOR, ".like-this input").send_keys("at night")
    then(page, page.find_element(By.CSS_SELECTOR, ".like-this button").click)
    assert "like=" in page.current_url and text(page, "h1").startswith("Search at night like")
    assert CAMERA not in {key for key, _ in cards(page)}
