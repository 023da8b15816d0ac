"""Captions=On: each new content captioned once, its keywords confirmed by CLIP, and every object
holding it re-tagged so that its record shows them.

The caption function receives (content id, bucket, key) from the tagger, for new contents only.
It reads the bytes (another holder's if that key is gone), captions them (``cliptag.captioning``),
extracts keywords (``cliptag.keywords``) and keeps those the content's *stored* image embedding
confirms: the image is never encoded by CLIP again. It writes the caption and keywords onto the
content (once: a second caption of the same bytes changes nothing), then asks the tagger to re-tag
the content's holders from their stored embeddings, as a person's decision does; the tagger puts
the caption in each record and the keywords among its tags (``source: caption``). It never
writes an object's record itself: a caption that fails leaves every tag as it was.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from cliptag import keys
from cliptag.content import content_id as digest
from cliptag.errors import ObjectChanged, ObjectGone, PermanentError, TransientError
from cliptag.imaging import Limits, Preprocessing, load_pixels
from cliptag.keywords import joined, keywords
from cliptag.ports import ObjectReader, RetagRequests
from cliptag.records import ContentRecord, TagScore
from cliptag.scoring import COSINE, ScoreTransform

HOLDERS_MAX = 1000  # objects re-tagged at once (the late round takes the rest)


class Captioner(Protocol):
    @property
    def preprocessing(self) -> Preprocessing: ...
    def captions(self, pixels: NDArray[np.float32]) -> list[str]: ...


class CaptionedContents(Protocol):
    def get_many(self, content_ids: list[str]) -> dict[str, ContentRecord]: ...
    def set_caption(self, content_id: str, caption: str, keywords: tuple[TagScore, ...]) -> bool: ...


@dataclass
class CaptionService:
    captioner: Captioner
    embed_text: Callable[[list[str]], NDArray[np.float32]]  # the CLIP text encoder
    resolve: Callable[[str], str | None]  # a phrase -> the vocabulary tag it names (lexicon), if any
    threshold: float | None  # the deployed model's tag threshold; None: keep every ranked keyword
    contents: CaptionedContents
    reader: ObjectReader
    holders: Callable[[str, int], list[str]]  # content id -> refs of the objects holding it
    retags: RetagRequests
    # A vocabulary tag's score on an embedding when it passes the tag's own threshold, else None.
    tag_score: Callable[[str, NDArray[np.float32]], float | None] = lambda tag, embedding: None
    transform: ScoreTransform = COSINE
    limits: Limits = field(default_factory=Limits)
    # The tagger sends a content just before caching it (so that a retried batch sends it again):
    # a caption that arrives first waits this long for it before leaving it to the queue's retry.
    wait_s: float = 5.0

    def caption(self, content_id: str, bucket: str, key: str) -> str:
        """Caption one content; what happened, for the log. TransientError: try again later (the
        content is not cached yet, or AWS failed); any other problem is final and said."""
        found = self._embedded(content_id)
        if found is None or found.embedding is None:
            raise TransientError(f"{content_id}: not embedded yet")
        refs = list(dict.fromkeys([keys.object_ref(bucket, key), *self.holders(content_id, HOLDERS_MAX)]))
        if found.caption:  # a redelivery after the caption was written: its re-tags may be what failed
            self._retag(content_id, refs)
            return "already captioned: holders re-tagged"
        data = self._read(content_id, refs)
        if data is None:
            return "no object holds these bytes any more"
        try:
            _, pixels = load_pixels(data, self.captioner.preprocessing, self.limits)
        except PermanentError as exc:
            return f"cannot decode: {exc}"
        caption = self.captioner.captions(pixels[None])[0]
        tags = self._tags(caption, found.embedding)
        written = self.contents.set_caption(content_id, caption, tags)  # False: another delivery's won
        self._retag(content_id, refs)  # twice changes nothing; never is what must not happen
        return f"captioned: {len(tags)} keywords" if written else "captioned meanwhile: holders re-tagged"

    def _tags(self, caption: str, embedding: NDArray[np.float32]) -> tuple[TagScore, ...]:
        """The keywords the image confirms, as tags. One that names a vocabulary tag joins it only
        where that tag passes its own threshold on the image (its score is the tag's, as the model
        scores it): a caption never gives a vocabulary tag the model would withhold."""
        confirmed = keywords(caption, self.embed_text, embedding, self.threshold, self.transform)
        found = []
        for name, k in joined(confirmed, self.resolve):
            score = k.score if self.resolve(name) is None else self.tag_score(name, embedding)
            if score is not None:
                found.append(TagScore(name, round(score, 6), "caption"))
        return tuple(found)

    def _retag(self, content_id: str, refs: list[str]) -> None:
        self.retags.request(refs)
        self.retags.later(content_id)  # holders the content index shows only later

    def _embedded(self, content_id: str) -> ContentRecord | None:
        deadline = time.monotonic() + self.wait_s
        while (found := self.contents.get_many([content_id]).get(content_id)) is None or found.embedding is None:
            if time.monotonic() >= deadline:
                return found
            time.sleep(0.25)
        return found

    def _read(self, content_id: str, refs: list[str]) -> bytes | None:
        """The bytes, from the first holder that still has them (the same content id)."""
        for ref in refs:
            bucket, key = keys.split_ref(ref)
            try:
                got = self.reader.read(bucket, key, self.limits.max_bytes)
            except (ObjectGone, ObjectChanged, PermanentError):
                continue
            if digest(got.data) == content_id:  # overwritten since: not these bytes
                return got.data
        return None
