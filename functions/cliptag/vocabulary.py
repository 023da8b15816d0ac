"""The tag vocabulary as the runtime sees it: names in embedding order, thresholds, hash.

The human-edited source file (YAML) is parsed by ``model_export``; what ships with the model is
its normalised JSON form, whose hash versions every stored tag so re-tagging can find stale ones.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any


@dataclass(frozen=True)
class TagSpec:
    name: str
    category: str = ""
    synonyms: tuple[str, ...] = ()
    threshold: float | None = None  # overrides the global minimum score for this tag
    descriptions: tuple[str, ...] = ()


@dataclass(frozen=True)
class Vocabulary:
    tags: tuple[TagSpec, ...]
    templates: tuple[str, ...] = field(default=("a photo of a {}.",))

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.tags]

    @cached_property
    def hash(self) -> str:
        """SHA-256 over everything that changes the tag embeddings (names, synonyms, prompts)."""
        canonical = json.dumps(self._body(), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    @property
    def version(self) -> str:
        """Short form of the hash stored with every tagged object."""
        return self.hash[:12]

    def _body(self) -> dict[str, Any]:
        # Spelled out rather than dataclasses.asdict (a deep copy, ~10x slower on a cold start);
        # the same keys and values, so the hash is unchanged.
        tags = [
            {
                "name": t.name,
                "category": t.category,
                "synonyms": list(t.synonyms),
                "threshold": t.threshold,
                "descriptions": list(t.descriptions),
            }
            for t in self.tags
        ]
        return {"templates": list(self.templates), "tags": tags}

    def to_json(self) -> dict[str, Any]:
        return {"hash": self.hash, **self._body()}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Vocabulary:
        tags = tuple(
            TagSpec(
                name=t["name"],
                category=t.get("category", ""),
                synonyms=tuple(t.get("synonyms", ())),
                threshold=t.get("threshold"),
                descriptions=tuple(t.get("descriptions", ())),
            )
            for t in doc["tags"]
        )
        return cls(tags=tags, templates=tuple(doc.get("templates", ("a photo of a {}.",))))
