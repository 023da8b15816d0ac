"""Builds the long-lived objects of a Lambda container once (the cold start) from Settings.

Everything is created on first use and cached for the container's life, so a warm call redoes
nothing; the model itself comes from ``cliptag.loading``, which the tagger starts loading while
its handler module is still importing. Tests and the local stack call ``reset()`` after
changing the environment.
"""

from __future__ import annotations

from functools import cache

from cliptag import loading
from cliptag.imaging import Limits
from cliptag.loading import bundle, image_encoder, settings
from cliptag.objects import ObjectSource
from cliptag.scoring import TagScorer
from cliptag.store import TagStore
from cliptag.tagging import Tagger
from cliptag.tokens import PageTokens

__all__ = ["bundle", "image_encoder", "page_tokens", "reset", "scorer", "settings", "store", "tagger"]


@cache
def store() -> TagStore:
    s = settings()
    return TagStore(s.table_name, shards=s.tag_index_shards)


@cache
def scorer() -> TagScorer:
    b, s = bundle(), settings()
    vocab = b.vocabulary
    return TagScorer.build(
        names=vocab.names,
        tag_embeddings=b.tag_embeddings,
        per_tag=[t.threshold for t in vocab.tags],
        min_score=b.default_threshold if s.min_score is None else s.min_score,
        top_k=s.top_k,
    )


@cache
def tagger() -> Tagger:
    # The AWS clients first: building them (~0.2 s of botocore JSON) overlaps the model load that
    # cliptag.loading may already be running on its thread; image_encoder() then waits for it.
    source, table = ObjectSource(), store()
    b, s = bundle(), settings()
    return Tagger(
        encoder=image_encoder(),
        scorer=scorer(),
        preprocessing=b.preprocessing,
        model_key=b.model_key,
        vocabulary_version=b.vocabulary.version,
        source=source,
        store=table,
        limits=Limits(max_bytes=s.max_object_bytes, max_pixels=s.max_pixels),
    )


@cache
def page_tokens() -> PageTokens:
    """Signs pagination tokens with the stack's secret, fetched once per container."""
    from aws_lambda_powertools.utilities import parameters

    arn = settings().token_secret_arn
    if not arn:
        raise RuntimeError("TOKEN_SECRET_ARN is not set: the API cannot sign pagination tokens")
    secret = parameters.get_secret(arn, max_age=3600)
    return PageTokens(secret.encode("utf-8") if isinstance(secret, str) else bytes(secret))


def reset() -> None:
    loading.reset()
    for fn in (store, scorer, tagger, page_tokens):
        fn.cache_clear()
