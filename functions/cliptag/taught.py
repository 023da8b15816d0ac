"""Tags taught by example: what the tagger scores beside the vocabulary (no AWS here).

A taught tag is a unit vector in the model's embedding space and a cosine threshold, fitted from
the stored embeddings of a person's example photos (``cliptag.teaching``). It is scored as the
cosine of an image's embedding with that vector, whatever the model's own score units (SigLIP's
probabilities included), and given whenever it passes its threshold: it is the person's own
concept, so the model's TopK never cuts it. A taught tag belongs to the model whose embeddings
it was fitted on; under another model it is dormant until taught again.

The set of taught tags is versioned by a hash of their names and vector digests: records carry it
in their scoring version, so ``cliptag retag`` finds every record scored under another set.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import numpy as np
from numpy.typing import NDArray

from cliptag.keys import round_score
from cliptag.lexicon import fold
from cliptag.records import TagScore

SOURCE: Final = "examples"  # a taught tag's source in /tags and in records


@dataclass(frozen=True)
class TaughtTag:
    name: str
    vector: NDArray[np.float32]  # [D], unit length
    threshold: float  # cosine
    model: str  # the model key whose embeddings it was fitted on
    category: str = ""
    method: str = "prototype"  # prototype | probe
    examples: tuple[str, ...] = ()  # the examples' object refs (bucket/key)
    negatives: tuple[str, ...] = ()
    precision: float = 0.0  # leave-one-out estimates, as printed when taught
    recall: float = 0.0
    by: str = ""
    at: int = 0

    @property
    def digest(self) -> str:
        """Names what scoring depends on: the vector and the threshold."""
        body = np.asarray(self.vector, np.float32).tobytes() + f"{self.threshold:.6f}".encode()
        return hashlib.sha256(body).hexdigest()[:16]


@dataclass(frozen=True)
class TaughtEntry:
    """A taught tag as the set's head lists it (small: read on every batch)."""

    digest: str
    model: str
    category: str = ""
    method: str = ""
    examples: int = 0
    threshold: float = 0.0
    precision: float = 0.0
    recall: float = 0.0
    at: int = 0


@dataclass(frozen=True)
class TaughtSet:
    """The taught tags the deployed model scores, in name order."""

    tags: tuple[TaughtTag, ...] = ()
    # Names the model's whole taught set ("" for none), shadowed tags included: what records are
    # stamped with, and what `cliptag retag` computes from the head alone.
    version: str = ""
    _matrix: NDArray[np.float32] = field(default_factory=lambda: np.zeros((0, 0), np.float32), repr=False)

    @classmethod
    def of(cls, tags: list[TaughtTag], version: str | None = None) -> TaughtSet:
        ordered = tuple(sorted(tags, key=lambda t: t.name))
        matrix = np.stack([t.vector for t in ordered]).astype(np.float32) if ordered else np.zeros((0, 0), np.float32)
        if version is None:
            version = version_of({t.name: t.digest for t in ordered})
        return cls(ordered, version, matrix)

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.tags]

    @property
    def categories(self) -> dict[str, str]:
        return {t.name: t.category for t in self.tags if t.category}

    def scores(self, embeddings: NDArray[np.float32]) -> NDArray[np.float32]:
        """[N, D] unit vectors -> [N, T] cosines with each taught tag."""
        if not self.tags:
            return np.zeros((embeddings.shape[0], 0), np.float32)
        out: NDArray[np.float32] = (embeddings.astype(np.float32, copy=False) @ self._matrix.T).astype(np.float32)
        return out

    def tags_of(self, scores: NDArray[np.float32], excluded: frozenset[str] = frozenset()) -> list[TagScore]:
        """One image's taught tags ([T] cosines) that pass their thresholds, best first."""
        found = [
            TagScore(t.name, round_score(float(s)), SOURCE)
            for t, s in zip(self.tags, scores.tolist(), strict=True)
            if s >= t.threshold and t.name not in excluded
        ]
        return sorted(found, key=lambda t: (-t.score, t.tag))


EMPTY = TaughtSet()


def version_of(digests: Mapping[str, str]) -> str:
    if not digests:
        return ""
    body = "\n".join(f"{name}\t{digest}" for name, digest in sorted(digests.items()))
    return hashlib.sha256(body.encode("utf-8")).hexdigest()[:12]


def with_taught(scoring: str, taught_version: str) -> str:
    """A scoring version that also names the taught set ("" leaves it as it was)."""
    return f"{scoring}/x:{taught_version}" if taught_version else scoring


class TaughtStore(Protocol):
    """Where taught tags are kept: a small head listing them, and one item per tag."""

    def head(self) -> dict[str, TaughtEntry]: ...
    def load(self, wanted: Mapping[str, str]) -> list[TaughtTag]: ...


def of_model(entries: Mapping[str, TaughtEntry], model: str) -> dict[str, TaughtEntry]:
    """The entries taught on ``model``'s embeddings: the set the version names."""
    return {n: e for n, e in entries.items() if e.model == model}


def active(entries: Mapping[str, TaughtEntry], model: str, vocabulary: frozenset[str]) -> dict[str, TaughtEntry]:
    """The entries the deployed model scores: its own, and none a vocabulary tag or synonym
    (``vocabulary``: their folded names) now shadows: a re-export that adds the name wins, and
    the taught tag waits."""
    return {n: e for n, e in of_model(entries, model).items() if fold(n) not in vocabulary}


def set_version(entries: Mapping[str, TaughtEntry], model: str) -> str:
    return version_of({n: e.digest for n, e in of_model(entries, model).items()})


class TaughtCache:
    """The taught set as one container sees it. ``refresh`` reads the head (one small consistent
    read) and loads the tags again only when it changed; ``max_age_s`` lets a reader that needs no
    exactness skip reads for a while. A tag whose item cannot be found (never, as the store writes
    them) is left unscored and logged: tagging goes on."""

    def __init__(self, store: TaughtStore, model: str, vocabulary: frozenset[str], max_age_s: float = 0.0) -> None:
        self.store, self.model, self.vocabulary, self.max_age_s = store, model, vocabulary, max_age_s
        self.current: TaughtSet = EMPTY
        self._digests: dict[str, str] = {}
        self._read_at = float("-inf")

    def refresh(self, now: float, force: bool = False) -> TaughtSet:
        if not force and now - self._read_at < self.max_age_s:
            return self.current
        head = self.store.head()
        wanted = {n: e.digest for n, e in active(head, self.model, self.vocabulary).items()}
        version = set_version(head, self.model)
        if wanted != self._digests or version != self.current.version:
            loaded = [t for t in self.store.load(wanted) if wanted.get(t.name) == t.digest]
            missing = sorted(set(wanted) - {t.name for t in loaded})
            if missing:
                logging.getLogger(__name__).warning("taught tags without their item, not scored: %s", missing)
            self.current, self._digests = TaughtSet.of(loaded, version), wanted
        self._read_at = now
        return self.current


class LiveCategories(Mapping[str, str]):
    """Tag -> category: the vocabulary's, and the taught tags' as the cache last loaded them."""

    def __init__(self, vocabulary: Mapping[str, str], cache: TaughtCache | None) -> None:
        self.vocabulary, self.cache = vocabulary, cache

    def _taught(self) -> dict[str, str]:
        return self.cache.current.categories if self.cache is not None else {}

    def __getitem__(self, tag: str) -> str:
        taught = self._taught()
        return taught[tag] if tag in taught else self.vocabulary[tag]

    def __iter__(self) -> Iterator[str]:
        yield from self.vocabulary
        yield from (t for t in self._taught() if t not in self.vocabulary)

    def __len__(self) -> int:
        return len(self.vocabulary) + sum(1 for t in self._taught() if t not in self.vocabulary)


def entry_json(tag: TaughtTag) -> dict[str, Any]:
    return {
        "digest": tag.digest,
        "model": tag.model,
        "category": tag.category,
        "method": tag.method,
        "examples": len(tag.examples),
        "threshold": tag.threshold,
        "precision": tag.precision,
        "recall": tag.recall,
        "at": tag.at,
    }
