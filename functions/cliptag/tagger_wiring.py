"""The tagger's part of the composition root: its pipeline and what only it uses (the search
index sync, place tags, write-back, caption requests). Built once per container from
``cliptag.wiring``'s shared pieces, which re-exports these; ``wiring.reset()`` clears them too."""

from __future__ import annotations

import dataclasses
import logging
from functools import cache
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from cliptag import caption_wiring, keys, wiring
from cliptag.adapters import s3
from cliptag.adapters.dynamodb import DynamoDeployments
from cliptag.config import objects_in_memory, writes
from cliptag.errors import TransientError
from cliptag.imaging import Limits
from cliptag.pipeline import TaggingPipeline
from cliptag.places import PlaceTagger
from cliptag.records import ObjectRecord
from cliptag.vectors import VectorSync
from cliptag.writeback import WriteBack


@cache
def vector_sync() -> VectorSync | None:
    index = wiring.vector_index()
    if index is None:
        return None
    found = wiring.duplicates()
    threshold = wiring.near_duplicate_threshold() if found is not None else 1.0
    return VectorSync(
        index,
        wiring.categories(),
        wiring.objects(),
        wiring.contents(),
        duplicates=found,
        threshold=threshold,
        model=wiring.bundle().model_key,
        space_of=lambda model: keys.tag_space(model, wiring.legacy_model()),
    )


@cache
def places() -> PlaceTagger | None:
    """Place tags (PlaceTags=On); a place name the vocabulary uses is qualified, never merged."""
    s = wiring.settings()
    return PlaceTagger(Path(s.places_data), wiring.vocabulary_lexicon().folded) if s.place_tags else None


@cache
def write_back() -> WriteBack | None:
    """Tags written back to S3 (WriteBack=ObjectTags, Sidecar or both); None when Off."""
    s = wiring.settings()
    tags, sidecars = writes(s.write_back, "ObjectTags"), writes(s.write_back, "Sidecar")
    if not (tags or sidecars):
        return None

    def current(bucket: str, key: str) -> ObjectRecord | None:  # a consistent read (BatchGetItem)
        ref = keys.object_ref(bucket, key)
        return wiring.objects().get_many([ref]).get(ref)

    return WriteBack(s3.S3MetadataStore(), tags, sidecars, s.sidecar_prefix, wiring.categories(), current=current)


@cache
def pipeline() -> TaggingPipeline:
    # The AWS clients first: building them (~0.2 s of botocore JSON) overlaps the model load that
    # cliptag.loading may already be running on its thread; wiring.image_encoder() then waits for it.
    source, store = wiring.reader(), wiring.objects()
    b, s, runs = wiring.bundle(), wiring.settings(), wiring.deployment()
    try:  # so `cliptag retag` knows what is deployed; a failure here must not stop tagging
        DynamoDeployments(wiring.table()).record(dataclasses.replace(runs, legacy_model=wiring.legacy_model()))
    except (TransientError, ClientError, BotoCoreError) as exc:
        logging.getLogger(__name__).warning("could not record the deployment: %s", exc)
    return TaggingPipeline(
        encoder=wiring.image_encoder(),
        scorer=wiring.scorer(),
        preprocessing=b.preprocessing,
        model_key=b.model_key,
        vocabulary_version=b.vocabulary.version,
        scoring=runs.scoring,
        reader=source,
        contents=wiring.contents(),
        objects=store,
        categories=wiring.categories(),
        vectors=vector_sync(),
        decisions=wiring.decisions(),
        taught=wiring.taught(),
        places=places(),
        write_back=write_back(),
        sidecar_prefix=s.sidecar_prefix,
        captions=caption_wiring.caption_requests(),
        limits=Limits(max_bytes=s.max_object_bytes, max_pixels=s.max_pixels),
        read_wave=objects_in_memory(s.max_object_bytes),
    )


def reset() -> None:
    for fn in (vector_sync, places, write_back, pipeline):
        fn.cache_clear()
