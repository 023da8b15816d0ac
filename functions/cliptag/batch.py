"""What one SQS batch is made of while it is tagged: its messages and, per object event, what
became of it. ``cliptag.pipeline`` moves these through the steps of ``cliptag.steps``."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from cliptag.records import ContentRecord, Decision, ObjectEvent, Place, TagScore


@dataclass
class Message:
    """One SQS message: its object events, or why it could not be parsed."""

    id: str
    events: list[ObjectEvent]
    malformed: str = ""
    # A decision's late round: re-tag whatever holds these contents when it is delivered.
    contents: list[str] = field(default_factory=list)


@dataclass
class Item:
    """One object event of a message and what became of it."""

    event: ObjectEvent
    message_id: str
    content_id: str = ""
    size: int = 0
    etag: str = ""
    last_modified: int = 0  # the bytes' Last-Modified in S3 (unix seconds)
    found_gone: bool = False  # a recheck that found no object: commits a removal
    revision: int | None = None  # no sequencer: the META revision read before S3 was (cliptag.ordering)
    cached: ContentRecord | None = None  # known before this batch
    result: ContentRecord | None = None  # embedding or failure, after plan()
    data: bytes = b""  # held only between read and decode
    pixels: NDArray[np.float32] | None = None
    tags: tuple[TagScore, ...] = ()  # scored in plan(), for the whole batch at once
    decisions: dict[str, Decision] = field(default_factory=dict)  # people's, on its content (tag ->)
    transient: str = ""  # set: this message must be retried
    gone: bool = False  # nothing to write: deleted before we read it, or nothing to re-tag
    outcome: str = ""  # tagged | reused | retagged | failed | deleted | skipped | stale | changed
    near_duplicates: int = 0  # found for this upload (when the check is on)
    place: Place | None = None  # from its GPS position (PlaceTags=On), read with its bytes or kept from its record
    place_missing: str | None = None  # why it has none (PlaceTags=On)

    def retry(self, reason: str) -> None:
        self.transient, self.data = reason, b""

    def skip(self) -> None:
        self.gone, self.outcome = True, "skipped"


@dataclass
class MessagePlan:
    message_id: str
    items: list[Item] = field(default_factory=list)
    malformed: str = ""
    transient: str = ""  # set: the message must be retried (its objects could not be found)
    independent: bool = False  # its objects are distinct and unordered (a late round): written at once
    sidecars: int = 0  # events about keys under SidecarPrefix: our own sidecars, ignored


@dataclass
class BatchStats:
    inference_images: int = 0
    inference_ms: float = 0.0
