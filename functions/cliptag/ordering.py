"""Which of two states of one object wins: S3's sequencer rule, and for messages that carry no
sequencer (a backfill, verify's repairs, a removal S3 sent without one), what the tagger read.

Deliveries are at least once and out of order, so every write to an object's record is checked
here against what the record holds (``Stored``) before it is applied. The rules:

- An event with a sequencer loses to a stored sequencer that is greater; an equal one is a
  duplicate (it may still change nothing). The stored sequencer only ever grows.
- A message without a sequencer writes only over the record the tagger read *before* it read
  the object from S3 (same META revision, or still no record): S3 is strongly consistent, so
  what the read found is at least as new as that record; anything written to the record since
  (an event, a deletion's tombstone, another writer) wins, and the message changes nothing.
  So a backfill that read an object before a concurrent delete never brings it back, and a
  removal found by reading never hides an upload whose event was applied meanwhile.
- A re-tag writes only while the record still holds the content it re-scored.

No AWS here: the DynamoDB adapter applies the verdict inside its conditional writes.
"""

from __future__ import annotations

from dataclasses import dataclass

LEGACY_WIDTH = 32  # releases before this one stored sequencers upper case, left-padded to 32


def normalise_sequencer(sequencer: str | None) -> str | None:
    """The form in which sequencers of one key compare as plain strings.

    Amazon S3 User Guide, "Event message structure" (notification-content-structure.html): "The
    sequencers can be of different lengths. So, to compare these values, first right pad the
    shorter value with zeros, and then do a lexicographical comparison." Right-padding both to
    any common length orders them alike, and so does dropping the trailing zeros of each, which
    needs no fixed width: ``1`` and ``10`` are equal, ``1`` is later than ``05``. (Older copies
    of the page said left-pad; the current one says right.) Upper case: the values are hex.
    """
    if not sequencer:
        return None
    return sequencer.strip().upper().rstrip("0") or "0"


def legacy_sequencer(sequencer: str | None) -> str | None:
    """The form earlier releases stored (left-padded): compared only with such a stored value."""
    return sequencer.strip().upper().rjust(LEGACY_WIDTH, "0") if sequencer else None


@dataclass(frozen=True)
class Seen:
    """What a backfill or repair request saw of the object in the bucket's listing: the tagger
    reads only those bytes (GET If-Match), so an object overwritten since is left to its event."""

    etag: str = ""
    size: int = 0
    last_modified: float = 0.0  # unix seconds, as listed
    version_id: str = ""  # versioned buckets: the version listed (for the logs)


@dataclass(frozen=True)
class Claim:
    """Why a write may replace what is stored."""

    sequencer: str | None = None  # normalised; None for backfill, verify, re-tag messages
    sent_sequencer: str | None = None  # as S3 sent it: compared with a legacy stored value
    revision: int | None = None  # no sequencer: the META revision read before S3 was (0: none)
    expect_content: str | None = None  # a re-tag: the content it re-scored


@dataclass(frozen=True)
class Stored:
    """What an object's record holds now, as far as ordering is concerned."""

    deleted: bool
    revision: int = 0
    sequencer: str | None = None  # normalised
    legacy_sequencer: str | None = None  # left-padded, from an earlier release
    content_id: str = ""


def stale_reason(stored: Stored | None, claim: Claim) -> str | None:
    """Why ``claim``'s write must not replace ``stored`` (None: it may)."""
    if claim.sequencer is not None:
        if stored is None:
            return None
        if stored.sequencer and stored.sequencer > claim.sequencer:
            return f"event {claim.sequencer} is older than stored {stored.sequencer}"
        legacy = legacy_sequencer(claim.sent_sequencer)
        if not stored.sequencer and stored.legacy_sequencer and legacy and stored.legacy_sequencer > legacy:
            return f"event {claim.sent_sequencer} is older than stored {stored.legacy_sequencer}"
        return None
    if claim.expect_content is not None:
        if stored is None or stored.deleted or stored.content_id != claim.expect_content:
            return f"no longer holds content {claim.expect_content[:12]}"
        return None
    current = stored.revision if stored is not None else 0
    if claim.revision is None or current != claim.revision:
        return f"the record changed since it was read (revision {claim.revision} -> {current})"
    return None


def later(a: str | None, b: str | None) -> str | None:
    """The greater of two normalised sequencers (None counts as the least)."""
    if a is None or b is None:
        return a or b
    return max(a, b)
