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


def test_a_late_round_names_contents_only_and_few_of_them():
    import pytest
    from cliptag.adapters.notifications import decided_body, decided_contents
    from cliptag.errors import MalformedEvent

    sha = "ab" * 32
    assert decided_contents(decided_body([sha])) == [sha]
    assert decided_contents('{"cliptag": "retag", "objects": []}') is None and decided_contents("not json") is None
    for body in (decided_body(["../etc/passwd"]), decided_body([sha] * 11), decided_body([])):
        with pytest.raises(MalformedEvent):
            decided_contents(body)


def test_two_late_rounds_for_one_photo_re_tag_each_object_once():
    from cliptag.batch import Message
    from cliptag.steps import resolve_decided

    class Holders:
        def holders(self, content_id: str, limit: int) -> list[str]:
            return ["b/a.jpg", "b/copy.jpg", "b/a.jpg"]

    found = resolve_decided(Holders(), [Message("m1", [], contents=["c"]), Message("m2", [], contents=["c"])])  # type: ignore[arg-type]
    assert [e.key for e in found["m1"]] == ["a.jpg", "copy.jpg"] and found["m2"] == []  # type: ignore[union-attr]
