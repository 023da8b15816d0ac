"""Combined searches through the HTTP API, against expectations computed here from the export's
own encoders and the records: words minus words, an image plus words, tags wanted and excluded
(issue #20, "Combine conditions")."""

from __future__ import annotations

import urllib.parse
from collections import Counter
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from tests.integration.conftest import Model, folder_of
from tests.integration.test_search import QUERY


def search(api: Any, **params: Any) -> tuple[int, dict[str, Any]]:
    status, body = api.get("/search?" + urllib.parse.urlencode(params, doseq=True))
    return status, body


def unit(v: NDArray[np.float32]) -> NDArray[np.float32]:
    return (v / np.linalg.norm(v)).astype(np.float32)


def best(library: dict[str, NDArray[np.float32]], vector: NDArray[np.float32], n: int, skip: str = "") -> list[float]:
    """The n best scores of the folder, leaving out ``skip`` and every copy of its bytes."""
    same = {k for k, e in library.items() if skip and np.array_equal(e, library[skip])}
    return sorted((float(e @ vector) for k, e in library.items() if k not in same), reverse=True)[:n]


def test_words_minus_words(api: Any, library: dict[str, NDArray[np.float32]], model: Model) -> None:
    status, body = search(api, q=QUERY, minus="a snowy mountain", prefix=folder_of(library), limit=5)
    assert status == 200, body
    q, m = model.text.embed([QUERY, "a snowy mountain"])
    expected = unit(q - m)
    assert [h["score"] for h in body["images"]] == pytest.approx(best(library, expected, 5), abs=1e-4)
    assert body["query"] == f"{QUERY} -a snowy mountain"


def test_an_image_plus_words_and_an_image_alone(
    api: Any, library: dict[str, NDArray[np.float32]], model: Model
) -> None:
    first = next(iter(library))
    status, body = search(api, like=first, q="at night", prefix=folder_of(library), limit=4)
    assert status == 200, body
    expected = unit(library[first] + model.text.embed(["at night"])[0])
    twin = next(k for k in library if k != first and np.array_equal(library[k], library[first]))
    assert not {first, twin} & {h["key"] for h in body["images"]}  # never itself, nor its exact copy
    assert [h["score"] for h in body["images"]] == pytest.approx(best(library, expected, 4, skip=first), abs=1e-4)
    status, alone = search(api, like=first, prefix=folder_of(library), limit=3)
    assert status == 200 and [h["score"] for h in alone["images"]] == pytest.approx(
        best(library, unit(library[first]), 3, skip=first), abs=1e-4
    )


def test_tags_wanted_and_excluded(api: Any, library: dict[str, NDArray[np.float32]]) -> None:
    folder = folder_of(library)
    tags = {key: {t["tag"] for t in api.image(key)[1]["tags"]} for key in library}
    counts = Counter(tag for held in tags.values() for tag in held)
    wanted = counts.most_common(1)[0][0]
    # an excluded tag that some, not all, of the wanted tag's images carry
    excluded = next(
        t
        for t, _ in counts.most_common()
        if t != wanted and 0 < sum(t in h for h in tags.values() if wanted in h) < counts[wanted]
    )
    status, body = search(api, q=QUERY, prefix=folder, tag=[wanted], not_tag=[excluded], limit=100)
    assert status == 200, body
    assert {h["key"] for h in body["images"]} == {k for k, h in tags.items() if wanted in h and excluded not in h}
    second = next(t for t, _ in counts.most_common() if t not in (wanted, excluded))
    status, both = search(api, q=QUERY, prefix=folder, tag=[wanted, second], limit=100)
    assert status == 200
    assert {h["key"] for h in both["images"]} == {k for k, h in tags.items() if {wanted, second} <= h}


@pytest.mark.parametrize(
    ("params", "status", "says"),
    [
        ({"minus": "people"}, 400, "q (words) or like"),
        ({"q": "dog", "tag": ["dog"], "not_tag": ["Dog"]}, 400, "both wanted and excluded"),
        ({"q": "dog", "tag": ["dog"] * 6}, 400, "tag"),
        ({"q": "dog", "minus": ["a", "b", "c", "d"]}, 400, "minus"),
        ({"q": "dog", "not_tag": ["dgo"]}, 404, "unknown tag"),
        ({"like": "no/such/key.jpg"}, 404, "not in the search index"),
        ({"like": "no/such/key%41.jpg"}, 404, "'no/such/key%41.jpg'"),  # a query value is decoded once
        ({"q": "dog", "minus": "dog"}, 400, "cancel each other out"),
    ],
)
def test_combined_searches_refuse_what_they_cannot_answer(
    api: Any, params: dict[str, Any], status: int, says: str
) -> None:
    got, body = search(api, **params)
    assert got == status and says in body["error"], body
