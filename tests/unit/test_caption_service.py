"""The caption function's flow with its ports in memory: once per content, from bytes that are
really that content, written before the holders are re-tagged, and a retry where the content is
not cached yet."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pytest
from cliptag.adapters.notifications import caption_body, caption_request
from cliptag.captions import CaptionService
from cliptag.content import content_id
from cliptag.errors import MalformedEvent, ObjectGone, TransientError
from cliptag.imaging import Preprocessing
from cliptag.records import ContentRecord, ObjectBytes, TagScore

from tests.exif import plain_jpeg

PHOTO = plain_jpeg("olive")
CID = content_id(PHOTO)


class Captioner:
    preprocessing = Preprocessing(size=32, crop=32, resize="squash")

    def __init__(self) -> None:
        self.calls = 0

    def captions(self, pixels: np.ndarray) -> list[str]:
        self.calls += 1
        return ["a dog on a beach"] * len(pixels)


@dataclass
class Contents:
    found: dict[str, ContentRecord] = field(default_factory=dict)
    written: list[tuple[str, str, tuple[TagScore, ...]]] = field(default_factory=list)

    def get_many(self, ids: list[str]) -> dict[str, ContentRecord]:
        return {i: self.found[i] for i in ids if i in self.found}

    def set_caption(self, cid: str, caption: str, keywords: tuple[TagScore, ...]) -> bool:
        self.written.append((cid, caption, keywords))
        return True


@dataclass
class Bucket:
    objects: dict[str, bytes]

    def read(self, bucket: str, key: str, max_bytes: int, if_match: str = "") -> ObjectBytes:
        if key not in self.objects:
            raise ObjectGone(key)
        return ObjectBytes(self.objects[key], "etag")


@dataclass
class Retags:
    asked: list[list[str]] = field(default_factory=list)
    later_for: list[str] = field(default_factory=list)

    def request(self, refs: list[str]) -> None:
        self.asked.append(refs)

    def later(self, cid: str) -> None:
        self.later_for.append(cid)


def service(
    contents: Contents, bucket: Bucket, holders: list[str], dog_passes: bool = True
) -> tuple[CaptionService, Captioner, Retags]:
    captioner, retags = Captioner(), Retags()

    def embed(texts: list[str]) -> np.ndarray:
        return np.stack([np.array([1.0, 0.1 * ("dog" in t), 0.1 * ("beach" in t)], np.float32) for t in texts])

    def tag_score(tag: str, embedding: np.ndarray) -> float | None:
        return 0.31 if tag == "dog" and dog_passes else None

    lexicon = {"dog": "dog", "puppy": "dog"}.get
    found = CaptionService(
        captioner, embed, lexicon, None, contents, bucket, lambda cid, limit: holders, retags, tag_score, wait_s=0.0
    )
    return found, captioner, retags


def embedded() -> ContentRecord:
    return ContentRecord("embedded", np.array([1.0, 0.0, 0.0], np.float32))


def test_a_content_is_captioned_written_then_its_holders_retagged() -> None:
    contents = Contents({CID: embedded()})
    run, _, retags = service(contents, Bucket({"a.jpg": PHOTO}), ["photos/b.jpg"])
    assert run.caption(CID, "photos", "a.jpg").startswith("captioned")
    ((cid, caption, keywords),) = contents.written
    assert (cid, caption) == (CID, "a dog on a beach")
    assert "dog" in {k.tag for k in keywords} and {k.source for k in keywords} == {"caption"}
    assert retags.asked == [["photos/a.jpg", "photos/b.jpg"]] and retags.later_for == [CID]


def test_a_vocabulary_keyword_joins_its_tag_only_where_the_tag_passes_its_own_threshold() -> None:
    contents = Contents({CID: embedded()})
    run, _, _ = service(contents, Bucket({"a.jpg": PHOTO}), [])
    run.caption(CID, "photos", "a.jpg")
    assert TagScore("dog", 0.31, "caption") in contents.written[0][2]  # the tag's own score
    contents = Contents({CID: embedded()})
    run, _, _ = service(contents, Bucket({"a.jpg": PHOTO}), [], dog_passes=False)
    run.caption(CID, "photos", "a.jpg")
    assert "dog" not in {k.tag for k in contents.written[0][2]}  # the model withholds it: so does the caption


def test_a_redelivered_caption_is_not_made_again_but_its_holders_are_re_tagged() -> None:
    contents = Contents({CID: ContentRecord("embedded", np.ones(3, np.float32), caption="done")})
    run, captioner, retags = service(contents, Bucket({"a.jpg": PHOTO}), ["photos/b.jpg"])
    assert run.caption(CID, "photos", "a.jpg").startswith("already captioned")
    assert captioner.calls == 0 and not contents.written
    assert retags.asked == [["photos/a.jpg", "photos/b.jpg"]]  # its first delivery may have failed after writing


def test_an_overwritten_key_is_not_read_as_the_content_another_holder_is() -> None:
    contents = Contents({CID: embedded()})
    other = plain_jpeg("navy")
    run, captioner, _ = service(contents, Bucket({"a.jpg": other, "b.jpg": PHOTO}), ["photos/b.jpg"])
    assert run.caption(CID, "photos", "a.jpg").startswith("captioned") and captioner.calls == 1
    run, captioner, _ = service(Contents({CID: embedded()}), Bucket({"a.jpg": other}), [])
    assert run.caption(CID, "photos", "a.jpg") == "no object holds these bytes any more" and captioner.calls == 0


def test_a_content_not_cached_yet_is_left_to_the_queue_to_retry() -> None:
    run, captioner, _ = service(Contents(), Bucket({"a.jpg": PHOTO}), [])
    with pytest.raises(TransientError):
        run.caption(CID, "photos", "a.jpg")
    assert captioner.calls == 0


def test_a_caption_request_is_read_back_and_a_malformed_one_is_refused_with_its_reason() -> None:
    assert caption_request(caption_body(CID, "photos", "a b/ü.jpg")) == (CID, "photos", "a b/ü.jpg")
    for body, reason in [
        ("not json", "caption request"),
        (json.dumps({"content_id": CID, "bucket": "photos"}), "'key'"),
        (json.dumps({"content_id": "../etc", "bucket": "photos", "key": "a.jpg"}), "SHA-256"),
        (json.dumps({"content_id": CID, "bucket": "", "key": "a.jpg"}), "non-empty"),
        (json.dumps({"content_id": CID, "bucket": "photos", "key": 7}), "non-empty"),
        (json.dumps([CID]), "caption request"),
    ]:
        with pytest.raises(MalformedEvent, match=reason):
            caption_request(body)
