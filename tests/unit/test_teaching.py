"""Tags taught by example (no AWS): the fit, its leave-one-out threshold, and how a taught set is
scored, versioned, read and named beside the vocabulary."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pytest
from cliptag.decisions import decided_tags
from cliptag.lexicon import Lexicon
from cliptag.records import Decision
from cliptag.scoring import TagScorer, l2_normalise
from cliptag.taught import TaughtCache, TaughtEntry, TaughtSet, TaughtTag, set_version, with_taught
from cliptag.teaching import TeachingError, fit, threshold_for
from cliptag.vocabulary import TagSpec, Vocabulary

DIM = 16
RNG = np.random.default_rng(7)


def around(centre: np.ndarray, n: int, spread: float) -> np.ndarray:
    return l2_normalise((centre + spread * RNG.standard_normal((n, DIM))).astype(np.float32))


def unit(i: int) -> np.ndarray:
    v = np.zeros(DIM, np.float32)
    v[i] = 1
    return v


def test_the_threshold_is_the_best_f1_cut_midway_in_its_gap() -> None:
    # Positives 0.9, 0.8; negatives 0.5, 0.1: the cut lies midway between 0.8 and 0.5.
    assert threshold_for(np.array([0.9, 0.8], np.float32), np.array([0.5, 0.1], np.float32)) == pytest.approx(0.65)
    # A negative among the positives: keeping both positives (F1 0.8) beats keeping one (0.67).
    assert threshold_for(np.array([0.9, 0.6], np.float32), np.array([0.7, 0.2], np.float32)) == pytest.approx(0.4)
    # No negative under the lowest positive: a small margin under it.
    assert threshold_for(np.array([0.9, 0.8], np.float32), np.zeros(0, np.float32)) == pytest.approx(0.78)


def test_a_prototype_separates_its_examples_from_the_library() -> None:
    thing, library = unit(0), around(unit(1), 200, 1.0)
    result = fit(around(thing, 3, 0.1), np.zeros((0, DIM), np.float32), library)
    assert result.method == "prototype" and result.recall == 1.0 and result.precision == 1.0
    assert (library @ result.vector < result.threshold).all()
    assert (around(thing, 20, 0.1) @ result.vector >= result.threshold).mean() > 0.9  # new photos of it


def test_library_photos_that_look_like_the_examples_are_not_held_against_them() -> None:
    thing = unit(0)
    library = np.concatenate([around(unit(1), 100, 1.0), around(thing, 2, 0.05)])  # two untagged copies
    result = fit(around(thing, 3, 0.05), np.zeros((0, DIM), np.float32), library)
    assert result.alike == 2 and result.precision == 1.0
    assert (library[-2:] @ result.vector >= result.threshold).all()  # it will find them


def test_with_enough_examples_and_negatives_a_probe_tells_close_things_apart() -> None:
    # Two things share most of their direction (a dog, and the user's own dog); a prototype of
    # the own dog would also take the others, a probe fitted against them does not.
    dog = l2_normalise((unit(0) + 0.25 * unit(2))[None, :])[0]
    own, others = around(dog + 0.3 * unit(3), 8, 0.05), around(dog - 0.3 * unit(3), 8, 0.05)
    result = fit(own, others, around(unit(1), 50, 1.0))
    assert result.method == "probe" and result.recall == 1.0
    assert (around(dog - 0.3 * unit(3), 20, 0.05) @ result.vector < result.threshold).all()
    assert (around(dog + 0.3 * unit(3), 20, 0.05) @ result.vector >= result.threshold).all()


def test_one_example_is_not_enough() -> None:
    with pytest.raises(TeachingError, match="at least 2"):
        fit(around(unit(0), 1, 0.1), np.zeros((0, DIM), np.float32), around(unit(1), 10, 1.0))


def taught(name: str, vector: np.ndarray, threshold: float, model: str = "m", category: str = "") -> TaughtTag:
    return TaughtTag(name, l2_normalise(vector[None, :])[0], threshold, model, category)


def test_taught_tags_come_after_confirmed_ones_and_before_the_models_outside_topk() -> None:
    names = [f"t{i}" for i in range(4)]
    scorer = TagScorer.build(names, np.eye(4, DIM, dtype=np.float32), [None] * 4, 0.0, top_k=2)
    mine = TaughtSet.of([taught("mine", unit(5), 0.3), taught("never", unit(6), 0.3)])
    image = l2_normalise(np.array([[0.9, 0.5, 0.2, 0.1, 0, 0.6, 0.1] + [0] * (DIM - 7)], np.float32))[0]
    tags = decided_tags(scorer, image, {}, mine)
    assert [(t.tag, t.source) for t in tags] == [("mine", "examples"), ("t0", "model"), ("t1", "model")]
    by = "arn:aws:iam::1:user/ana"
    decided = {"t3": Decision("t3", "confirmed", by, 1), "mine": Decision("mine", "rejected", by, 1)}
    tags = decided_tags(scorer, image, decided, mine)
    assert [(t.tag, t.source) for t in tags] == [("t3", "person"), ("t0", "model")]
    confirmed = decided_tags(scorer, image, {"never": Decision("never", "confirmed", by, 1)}, mine)
    assert (confirmed[0].tag, confirmed[0].source) == ("never", "person")  # below its threshold: a person said so


class Store:
    """Items by (name, digest), never rewritten; the head names one digest per tag."""

    def __init__(self, tags: list[TaughtTag]) -> None:
        self.items = {(t.name, t.digest): t for t in tags}
        self.entries = {t.name: TaughtEntry(t.digest, t.model, t.category) for t in tags}
        self.loads = 0

    def teach(self, tag: TaughtTag, head: bool = True) -> None:
        self.items[(tag.name, tag.digest)] = tag
        if head:
            self.entries[tag.name] = TaughtEntry(tag.digest, tag.model, tag.category)

    def head(self) -> dict[str, TaughtEntry]:
        return dict(self.entries)

    def load(self, wanted: Mapping[str, str]) -> list[TaughtTag]:
        self.loads += 1
        return [self.items[key] for key in wanted.items() if key in self.items]


def test_a_container_reloads_taught_tags_only_when_the_head_changes() -> None:
    first = taught("harbour", unit(0), 0.5)
    store = Store([first, taught("elsewhere", unit(1), 0.5, model="other model")])
    cache = TaughtCache(store, "m", frozenset())
    assert cache.refresh(0).names == ["harbour"]  # another model's taught tags wait
    assert cache.refresh(1).names == ["harbour"] and store.loads == 1
    second = taught("harbour", unit(2), 0.5)
    store.teach(second, head=False)  # a teach between its item and its head: the old tag stays
    assert cache.refresh(2).tags[0].digest == first.digest and store.loads == 1
    store.teach(second)
    assert cache.refresh(3).tags[0].digest == second.digest


def test_a_tag_whose_item_is_missing_is_left_unscored_and_tagging_goes_on() -> None:
    store = Store([taught("harbour", unit(0), 0.5), taught("pier", unit(1), 0.5)])
    store.entries["pier"] = TaughtEntry("no-such-digest", "m")
    current = TaughtCache(store, "m", frozenset()).refresh(0)
    assert current.names == ["harbour"] and current.version == set_version(store.head(), "m")


def test_a_vocabulary_tag_of_the_same_name_wins_and_the_version_still_names_the_set() -> None:
    store = Store([taught("Harbour", unit(0), 0.5), taught("dog", unit(1), 0.5)])
    cache = TaughtCache(store, "m", frozenset({"dog", "puppy"}))  # the re-exported vocabulary's names
    current = cache.refresh(0)
    assert current.names == ["Harbour"]
    assert current.version == set_version(store.head(), "m") != ""  # what `cliptag retag` computes
    assert with_taught("v1/k10", "") == "v1/k10"  # a stack that never taught keeps its versions


def test_the_lexicon_finds_taught_tags_and_never_lets_them_hide_the_vocabulary() -> None:
    vocabulary = Vocabulary((TagSpec("dog", "animals", ("puppy",)), TagSpec("beach", "places")))
    lexicon = Lexicon(vocabulary, {"Our Harbour": "places", "PUPPY": "mine"})
    assert lexicon.tag("our  harbour") == "Our Harbour" and lexicon.tag("puppy") == "dog"
    assert lexicon.taught == frozenset({"Our Harbour"})
    assert lexicon.tags_in("places") == ["beach", "Our Harbour"]
    assert "our harbour" not in lexicon.folded and "puppy" in lexicon.folded
