"""What the resumable jobs (backfill, retag, verify) share: a checkpoint that belongs to what it
was computed for, and honest words about what an interruption means.

A job saves its position after each page is sent. A page sent just before an interruption (a
crash, Ctrl-C) is sent again when the job resumes: delivery is at least once, and the tagger's
writes make a duplicate change nothing. A checkpoint made for another deployment (model, scoring)
or another stack filter is discarded, saying why: resuming it would report success with part of
the library handled under the old settings.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, Protocol

AT_LEAST_ONCE = (
    "a page sent just before an interruption is sent again when resumed (at least once: a duplicate changes nothing)"
)
INTERRUPTED = "interrupted; run it again to continue from the checkpoint"


class Checkpoints(Protocol):
    def load(self, job: str) -> dict[str, Any] | None: ...
    def save(self, job: str, state: dict[str, Any]) -> None: ...
    def clear(self, job: str) -> None: ...


@dataclass
class Checkpoint:
    """A job's saved position, valid only for the ``basis`` it was computed under."""

    store: Checkpoints
    job: str
    basis: dict[str, str]  # e.g. the deployed model and scoring, the stack's key filter

    def resume(self) -> dict[str, Any] | None:
        """The saved position, or None (with a line on stderr) when there is none worth using."""
        state = self.store.load(self.job)
        if not state:
            return None
        made_for: dict[str, str] = state.get("basis") or {}
        if made_for != self.basis:
            names = sorted(self.basis.keys() | made_for.keys())
            changes = [
                f"{k} {made_for.get(k, '?')} -> {self.basis.get(k, '?')}"
                for k in names
                if made_for.get(k) != self.basis.get(k)
            ]
            print(f"checkpoint discarded: it was made for {'; '.join(changes)}; starting over", file=sys.stderr)
            self.store.clear(self.job)
            return None
        position: dict[str, Any] = state.get("position") or {}
        print(f"resuming from the checkpoint {position}; {AT_LEAST_ONCE}", file=sys.stderr)
        return position

    def save(self, position: dict[str, Any]) -> None:
        self.store.save(self.job, {"basis": self.basis, "position": position})

    def clear(self) -> None:
        self.store.clear(self.job)
