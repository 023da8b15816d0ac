"""Which of two states of one object wins: S3's sequencer rule, and for messages that carry no
sequencer (backfill, verify's repairs, re-tags), what their sender saw.

Deliveries are at least once and out of order, so every write to an object's record is checked
here against what the record holds (``Stored``) before it is applied. The rules:

- An event with a sequencer loses to a stored sequencer that is greater; an equal one is a
  duplicate (it may still change nothing). The stored sequencer only ever grows.
- A message without a sequencer never overwrites newer state: it writes over no record, or over a
  record of the very bytes it read, or over the record its sender saw (``Seen.record_etag``);
  a tombstone beats it unless the object was written after the deletion. A removal without a
  sequencer (a read found the object gone) applies only over a record of bytes written before.
- A re-tag writes only while the record still holds the content it re-scored.

No AWS here: the DynamoDB adapter applies the verdict inside its conditional writes.
"""

from __future__ import annotations

from dataclasses import dataclass


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


@dataclass(frozen=True)
class Seen:
    """What a message without a sequencer saw of the object when it was made (a listing, and the
    record then), so that its write applies only over that state."""

    etag: str = ""  # the bytes the listing saw; the tagger reads only these (GET If-Match)
    size: int = 0
    last_modified: float = 0.0  # unix seconds, as listed
    version_id: str = ""  # versioned buckets: the version listed (for the logs)
    record_etag: str = ""  # the ETag the record held then ("" for none): it may be replaced


@dataclass(frozen=True)
class Claim:
    """Why a write may replace what is stored."""

    sequencer: str | None = None  # normalised; None for backfill, verify and re-tag messages
    seen: Seen | None = None
    expect_content: str | None = None  # a re-tag: the content it re-scored
    etag: str = ""  # a record: the bytes it describes ("" for a removal)
    written_at: float = 0.0  # a record: the bytes' LastModified, as read (unix seconds)
    removed_at: float = 0.0  # a removal: when S3 removed the object, or when a read found it gone


@dataclass(frozen=True)
class Stored:
    """What an object's record holds now, as far as ordering is concerned."""

    deleted: bool
    sequencer: str | None = None
    etag: str = ""
    content_id: str = ""
    last_modified: int = 0  # a record: its bytes' Last-Modified, whole seconds (0: not recorded)
    deleted_at: float = 0.0  # a tombstone: when S3 removed the object (0: unknown)


def stale_reason(stored: Stored | None, claim: Claim) -> str | None:
    """Why ``claim``'s write must not replace ``stored`` (None: it may)."""
    if claim.sequencer is not None:
        if stored is not None and stored.sequencer and stored.sequencer > claim.sequencer:
            return f"event {claim.sequencer} is older than stored {stored.sequencer}"
        return None
    if claim.expect_content is not None:
        if stored is None or stored.deleted or stored.content_id != claim.expect_content:
            return f"no longer holds content {claim.expect_content[:12]}"
        return None
    if stored is None:
        return None
    return _unsequenced_removal(stored, claim) if not claim.etag else _unsequenced_record(stored, claim)


def _unsequenced_record(stored: Stored, claim: Claim) -> str | None:
    seen = claim.seen or Seen()
    if stored.deleted:
        if claim.written_at and stored.deleted_at and claim.written_at > stored.deleted_at:
            return None  # written after the deletion: these bytes are newer than the tombstone
        return "a deletion is recorded and these bytes are not provably newer"
    if stored.etag == claim.etag:
        return None  # the record describes these very bytes
    if seen.record_etag and stored.etag == seen.record_etag:
        return None  # the record its sender found out of date
    return "the record holds other bytes than this message saw: their own event decides"


def _unsequenced_removal(stored: Stored, claim: Claim) -> str | None:
    if stored.deleted:
        return None
    if stored.last_modified and claim.removed_at:
        # Last-Modified has whole seconds: the bytes were written in [last_modified, +1 s).
        if stored.last_modified + 1 <= claim.removed_at:
            return None  # the recorded bytes were written before the object was found gone
        return "the record's bytes were written after the object was found gone"
    seen = claim.seen or Seen()
    if stored.etag and stored.etag in (seen.etag, seen.record_etag):
        return None  # the record still describes what the sender saw
    return "the record may be newer than this removal"


def later(a: str | None, b: str | None) -> str | None:
    """The greater of two normalised sequencers (None counts as the least)."""
    if a is None or b is None:
        return a or b
    return max(a, b)
