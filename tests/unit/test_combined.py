"""Images by several tags (GET /images?all=&none=), no AWS: the plan chosen per query, the order
(best first by the weakest score asked for), the records' final say, pagination, the bound."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from cliptag.combined import CombinedQueries, TooBroad
from cliptag.records import Neighbour, ObjectRecord, TagScore
from cliptag.tokens import BadToken, PageTokens

TOKENS = PageTokens(b"0123456789abcdef0123456789abcdef")


def record(key: str, **tags: float | tuple[float, str]) -> ObjectRecord:
    scored = [TagScore(t, *(s if isinstance(s, tuple) else (s,))) for t, s in tags.items()]
    return ObjectRecord("b", key, "tagged", tags=tuple(scored))


class Index:
    """Tag -> its images best first (confirmed ones first), paged like the real index."""

    shards = 1
    space = ""

    def __init__(self, records: list[ObjectRecord]) -> None:
        self.rows: dict[str, list[tuple[str, float, bool]]] = {}
        for r in records:
            for t in r.tags:
                self.rows.setdefault(t.tag, []).append((f"b/{r.key}", t.score, t.source == "person"))
        for rows in self.rows.values():
            rows.sort(key=lambda row: (not row[2], -row[1]))
        self.read: dict[str, int] = {}

    def page(self, tag: str, min_score: float, limit: int, positions: list[str | None]):
        rows = [r for r in self.rows.get(tag, []) if r[2] or r[1] >= min_score]
        start = int(positions[0] or 0)
        page = rows[start : start + limit]
        self.read[tag] = self.read.get(tag, 0) + len(page)
        return page, ([str(start + limit)] if start + limit < len(rows) else None)


class Store:
    def __init__(self, records: list[ObjectRecord]) -> None:
        self.records = {f"b/{r.key}": r for r in records}

    def get_many(self, refs: list[str]) -> dict[str, ObjectRecord]:
        return {ref: self.records[ref] for ref in refs if ref in self.records}


LIBRARY = [
    record("a", dog=0.30, beach=0.25),
    record("b", dog=0.28, beach=0.29, indoor=0.22),
    record("c", dog=0.35, beach=0.21),
    record("d", dog=0.40),
    record("e", beach=0.33, dog=(0.10, "person")),  # a person confirmed dog, scored low by the model
] + [record(f"dog{i}", dog=0.2 + i / 10_000) for i in range(150)]


def queries(library: list[ObjectRecord] = LIBRARY, bound: int = 1000, near=None) -> CombinedQueries:
    return CombinedQueries(Index(library), Store(library), TOKENS, near, bound)


def test_every_tag_of_all_none_of_none_best_first_by_the_weakest_score() -> None:
    page = queries().images(["dog", "beach"], ["indoor"], -1.0, 10, None)
    assert [(i.key, i.score) for i in page.images] == [("a", 0.25), ("c", 0.21), ("e", 0.10)]
    assert [t.tag for t in page.images[0].tags] == ["dog", "beach"]
    assert page.plan.kind == "index" and page.plan.exact and page.plan.driving_tag == "beach"  # the rarer
    assert page.plan.records == 4 and page.plan.read_units > 0


def test_min_score_applies_to_every_tag_asked_for_but_a_confirmed_tag_always_passes() -> None:
    page = queries().images(["dog", "beach"], [], 0.24, 10, None)
    assert [i.key for i in page.images] == ["b", "a", "e"]  # b: 0.28, a: 0.25; e: confirmed


def test_the_records_have_the_final_say_over_stale_index_entries() -> None:
    index_says = [record("a", dog=0.3, beach=0.3)]
    now = [record("a", dog=0.3)]  # beach was taken off since (a re-tag, a rejection)
    combined = CombinedQueries(Index(index_says), Store(now), TOKENS)
    assert combined.images(["dog", "beach"], [], -1.0, 10, None).images == ()


def test_pages_follow_each_other_with_signed_tokens_bound_to_their_query() -> None:
    combined = queries()
    first = combined.images(["dog"], ["beach"], -1.0, 60, None)
    second = combined.images(["dog"], ["beach"], -1.0, 60, first.next_token)
    third = combined.images(["dog"], ["beach"], -1.0, 60, second.next_token)
    keys = [i.key for page in (first, second, third) for i in page.images]
    assert len(keys) == len(set(keys)) == 151 and third.next_token is None
    assert keys[0] == "d"
    with pytest.raises(BadToken):
        combined.images(["dog"], [], -1.0, 60, first.next_token)  # another query's token


def test_a_rare_tag_drives_after_a_first_look_and_the_common_one_is_not_read_through() -> None:
    combined = queries()
    combined.images(["dog", "indoor"], [], -1.0, 10, None)
    assert combined.index.read == {"dog": 100, "indoor": 1}  # type: ignore[attr-defined]


def test_past_the_bound_the_search_index_answers_and_says_it_is_not_exact() -> None:
    asked: list[tuple[Sequence[str], Sequence[str], int]] = []

    def near(wanted: Sequence[str], excluded: Sequence[str], k: int) -> list[Neighbour]:
        asked.append((wanted, excluded, k))
        return [Neighbour("b/c", "c", 0.5), Neighbour("b/b", "b", 0.4), Neighbour("b/a", "a", 0.3)]

    page = queries(bound=3, near=near).images(["dog", "beach"], ["indoor"], -1.0, 10, None)
    assert asked == [(("dog", "beach"), ("indoor",), 100)]
    assert page.plan.kind == "vector" and not page.plan.exact and "min_score" in page.plan.note
    assert [i.key for i in page.images] == ["a", "c"]  # checked and ranked like the index plan's


def test_without_a_search_index_a_query_past_the_bound_is_refused_with_the_reason() -> None:
    with pytest.raises(TooBroad, match="more than 3 images scoring at least -1"):
        queries(bound=3).images(["dog", "beach"], [], -1.0, 10, None)


def test_a_token_is_refused_once_the_plan_changed_between_pages() -> None:
    first = queries().images(["dog"], ["beach"], -1.0, 60, None)
    assert first.plan.kind == "index" and first.next_token
    with pytest.raises(BadToken):  # dog crossed the bound: its offset means nothing in the new plan
        queries(bound=3, near=lambda wanted, excluded, k: []).images(["dog"], ["beach"], -1.0, 60, first.next_token)
