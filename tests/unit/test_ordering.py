"""Which write wins (cliptag.ordering), stated with AWS's own rule and examples, not the code's.

Amazon S3 User Guide, "Event message structure": "The sequencers can be of different lengths.
So, to compare these values, first right pad the shorter value with zeros, and then do a
lexicographical comparison." Older copies of the page said left-pad; where the two rules
disagree, these tests expect the current one.
"""

from __future__ import annotations

import pytest
from cliptag.ordering import Claim, Stored, later, legacy_sequencer, normalise_sequencer, stale_reason
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
    assert stale_reason(Stored(deleted=True, sequencer=a), Claim(b)) is not None  # a late create after a delete


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


def test_a_sequencer_stored_by_an_earlier_release_still_orders_events() -> None:
    """Earlier releases stored sequencers upper case, left-padded to 32: against such a value an
    event compares in that form, so a late, older event (a redriven dead letter) stays older."""
    stored = Stored(deleted=False, revision=3, legacy_sequencer=legacy_sequencer("0062F3A1B2C3D4E5F3"))
    older = Claim(normalise_sequencer("0062F3A1B2C3D4E5F2"), "0062F3A1B2C3D4E5F2")
    newer = Claim(normalise_sequencer("0062F3A1B2C3D4E5F4"), "0062F3A1B2C3D4E5F4")
    assert stale_reason(stored, older) is not None and stale_reason(stored, newer) is None


LIVE = Stored(deleted=False, revision=4, sequencer="0A", content_id="c1")
TOMBSTONE = Stored(deleted=True, revision=7, sequencer="0B")


@pytest.mark.parametrize(
    ("stored", "claim", "applies"),
    [
        # A backfill or repair (no sequencer) writes only over the record it read before S3: a
        # tombstone written after that read (a concurrent delete) wins.
        (TOMBSTONE, Claim(revision=6), False),
        (TOMBSTONE, Claim(revision=7), True),  # the tombstone was there first: the read is newer
        (None, Claim(revision=0), True),  # no record before, none now
        (LIVE, Claim(revision=0), False),  # an upload's record appeared since the read
        (LIVE, Claim(revision=4), True),
        (LIVE, Claim(revision=3), False),  # another writer since
        (LIVE, Claim(), False),  # no revision read: never over a record
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
