"""Names as people type them -> the vocabulary's tags and categories.

Case and spacing do not matter ("Meeting Room", "meeting  room"), a synonym is its tag ("human"
-> "person"), a category may be written with spaces for its underscores ("art and design"). An
unknown name gets up to five close matches to suggest instead.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from functools import cached_property

from cliptag.vocabulary import Vocabulary

SUGGESTIONS = 5
MAX_TAG_LENGTH = 100
TAG_PATTERN = r"^\w[\w '&.,()!+\-]*$"  # a name the API's routes can carry in a path segment


def fold(name: str) -> str:
    """The form names are compared in: case-folded, "_" as a space, runs of spaces as one."""
    return re.sub(r"\s+", " ", name.replace("_", " ")).strip().casefold()


class Lexicon:
    def __init__(self, vocabulary: Vocabulary, taught: Mapping[str, str] | None = None) -> None:
        """``taught``: tags taught by example (name -> category), after the vocabulary's names and
        synonyms, which they never hide."""
        # Every tag's own name first: a synonym never hides another tag's name.
        self._tags: dict[str, str] = {fold(spec.name): spec.name for spec in vocabulary.tags}
        for spec in vocabulary.tags:
            for name in spec.synonyms:
                self._tags.setdefault(fold(name), spec.name)
        self.category_of = {t.name: t.category for t in vocabulary.tags}
        learnt: set[str] = set()
        for name, category in (taught or {}).items():
            if fold(name) not in self._tags:  # the vocabulary's own names and synonyms win
                self._tags[fold(name)] = name
                self.category_of[name] = category
                learnt.add(name)
        self.taught = frozenset(learnt)
        self._categories = {fold(c): c for c in self.category_of.values() if c}

    @cached_property
    def folded(self) -> frozenset[str]:
        """Every name that resolves (folded), taught tags aside: what a taught tag may not be called."""
        return frozenset(f for f, tag in self._tags.items() if tag not in self.taught)

    def tag(self, name: str) -> str | None:
        """The vocabulary's tag for ``name`` (its own name or a synonym), or None."""
        return self._tags.get(fold(name))

    def category(self, name: str) -> str | None:
        return self._categories.get(fold(name))

    def tags_in(self, category: str) -> list[str]:
        return [tag for tag, of in self.category_of.items() if of == category]

    @property
    def categories(self) -> list[str]:
        return sorted(set(self._categories.values()))

    def suggest_tags(self, name: str) -> list[str]:
        """Up to five tags whose name or synonym is closest to ``name``, best first."""
        return _close(fold(name), self._tags)

    def suggest_categories(self, name: str) -> list[str]:
        return _close(fold(name), self._categories)


def _close(folded: str, names: dict[str, str]) -> list[str]:
    matches = difflib.get_close_matches(folded, list(names), n=SUGGESTIONS * 3, cutoff=0.6)
    # Words of the query that start a name ("room" -> "meeting room") are matches too.
    matches += [n for n in names if folded and (n.startswith(folded) or f" {folded}" in n)]
    suggestions: list[str] = []
    for match in matches:
        if names[match] not in suggestions:
            suggestions.append(names[match])
    return suggestions[:SUGGESTIONS]
