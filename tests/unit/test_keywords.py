"""Keywords from a caption (KeyBERT's method): candidates as KeyBERT's CountVectorizer forms them,
maximal marginal relevance on a worked example, and only what the image confirms kept."""

from __future__ import annotations

import numpy as np
import pytest
from cliptag.keywords import Keyword, candidates, joined, keywords, mmr
from cliptag.scoring import ScoreTransform


def test_candidates_are_one_to_three_word_phrases_without_stop_words() -> None:
    # CountVectorizer(ngram_range=(1, 3), stop_words="english") drops the stop words first, then
    # forms n-grams from what is left: "running on the beach" gives "running beach".
    found = candidates("A dog running on the beach with a red kite")
    assert found[:5] == ["dog", "running", "beach", "red", "kite"]
    assert "running beach" in found and "red kite" in found and "dog running beach" in found
    assert not any(w in p.split() for p in found for w in ("a", "on", "the", "with"))
    assert len(found) == len(set(found)) == 5 + 4 + 3
    assert candidates("the and of a") == []


def unit(*xs: float) -> np.ndarray:
    v = np.array(xs, dtype=np.float32)
    return v / np.linalg.norm(v)


def test_mmr_passes_over_a_near_copy_of_what_it_kept() -> None:
    # Worked by hand: relevance to the document 0.9 (a), 0.89 (a's near copy b), 0.6 (c, unlike a).
    # Second pick, diversity 0.5: b scores 0.5*0.89 - 0.5*0.99 = -0.05, c scores 0.5*0.6 - 0.5*0.0 = 0.3.
    document = unit(1, 0, 0)
    a = unit(0.9, np.sqrt(1 - 0.81), 0)
    b = a * 0.99 + unit(0, 0, 1) * np.sqrt(1 - 0.99**2)
    b = b / np.linalg.norm(b)
    c = unit(0.6, -0.8, 0)
    phrases = np.stack([a, b, c]).astype(np.float32)
    assert mmr(document, phrases, top_n=2, diversity=0.5) == [0, 2]
    assert mmr(document, phrases, top_n=2, diversity=0.0) == [0, 1]  # relevance alone keeps the copy


def test_only_the_phrases_the_image_confirms_stay() -> None:
    # A toy text encoder: each text's vector says which concepts it names.
    concepts = ["dog", "kite", "beach", "red"]

    def embed(texts: list[str]) -> np.ndarray:
        return np.stack([unit(*[1.0 if c in t else 0.01 for c in concepts]) for t in texts]).astype(np.float32)

    image = unit(1, 0.2, 0, 0)  # a dog, barely a kite, no beach to be seen
    everything = keywords("a dog flying a kite on the beach", embed, image, threshold=None)
    assert {"dog", "kite", "kite beach"} <= {k.phrase for k in everything}
    found = keywords("a dog flying a kite on the beach", embed, image, threshold=0.6)
    assert "dog" in {k.phrase for k in found} and not {"kite", "kite beach"} & {k.phrase for k in found}
    assert all(k.score >= 0.6 for k in found)


def test_sigmoid_models_score_in_probabilities() -> None:
    def embed(texts: list[str]) -> np.ndarray:
        return np.stack([unit(1.0, 0.1 * len(t)) for t in texts]).astype(np.float32)

    found = keywords("dog", embed, unit(1.0, 0.0), None, ScoreTransform("sigmoid", 10.0, -5.0))
    assert len(found) == 1 and 0.0 < found[0].score < 1.0


def test_a_keyword_that_is_a_vocabulary_name_joins_that_tag() -> None:
    lexicon = {"puppy": "dog", "dog": "dog"}
    named = joined(
        [Keyword("puppy", 0.9, 0.3), Keyword("dog", 0.8, 0.31), Keyword("kite surfing", 0.7, 0.29)], lexicon.get
    )
    assert [n for n, _ in named] == ["dog", "kite surfing"]
    assert named[0][1].phrase == "puppy"  # the most relevant of those that join it


@pytest.mark.parametrize("caption", ["", "   ", "!!!", "the of and"])
def test_no_words_no_keywords(caption: str) -> None:
    assert keywords(caption, lambda texts: np.ones((len(texts), 2), np.float32), unit(1, 0), None) == []
