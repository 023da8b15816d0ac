"""The caption function's composition root (Captions=On): its caption model, the CLIP text encoder
for keywords (the API's model layer), and the table, bucket and queue it shares with the tagger.
Built once per container; ``cliptag.wiring.reset()`` clears it too."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from cliptag import wiring
from cliptag.adapters.sqs import SqsCaptionRequests
from cliptag.captioning import MANIFEST, Captioner
from cliptag.captions import CaptionService
from cliptag.imaging import Limits

TMP_CAPTION_DIR = "/tmp/cliptag-captions"


@cache
def captioner() -> Captioner:
    """The caption model: from CAPTION_MODEL_S3_URI into /tmp (too big for a layer beside the
    runtime, the tokenizers and the CLIP text encoder), or a local directory (CAPTION_MODEL_DIR)."""
    s = wiring.settings()
    if not s.caption_model_s3_uri:
        return Captioner(Path(s.caption_model_dir), threads=s.inference_threads)
    from cliptag.adapters.s3 import ModelFiles

    files = ModelFiles(s.caption_model_s3_uri, Path(TMP_CAPTION_DIR))
    manifest = json.loads(files.fetch(MANIFEST).read_text("utf-8"))
    for name in manifest["files"].values():
        files.fetch(name)
    return Captioner(Path(TMP_CAPTION_DIR), threads=s.inference_threads)


@cache
def service() -> CaptionService:
    threshold = wiring.min_score()
    return CaptionService(
        captioner=captioner(),
        embed_text=wiring.embed_query,
        resolve=wiring.vocabulary_lexicon().tag,
        threshold=None if threshold <= -1.0 else threshold,  # random weights: no threshold chosen
        contents=wiring.contents(),
        reader=wiring.reader(),
        holders=wiring.decisions().holders,
        retags=wiring.retag_requests(),
        tag_score=tag_score,
        transform=wiring.bundle().score_transform,
        limits=Limits(max_bytes=wiring.settings().max_object_bytes, max_pixels=wiring.settings().max_pixels),
    )


def tag_score(tag: str, embedding: NDArray[np.float32]) -> float | None:
    """A vocabulary tag's score on a stored embedding, if it passes the tag's own threshold."""
    scorer = wiring.scorer()
    position = scorer.positions.get(tag)
    if position is None:
        return None
    value = float(scorer.scores(embedding[None, :])[0][position])
    return value if value >= float(scorer.thresholds[position]) else None


@cache
def caption_requests() -> SqsCaptionRequests | None:
    """The tagger's side: where new contents are sent (CAPTION_QUEUE_URL); None when Captions is Off."""
    url = wiring.settings().caption_queue_url
    return SqsCaptionRequests(url) if url else None


def reset() -> None:
    for fn in (captioner, service, caption_requests):
        fn.cache_clear()
