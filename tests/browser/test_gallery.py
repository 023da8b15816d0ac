"""``cliptag gallery`` in headless Chromium against the local stack, with real photos: what a
user sees and does, page by page (docs/gallery.md)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pytest

pytest.importorskip("selenium", reason="selenium is not installed (pip install -e '.[dev]')")

from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from bench.common import fresh
from cliptag_cli.gallery import chromium
from cliptag_cli.gallery.server import GalleryServer
from devstack.stack import StackInfo
from tests.browser.conftest import CAMERA, PHONE
from tests.conftest import real_photos
from tests.integration.conftest import Api

Shot = Callable[..., None]


def rendered(driver: WebDriver) -> int:
    return int(driver.execute_script("return Number(document.body?.dataset.rendered || 0)"))


def wait_rendered(driver: WebDriver, at_least: int = 1) -> None:
    WebDriverWait(driver, 30).until(lambda d: rendered(d) >= at_least)


def visit(driver: WebDriver, gallery: GalleryServer, route: str) -> None:
    """A fresh load of ``route`` (a new document, so nothing of the last page is waited on)."""
    driver.get("about:blank")
    driver.get(gallery.url + route)
    wait_rendered(driver)


def then(driver: WebDriver, action: Callable[[], Any]) -> None:
    """``action`` (a click, a key) and the page it leads to, rendered."""
    before = rendered(driver)
    action()
    wait_rendered(driver, before + 1)


def cards(driver: WebDriver, grid: str = "main .grid") -> list[tuple[str, float]]:
    return [
        (key, float(score))
        for key, score in driver.execute_script(
            "return [...document.querySelectorAll(arguments[0] + ' .card')]"
            ".map(c => [c.dataset.key, c.querySelector('.score')?.dataset.score ?? 'nan'])",
            grid,
        )
    ]


def pictures_loaded(driver: WebDriver) -> list[list[int]]:
    """Each grid picture's natural size, once every one of them has loaded (those out of view too:
    lazy loading would otherwise wait for a scroll)."""
    driver.execute_script("document.querySelectorAll('img[loading=lazy]').forEach(i => { i.loading = 'eager'; })")
    script = (
        "return [...document.querySelectorAll('.grid img')]"
        ".map(i => i.complete ? [i.naturalWidth, i.naturalHeight] : null)"
    )
    WebDriverWait(driver, 30).until(lambda d: None not in d.execute_script(script))
    sizes: list[list[int]] = driver.execute_script(script)
    return sizes


def text(driver: WebDriver, css: str) -> str:
    return str(driver.find_element(By.CSS_SELECTOR, css).text)


def top_tag(record: dict[str, Any]) -> str:
    return str(record["tags"][0]["tag"])


def test_a_tag_page_shows_its_images_best_first_in_thumbnails(
    page: WebDriver, gallery: GalleryServer, photos: dict[str, Any], api: Api, shot: Shot
) -> None:
    tag = top_tag(photos[CAMERA])
    visit(page, gallery, f"#/tag/{quote(tag)}")
    shown = cards(page)
    assert [key for key, _ in shown] == api.all_keys_with_tag(tag)  # all of them: fewer than a page
    scores = [score for _, score in shown]
    assert scores == sorted(scores, reverse=True)
    assert CAMERA in dict(shown)
    sizes = pictures_loaded(page)
    assert sizes and all(0 < max(w, h) <= 320 for w, h in sizes), sizes  # never the 4000 px original
    sent = page.execute_script(
        "return performance.getEntriesByType('resource').filter(e => e.name.includes('/img/grid/'))"
        ".map(e => e.encodedBodySize)"
    )
    assert len(sent) == len(shown) and max(sent) < 60_000, sent
    assert text(page, "h1") == f"Tag {tag}"
    shot("tag")


def test_continuous_scrolling_walks_every_page_once_in_order(
    page: WebDriver, gallery: GalleryServer, photos: dict[str, Any], api: Api
) -> None:
    tag, count = Counter(t["tag"] for r in photos.values() for t in r["tags"]).most_common(1)[0]
    assert count > 3, "the photos share too few tags to need more than one page of 3"
    page.set_window_size(1280, 500)
    try:
        visit(page, gallery, f"#/tag/{quote(tag)}?limit=3")
        end = WebDriverWait(page, 30).until(
            lambda d: d.execute_script("scrollTo(0, document.body.scrollHeight); return document.querySelector('.end')")
        )
        assert "all shown" in end.text
    finally:
        page.set_window_size(1280, 900)
    keys = [key for key, _ in cards(page)]
    assert keys == api.all_keys_with_tag(tag) and len(keys) == count


def test_clicking_an_image_opens_its_page_with_its_tags(
    page: WebDriver, gallery: GalleryServer, photos: dict[str, Any], shot: Shot
) -> None:
    record = photos[CAMERA]
    visit(page, gallery, f"#/tag/{quote(top_tag(record))}")
    link = page.find_element(By.CSS_SELECTOR, f'.card[data-key="{CAMERA}"]')
    then(page, link.click)
    assert text(page, "h1") == CAMERA
    shown = page.execute_script(
        "return [...document.querySelectorAll('.tags-decided li')]"
        ".map(li => li.querySelector('a').textContent + ' ' + li.querySelector('.score').textContent)"
    )
    assert shown == [f"{t['tag']} {t['score']:.3f}" for t in record["tags"]]
    categories = page.find_elements(By.CSS_SELECTOR, ".facts section:last-of-type .scores a")
    assert [a.text for a in categories] == [c["category"] for c in record["categories"]]
    large = page.execute_script("const i = document.querySelector('img.large'); return i.complete && i.naturalWidth")
    assert large == 1280  # the large rendition of a 4000 x 3000 photo, not the original
    assert "does not look for near-duplicates" in text(page, "main")  # NearDuplicates is Off locally
    similar = {key for key, _ in cards(page, "main section .grid")}
    assert similar and similar <= set(photos) - {CAMERA}
    assert not page.find_elements(By.CSS_SELECTOR, ".error")
    shot("image", full_page=True)


def test_the_search_box_finds_images_by_meaning(
    page: WebDriver, gallery: GalleryServer, photos: dict[str, Any], shot: Shot
) -> None:
    visit(page, gallery, "#/")
    search = page.find_element(By.ID, "q")
    search.send_keys("a dog running on the beach")
    then(page, lambda: search.send_keys(Keys.ENTER))
    assert page.execute_script("return location.hash") == "#/search?q=a%20dog%20running%20on%20the%20beach"
    found = cards(page)
    assert found and {key for key, _ in found} <= set(photos)
    scores = [score for _, score in found]
    assert scores == sorted(scores, reverse=True)
    assert "most similar first" in text(page, "main .meta")
    shot("search")


def test_a_deleted_image_disappears_from_its_tag_page(
    page: WebDriver, gallery: GalleryServer, photos: dict[str, Any], s3: Any, info: StackInfo, api: Api
) -> None:
    key = "photos/to be deleted.jpg"
    s3.put_object(Bucket=info.bucket, Key=key, Body=fresh(real_photos(3)[2].read_bytes()))
    tag = top_tag(api.wait(key, lambda r: r["status"] == "tagged"))
    visit(page, gallery, f"#/tag/{quote(tag)}")
    assert key in dict(cards(page))
    s3.delete_object(Bucket=info.bucket, Key=key)
    api.wait_gone(key)
    page.refresh()
    wait_rendered(page)
    assert key not in dict(cards(page))
    assert cards(page), "the tag's other images are still listed"


def test_a_failed_image_is_listed_with_its_reason(
    page: WebDriver, gallery: GalleryServer, photos: dict[str, Any], s3: Any, info: StackInfo, api: Api, shot: Shot
) -> None:
    key = "uploads/notes from the meeting.jpg"
    s3.put_object(Bucket=info.bucket, Key=key, Body=b"these bytes are not a picture")
    api.wait(key, lambda r: r["status"] == "failed")
    visit(page, gallery, "#/failed")
    entry = next(li for li in page.find_elements(By.CSS_SELECTOR, ".failures li") if key in li.text)
    assert "not a recognised image format" in entry.find_element(By.CSS_SELECTOR, ".reason").text
    shot("failed")
    then(page, entry.find_element(By.TAG_NAME, "a").click)
    assert text(page, "h1") == key
    assert "not a recognised image format" in text(page, ".failure")


def test_an_unknown_tag_shows_the_error_and_its_suggestions_as_links(
    page: WebDriver, gallery: GalleryServer, photos: dict[str, Any], shot: Shot
) -> None:
    visit(page, gallery, "#/tag/dgo")
    assert "unknown tag 'dgo'" in text(page, ".error[role=alert]")
    shot("unknown-tag")
    suggestion = page.find_element(By.LINK_TEXT, "dog")
    then(page, suggestion.click)
    assert text(page, "h1") == "Tag dog"
    assert not page.find_elements(By.CSS_SELECTOR, ".error")


def test_home_lists_the_vocabulary_by_category_with_links(
    page: WebDriver, gallery: GalleryServer, photos: dict[str, Any], shot: Shot
) -> None:
    visit(page, gallery, "#/")
    categories = page.find_elements(By.CSS_SELECTOR, ".category h2 a")
    assert len(categories) > 10
    assert all(a.get_attribute("href").split("#")[1].startswith("/category/") for a in categories)
    assert "not shown" in text(page, "main .note")  # per-tag counts: left out, and why
    shot("home")
    page.find_element(By.ID, "filter").send_keys("dog")
    dog = page.find_element(By.CSS_SELECTOR, 'a[href="#/tag/dog"]')
    assert dog.is_displayed()
    shot("home-filtered")
    then(page, dog.click)
    assert text(page, "h1") == "Tag dog"
    record = photos[CAMERA]
    visit(page, gallery, f"#/category/{quote(record['categories'][0]['category'])}")
    assert CAMERA in dict(cards(page))


def test_no_horizontal_scroll_at_phone_width_nor_errors_in_the_console(
    page: WebDriver, gallery: GalleryServer, photos: dict[str, Any], shot: Shot
) -> None:
    page.get_log("browser")  # read and forgotten: what the tests before logged
    chromium.viewport(page, *PHONE, mobile=True)
    routes = {
        "home": "#/",
        "tag": f"#/tag/{quote(top_tag(photos[CAMERA]))}",
        "image": f"#/image/{quote(CAMERA, safe='')}",
        "search": "#/search?q=a%20red%20double-decker%20bus%20in%20a%20city%20street",
        "failed": "#/failed",
    }
    for name, route in routes.items():
        visit(page, gallery, route)
        page.execute_script("document.querySelectorAll('details').forEach(d => d.open = true)")
        width, viewport = page.execute_script("return [document.documentElement.scrollWidth, innerWidth]")
        assert width <= viewport == PHONE[0], f"{name}: {width} px wide at {viewport} px"
        if name in ("tag", "image"):
            pictures_loaded(page)
            shot(f"{name}-phone", full_page=name == "image")
    errors = [entry["message"] for entry in page.get_log("browser") if entry["level"] == "SEVERE"]
    assert not errors  # script errors, refused by the Content-Security-Policy, failed requests


def test_keyboard_tab_reaches_search_slash_focuses_it_arrows_move_through_a_grid(
    page: WebDriver, gallery: GalleryServer, photos: dict[str, Any]
) -> None:
    visit(page, gallery, "#/")
    keys = ActionChains(page)
    for _ in range(8):
        if page.switch_to.active_element.get_attribute("id") == "q":
            break
        keys.send_keys(Keys.TAB).perform()
    assert page.switch_to.active_element.get_attribute("id") == "q", "Tab never reached the search box"
    page.execute_script("document.activeElement.blur()")
    keys.send_keys("/").perform()
    assert page.switch_to.active_element.get_attribute("id") == "q"
    assert page.find_element(By.ID, "q").get_attribute("value") == ""  # the slash is not typed

    visit(page, gallery, f"#/tag/{quote(top_tag(photos[CAMERA]))}")
    shown = page.find_elements(By.CSS_SELECTOR, "main .grid .card")
    assert len(shown) >= 3
    first = shown[0].get_attribute("data-key")
    page.execute_script("arguments[0].focus()", shown[0])
    keys.send_keys(Keys.ARROW_RIGHT).perform()
    assert page.switch_to.active_element == shown[1]
    keys.send_keys(Keys.ARROW_LEFT).perform()
    assert page.switch_to.active_element == shown[0]
    outline = page.execute_script("return getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none", "focus must be visible"
    then(page, lambda: keys.send_keys(Keys.ENTER).perform())
    assert text(page, "h1") == first
