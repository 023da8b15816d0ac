"""People's decisions on tags, applied where tags are scored (no AWS): confirmed tags come
first whatever their score, a rejected tag is never given, and the model fills the rest."""

from __future__ import annotations

import numpy as np
from cliptag import keys
from cliptag.decisions import decided_tags
from cliptag.records import Decision, TagScore
from cliptag.scoring import TagScorer

NAMES = ["dog", "cat", "beach", "car", "tree"]


def scorer(top_k: int = 3, min_score: float = 0.2) -> TagScorer:
    return TagScorer.build(NAMES, np.eye(5, dtype=np.float32), [None] * 5, min_score, top_k)


def image(*cosines: float) -> np.ndarray:
    """A unit vector whose cosine with tag i (the i-th axis) is cosines[i], up to normalising."""
    v = np.array(cosines, dtype=np.float32)
    return v / np.linalg.norm(v)


def confirmed(tag: str) -> Decision:
    return Decision(tag, "confirmed", "arn:aws:iam::1:user/ana", 1)


def rejected(tag: str) -> Decision:
    return Decision(tag, "rejected", "arn:aws:iam::1:user/ana", 1)


def test_without_decisions_the_model_decides():
    s, v = scorer(), image(0.8, 0.5, 0.3, 0.1, 0.0)
    assert decided_tags(s, v, {}) == tuple(s.tags(v[None, :])[0])


def test_a_confirmed_tag_comes_first_with_its_own_score_even_below_the_threshold():
    s, v = scorer(), image(0.8, 0.5, 0.3, 0.1, 0.0)
    tags = decided_tags(s, v, {"car": confirmed("car")})
    assert [t.tag for t in tags] == ["car", "dog", "cat"]  # TopK 3 in all: the model keeps two
    assert tags[0] == TagScore("car", keys.round_score(float(v[3])), "person")
    assert all(t.source == "model" for t in tags[1:])


def test_a_rejected_tag_is_never_given_and_the_next_best_takes_its_place():
    s, v = scorer(), image(0.8, 0.5, 0.3, 0.25, 0.0)
    tags = decided_tags(s, v, {"dog": rejected("dog")})
    assert [t.tag for t in tags] == ["cat", "beach", "car"]


def test_confirmed_tags_are_kept_beyond_top_k_and_unknown_tags_are_ignored():
    s, v = scorer(top_k=1), image(0.8, 0.5, 0.3, 0.1, 0.0)
    decisions = {t: confirmed(t) for t in ("tree", "car")} | {"unicorn": confirmed("unicorn")}
    tags = decided_tags(s, v, decisions)
    assert [(t.tag, t.source) for t in tags] == [("car", "person"), ("tree", "person")]


def test_a_confirmed_tag_sorts_above_every_model_score_in_the_index():
    best_model = keys.tag_index_sk(1.0, "b/a.jpg")
    person = keys.tag_index_sk(-0.5, "b/z.jpg", confirmed=True)
    assert person > best_model and person > keys.encode_score(0.9)  # any min_score keeps it
    assert keys.score_from_index_sk(person) == -0.5 and keys.confirmed_in_index_sk(person)
    assert not keys.confirmed_in_index_sk(best_model) and keys.is_index_sk(person)
