"""GET /images?all=&none= through the HTTP API: every image with all the tags and none of the
excluded ones, best first by the weakest score, page after page; the expectation comes from the
tag pages and the records, read here one by one (issue #20, "Combine conditions")."""

from __future__ import annotations

import urllib.parse
from collections import Counter
from typing import Any

from numpy.typing import NDArray


def listing(api: Any, **params: Any) -> tuple[int, dict[str, Any]]:
    return api.get("/images?" + urllib.parse.urlencode(params))  # type: ignore[no-any-return]


def every_page(api: Any, **params: Any) -> list[dict[str, Any]]:
    found, token = [], None
    while True:
        status, body = listing(api, **params, **({"next_token": token} if token else {}))
        assert status == 200, body
        assert body["plan"]["kind"] == "index" and body["plan"]["exact"]
        found += body["images"]
        token = body.get("next_token")
        if not token:
            return found


def test_images_with_every_tag_and_none_excluded_best_first_by_the_weakest(
    api: Any, library: dict[str, NDArray[Any]]
) -> None:
    tags = {key: {t["tag"] for t in api.image(key)[1]["tags"]} for key in library}
    counts = Counter(t for held in tags.values() for t in held)
    first, second = (t for t, _ in counts.most_common(2))
    both = [k for k, held in tags.items() if {first, second} <= held]
    assert both, "the library's two commonest tags never meet"
    others = Counter(t for k in both for t in tags[k] if t not in (first, second))
    # A tag some of them have and some not: excluding it leaves some, and takes some away.
    excluded = next((t for t, n in others.most_common() if n < len(both)), "zebra")

    expected = {}
    for key in api.all_keys_with_tag(first):  # the whole bucket's, other tests' photos too
        status, record = api.image(key)
        if status == 404:
            continue  # deleted by another test's clean-up since the page was read
        held = {t["tag"]: t["score"] for t in record["tags"]}
        if second in held and excluded not in held:
            expected[key] = min(held[first], held[second])
    found = every_page(api, all=f"{first},{second.upper()}", none=excluded, limit=2)  # any case
    answered = {i["key"]: i["score"] for i in found}
    for key in set(answered) ^ set(expected):  # only objects another test removed in between may differ
        assert api.image(key)[0] == 404, (key, answered.get(key), expected.get(key))
    assert {k: s for k, s in answered.items() if k in expected} == {k: s for k, s in expected.items() if k in answered}
    assert expected, "nothing to list: the test could not fail"
    scores = [i["score"] for i in found]
    assert scores == sorted(scores, reverse=True)
    assert [t["tag"] for t in found[0]["tags"]] == [first, second]

    floor = sorted(expected.values())[len(expected) // 2]
    above = {i["key"] for i in every_page(api, all=f"{first},{second}", none=excluded, min_score=floor)}
    wanted = {k for k, s in expected.items() if s >= floor}
    assert all(api.image(k)[0] == 404 for k in above ^ wanted), above ^ wanted


def test_a_listing_says_what_is_wrong(api: Any, library: dict[str, NDArray[Any]]) -> None:
    status, body = listing(api, all="dgo")
    assert status == 404 and "dog" in body["suggestions"]
    status, body = listing(api)
    assert status == 400 and "status=failed, or all=" in body["error"]
    status, body = listing(api, all="dog,cat,car,tree,beach,sky")
    assert status == 400 and "at most 5" in body["error"]
    status, body = listing(api, status="failed", all="dog")
    assert status == 400
    status, body = listing(api, all="dog", next_token="forged.token")
    assert status == 400


def test_the_rarest_tag_drives_and_only_its_images_are_checked(api: Any, library: dict[str, NDArray[Any]]) -> None:
    tags = Counter(t["tag"] for key in library for t in api.image(key)[1]["tags"])
    common, rare = tags.most_common()[0][0], tags.most_common()[-1][0]
    sizes = {tag: len(api.all_keys_with_tag(tag)) for tag in (common, rare)}
    assert sizes[rare] < sizes[common]
    status, body = listing(api, all=f"{common},{rare}")
    assert status == 200, body
    assert body["plan"]["driving_tag"] == rare and body["plan"]["records"] == sizes[rare]
    assert body["plan"]["index_entries"] <= sizes[rare] + min(sizes[common], 100)  # a first look at the other
