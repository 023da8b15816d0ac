"""Which write wins (cliptag.ordering), stated with AWS's own rule and examples, not the code's.

Amazon S3 User Guide, "Event message structure": "The sequencers can be of different lengths.
So, to compare these values, first right pad the shorter value with zeros, and then do a
lexicographical comparison." Older copies of the page said left-pad; where the two rules
disagree, these tests expect the current one.
"""

from __future__ import annotations

import pytest
from cliptag.ordering import Claim, Seen, Stored, later, normalise_sequencer, stale_reason
from hypothesis import given
from hypothesis import strategies as st


def right_padded_later(a: str, b: str) -> bool:
    """The page's procedure, done literally: pad the shorter on the right, compare as strings."""
    width = max(len(a), len(b))
    return a.ljust(width, "0") > b.ljust(width, "0")


@pytest.mark.parametrize(
    ("later_one", "earlier_one"),
    [
        ("1", "05"),  # right-pad: "10" > "05"; left-pad would say "01" < "05"
        ("2", "1F"),  # "20" > "1F"; left-pad: "02" < "1F"
        ("0055AED6DCD90281E6", "0055AED6DCD90281E5"),  # same length: plain order (the page's example length)
        ("0055AED6DCD90281E6", "0055AED6DCD90281E50"),  # a longer value is not later for being longer
        ("617f0837b476e463", "617f08299329d189"),  # EventBridge page: delete after create, lower-case hex
    ],
)
def test_the_later_sequencer_by_the_documented_rule(later_one: str, earlier_one: str) -> None:
    a, b = normalise_sequencer(later_one), normalise_sequencer(earlier_one)
    assert a is not None and b is not None and a > b
    assert stale_reason(Stored(deleted=False, sequencer=a), Claim(b)) is not None  # the earlier loses
    assert stale_reason(Stored(deleted=False, sequencer=b), Claim(a)) is None


def test_trailing_zeros_do_not_make_a_sequencer_later() -> None:
    assert normalise_sequencer("1") == normalise_sequencer("10") == normalise_sequencer("1000")
    assert normalise_sequencer("0") == normalise_sequencer("000") == "0"
    assert normalise_sequencer(None) is None and normalise_sequencer("") is None


@given(st.text("0123456789ABCDEF", min_size=1, max_size=40), st.text("0123456789abcdef", min_size=1, max_size=40))
def test_normalised_order_is_the_right_padded_order(a: str, b: str) -> None:
    na, nb = normalise_sequencer(a), normalise_sequencer(b)
    assert na is not None and nb is not None
    assert (na > nb) == right_padded_later(a.upper(), b.upper())
    assert (na == nb) == (a.upper().ljust(60, "0") == b.upper().ljust(60, "0"))


def test_a_duplicate_is_not_stale_and_the_stored_sequencer_only_grows() -> None:
    stored = Stored(deleted=False, sequencer="0A")
    assert stale_reason(stored, Claim("0A")) is None
    assert later("0A", "0B") == "0B" and later("0B", None) == "0B" and later(None, None) is None


LIVE = Stored(deleted=False, sequencer="0A", etag="e1", content_id="c1", last_modified=1_000)
TOMBSTONE = Stored(deleted=True, sequencer="0B", deleted_at=2_000.5)


@pytest.mark.parametrize(
    ("stored", "claim", "applies"),
    [
        # A backfill (no sequencer) that read e1 before a delete: the tombstone wins.
        (TOMBSTONE, Claim(etag="e1", written_at=1_000, seen=Seen(etag="e1")), False),
        # ... unless the bytes were written after the deletion (a new upload, listed later).
        (TOMBSTONE, Claim(etag="e2", written_at=2_001, seen=Seen(etag="e2")), True),
        (TOMBSTONE, Claim(etag="e2", written_at=2_000, seen=Seen(etag="e2")), False),
        # Nothing stored: a backfill writes.
        (None, Claim(etag="e1", seen=Seen(etag="e1")), True),
        # The record describes the very bytes read: a model or scoring change, written.
        (LIVE, Claim(etag="e1", seen=Seen(etag="e1", record_etag="e1")), True),
        # A newer upload's record (e2) is never replaced by the older bytes a backfill read (e0).
        (Stored(deleted=False, sequencer="0C", etag="e2"), Claim(etag="e0", seen=Seen(etag="e0")), False),
        # ... but the record the sender found out of date may be (verify, backfill after a lost event).
        (LIVE, Claim(etag="e2", seen=Seen(etag="e2", record_etag="e1")), True),
        # A removal found by reading (no sequencer): only over bytes written before it looked.
        (LIVE, Claim(removed_at=1_001.0), True),
        (LIVE, Claim(removed_at=1_000.5), False),  # Last-Modified has whole seconds: too close to tell
        (Stored(deleted=False, etag="e1"), Claim(seen=Seen(etag="e1")), True),  # no time recorded: by ETag
        (Stored(deleted=False, etag="e3"), Claim(seen=Seen(etag="e1")), False),
        (TOMBSTONE, Claim(removed_at=5.0), True),  # removing the removed changes nothing
        # A re-tag writes only while the record still holds the content it re-scored.
        (LIVE, Claim(expect_content="c1"), True),
        (LIVE, Claim(expect_content="c0"), False),
        (TOMBSTONE, Claim(expect_content="c1"), False),
        (None, Claim(expect_content="c1"), False),
    ],
)
def test_messages_without_a_sequencer_never_replace_newer_state(
    stored: Stored | None, claim: Claim, applies: bool
) -> None:
    assert (stale_reason(stored, claim) is None) == applies
