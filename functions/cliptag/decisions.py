"""People's decisions on tags, applied wherever tags are scored (no AWS here).

A decision belongs to the bytes (the content id): every key holding them carries it, and it
holds through re-tags, vocabulary edits and re-uploads of the same bytes; new bytes start
without. A confirmed tag is listed first, with its model score, whatever that score; a
rejected tag is never given by the model to those bytes. A decision on a tag the vocabulary no
longer has is kept and applies again if the tag comes back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from cliptag.keys import round_score
from cliptag.ports import DecisionStore, ObjectStore, RetagRequests
from cliptag.records import DOCUMENTED, Decision, TagScore
from cliptag.scoring import TagScorer
from cliptag.taught import EMPTY, TaughtSet

Verdict = Literal["confirmed", "rejected"]
HOLDERS_MAX = 1000  # objects one decision re-tags (the first 1,000 the content index lists, both rounds)


def decided_tags(
    scorer: TagScorer,
    embedding: NDArray[np.float32],
    decisions: Mapping[str, Decision],
    taught: TaughtSet = EMPTY,
) -> tuple[TagScore, ...]:
    """The tags of one embedding under ``decisions`` (tag -> decision): the confirmed ones first,
    best first, then the taught tags that pass (outside TopK), then the model's best of the rest,
    up to TopK with the confirmed vocabulary tags (which are always kept); each model tag passes
    its threshold as usual."""
    scores = scorer.scores(embedding[None, :])[0]
    own = taught.scores(embedding[None, :])[0]
    position = scorer.positions
    taught_score = dict(zip(taught.names, own.tolist(), strict=True))
    decided = [position[tag] for tag in decisions if tag in position]

    def score_of(tag: str) -> float:
        return float(scores[position[tag]]) if tag in position else taught_score[tag]

    confirmed = sorted(
        (
            TagScore(tag, round_score(score_of(tag)), "person")
            for tag, d in decisions.items()
            if d.verdict == "confirmed" and (tag in position or tag in taught_score)
        ),
        key=lambda t: (-t.score, t.tag),
    )
    masked = scores.copy()
    masked[decided] = -np.inf  # decided either way: never a model tag
    vocabulary_confirmed = sum(1 for t in confirmed if t.tag in position)  # a taught one takes no model slot
    (model,) = scorer.named(*scorer.select(masked[None, :], max(0, scorer.top_k - vocabulary_confirmed)))
    return (*confirmed, *taught.tags_of(own, frozenset(decisions)), *model)


@dataclass(frozen=True)
class DecisionOutcome:
    """A person's decision, recorded; the objects holding those bytes are being re-tagged."""

    __pydantic_config__ = DOCUMENTED

    bucket: str
    key: str
    decision: Decision
    retagging: int
    """objects holding these bytes (this one included) whose tags are being brought in line,
    from their stored embeddings: their records show the decision within seconds"""


class NotTagged(Exception):
    """The object has no tags to decide on (it failed, or holds no embedding yet)."""


@dataclass
class Corrections:
    """Confirm or reject a tag of an object: recorded on its bytes, then applied by the tagger
    (a re-tag, no model) to every object holding them."""

    bucket: str
    objects: ObjectStore
    decisions: DecisionStore
    retags: RetagRequests
    holders_max: int = HOLDERS_MAX  # objects re-tagged at once (the late round takes as many again)

    def decide(self, key: str, tag: str, verdict: Verdict, by: str, now: int) -> DecisionOutcome | None:
        """None: no such object. NotTagged: it failed or is not tagged yet."""
        record = self.objects.get(self.bucket, key)
        if record is None:
            return None
        if record.status != "tagged" or not record.content_id:
            raise NotTagged(f"{key!r} is not tagged ({record.error or record.status}): there is no tag to decide on")
        decision = Decision(tag, verdict, by, now)
        self.decisions.record(record.content_id, decision)
        refs = list(dict.fromkeys([record.ref, *self.decisions.holders(record.content_id, self.holders_max)]))
        self.retags.request(refs)
        # A batch that read the decisions before this one, or a copy the index does not show yet
        # (it is eventually consistent), is caught by a second round once they have finished.
        self.retags.later(record.content_id)
        return DecisionOutcome(record.bucket, record.key, decision, len(refs))
