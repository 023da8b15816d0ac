"""The records the domain works with, each defined once.

What one S3 event says (``ObjectEvent``), what is known about one content under the model
(``ContentRecord``), and what is stored for one object (``ObjectRecord``, the API's answer as it
is: its attribute docstrings become the OpenAPI descriptions). No AWS and no serialisation here:
``cliptag.adapters.dynamodb.items`` maps these to table items field by field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from cliptag import keys
from cliptag.ordering import Seen

# Read by pydantic (the API's validation and OpenAPI document) without this module importing it.
DOCUMENTED: dict[str, Any] = {"use_attribute_docstrings": True}


@dataclass(frozen=True)
class TagScore:
    __pydantic_config__ = DOCUMENTED

    tag: str
    """the tag's name, as in the vocabulary"""
    score: float
    """the model's score: cosine similarity of image and tag embeddings, -1..1, or SigLIP's probability (6 decimals)"""
    source: Literal["model", "person", "examples", "caption", "gps"] = "model"
    """who gave the tag: the model, a person who confirmed it (listed first), a tag taught by
    example (a cosine with the taught vector; after the confirmed ones, outside TopK), a keyword
    of the photo's caption that CLIP confirms (its CLIP score; Captions=On), or the photo's GPS
    position (a place tag, score 1; PlaceTags=On)"""


@dataclass(frozen=True)
class Decision:
    """A person's decision on one tag of some bytes: it holds for every key with those bytes,
    through re-tags, vocabulary edits and re-uploads; new bytes start without."""

    __pydantic_config__ = DOCUMENTED

    tag: str
    verdict: Literal["confirmed", "rejected"]
    """confirmed: the tag applies (listed first); rejected: the model never gives it to these bytes"""
    by: str
    """the IAM identity that decided (the caller's ARN)"""
    at: int
    """when (unix seconds)"""


@dataclass(frozen=True)
class CategoryScore:
    __pydantic_config__ = DOCUMENTED

    category: str
    """a category of the vocabulary"""
    score: float
    """the best score among the object's tags in this category"""


@dataclass(frozen=True)
class Place:
    """Where the photo was taken: its EXIF GPS position and the nearest GeoNames place."""

    __pydantic_config__ = DOCUMENTED

    latitude: float
    """degrees north (south negative), as the photo's EXIF says"""
    longitude: float
    """degrees east (west negative)"""
    city: str
    """the nearest place of 1,000 people or more (GeoNames cities1000)"""
    region: str
    """that place's first-level division (state, province, region); empty where GeoNames has none"""
    country: str
    country_code: str
    """ISO 3166-1 alpha-2"""
    distance_km: float
    """from the position to that place's centre"""


@dataclass(frozen=True)
class ObjectRecord:
    """What is stored for one S3 object: its tags, or why it could not be tagged."""

    __pydantic_config__ = DOCUMENTED

    bucket: str
    key: str
    """the S3 object key"""
    status: Literal["tagged", "failed"]
    """tagged, or failed with a reason in 'error'"""
    content_id: str = ""
    """SHA-256 of the object's bytes"""
    tags: tuple[TagScore, ...] = ()
    """best first"""
    categories: tuple[CategoryScore, ...] = ()
    """the categories its tags fall in, best first"""
    model: str = ""
    """the image encoder that embedded it"""
    vocabulary_version: str = ""
    """the vocabulary its tags were scored against"""
    scoring: str = ""
    """the vocabulary version, TopK, minimum score and vector index its tags and vector were written with"""
    width: int = 0
    height: int = 0
    format: str = ""
    """the decoded image format (JPEG, PNG, HEIF, ...)"""
    size: int = 0
    """bytes"""
    etag: str = ""
    """the S3 ETag of the bytes that were tagged"""
    last_modified: int = 0
    """when those bytes were written to S3 (unix seconds, S3's whole-second Last-Modified; 0: not recorded)"""
    error: str | None = None
    """why the object could not be tagged"""
    place: Place | None = None
    """where the photo was taken, from its GPS position (PlaceTags=On)"""
    place_missing: str | None = None
    """why it has no place (PlaceTags=On): no GPS position in its EXIF, a value that cannot be
    right (NaN, out of range, no hemisphere), or no town within 100 km"""
    caption: str | None = None
    """a sentence describing the photo (Captions=On), from the caption model"""
    write_back: str | None = None
    """what could not be written back to S3 (WriteBack): tags over S3's 10 per object beside the
    object's own, a sidecar key over 1,024 bytes"""

    @property
    def ref(self) -> str:
        return keys.object_ref(self.bucket, self.key)


@dataclass(frozen=True)
class Deployment:
    """What the deployed tagger uses: objects whose record says otherwise are due a re-tag."""

    model: str
    vocabulary_version: str
    scoring: str  # cliptag.scoring.scoring_version of the rest below
    top_k: int
    min_score: float
    vector_index: str = ""  # where objects' vectors go ("" when search is not deployed)
    # The model the table's first records were tagged with: its records keep the tag index's
    # original partitions, any other model's get partitions of their own (keys.tag_space).
    legacy_model: str = ""


@dataclass(frozen=True)
class ContentRecord:
    """What is known about one content (SHA-256) under the deployed model."""

    status: Literal["embedded", "failed", "pending"]  # pending: decoded, not yet embedded
    embedding: NDArray[np.float32] | None = None
    width: int = 0
    height: int = 0
    format: str = ""
    error: str = ""
    caption: str = ""  # Captions=On: written by the caption function, once per content
    keywords: tuple[TagScore, ...] = ()  # the caption's keywords CLIP confirms, as tags (source caption)


# created: the key holds new bytes. removed: the key holds nothing now (a delete, a delete marker).
# recheck: read the key and record what it holds, or its removal (a version was permanently
# deleted, so an older one may show again; a lifecycle expiration or a removal without a
# sequencer; a backfill or repair).
# retag: re-score the stored embedding (a vocabulary, threshold or TopK change).
EventKind = Literal["created", "removed", "recheck", "retag"]


@dataclass(frozen=True)
class ObjectEvent:
    """One S3 object event, parsed from a notification; or one of our own requests (re-tag,
    recheck) about an object."""

    kind: EventKind
    bucket: str
    key: str  # decoded: exactly the S3 object key
    size: int | None = None
    sequencer: str | None = None  # normalised (cliptag.ordering): string order is event order on one key
    sent_sequencer: str | None = None  # as S3 sent it (compared with records of earlier releases)
    seen: Seen | None = None  # backfill and repair requests: what the bucket's listing showed

    @property
    def ref(self) -> str:
        return keys.object_ref(self.bucket, self.key)


@dataclass(frozen=True)
class VectorEntry:
    """One object's vector in the search index, with what queries filter on."""

    ref: str
    content_id: str
    embedding: NDArray[np.float32]
    tags: tuple[str, ...]  # best first
    categories: tuple[str, ...]
    # The model's space (keys.tag_space): "" for the table's first model, whose vectors carry no
    # model (as every vector did before models had spaces), else a digest of the model key.
    space: str = ""


@dataclass(frozen=True)
class VectorFilter:
    """What a vector query keeps: objects with every one of ``tags`` and none of ``not_tags``, in
    this category, under this folder, of one model."""

    category: str | None = None
    folder: str | None = None  # a key prefix ending in "/"
    space: str | None = None  # one model's vectors (keys.tag_space; "" the first model's); None: any
    tags: tuple[str, ...] = ()
    not_tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Neighbour:
    """An object the vector index found near a query vector."""

    ref: str
    content_id: str
    similarity: float  # cosine, 1 - the index's cosine distance
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class DuplicatePair:
    """Two objects whose contents embed nearly alike (a near-duplicate, not the same bytes)."""

    ref: str
    content_id: str
    other_ref: str
    other_content_id: str
    similarity: float


@dataclass(frozen=True)
class ObjectBytes:
    """One S3 object as read: its bytes and what S3 says of them."""

    data: bytes
    etag: str
    last_modified: float = 0.0  # unix seconds
    version_id: str = ""


class StaleEvent(Exception):
    """A newer event for this key was already applied; this one changes nothing."""
