"""The composition root: builds the long-lived objects of a Lambda container once, from Settings.

Everything is created on first use and cached for the container's life, so a warm call redoes
nothing; the model itself comes from ``cliptag.loading``, which the tagger starts loading while
its handler module is still importing. This is the one module that joins the domain to its
adapters. Tests and the local stack call ``reset()`` after changing the environment;
``cliptag.snapstart`` calls ``renew_clients()`` after a snapshot is restored.
"""

from __future__ import annotations

from functools import cache

from cliptag import loading
from cliptag.adapters import s3
from cliptag.adapters.dynamodb import DynamoContentCache, DynamoObjectStore, DynamoTagIndex, Table
from cliptag.imaging import Limits
from cliptag.loading import bundle, image_encoder, settings
from cliptag.pipeline import TaggingPipeline
from cliptag.queries import TagQueries
from cliptag.scoring import TagScorer
from cliptag.tokens import PageTokens

__all__ = ["bundle", "image_encoder", "pipeline", "queries", "renew_clients", "reset", "settings", "table"]


@cache
def table() -> Table:
    return Table(settings().table_name)


@cache
def reader() -> s3.S3ObjectReader:
    return s3.S3ObjectReader()


@cache
def objects() -> DynamoObjectStore:
    return DynamoObjectStore(table(), shards=settings().tag_index_shards)


@cache
def scorer() -> TagScorer:
    b, s = bundle(), settings()
    return TagScorer.build(
        names=b.vocabulary.names,
        tag_embeddings=b.tag_embeddings,
        per_tag=[t.threshold for t in b.vocabulary.tags],
        min_score=b.default_threshold if s.min_score is None else s.min_score,
        top_k=s.top_k,
    )


@cache
def pipeline() -> TaggingPipeline:
    # The AWS clients first: building them (~0.2 s of botocore JSON) overlaps the model load that
    # cliptag.loading may already be running on its thread; image_encoder() then waits for it.
    source, store = reader(), objects()
    b, s = bundle(), settings()
    return TaggingPipeline(
        encoder=image_encoder(),
        scorer=scorer(),
        preprocessing=b.preprocessing,
        model_key=b.model_key,
        vocabulary_version=b.vocabulary.version,
        reader=source,
        contents=DynamoContentCache(table(), b.model_key),
        objects=store,
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


@cache
def queries() -> TagQueries:
    s = settings()
    return TagQueries(s.images_bucket, objects(), DynamoTagIndex(table(), s.tag_index_shards), page_tokens())


def renew_clients() -> None:
    """New boto3 clients in the adapters already built (after a SnapStart restore: the snapshot's
    clients hold its credentials and pooled connections, neither valid in the restored copy)."""
    if table.cache_info().currsize:
        table().client = Table(table().name).client
    if reader.cache_info().currsize:
        reader().client = s3.client()


def reset() -> None:
    loading.reset()
    for fn in (table, reader, objects, scorer, pipeline, page_tokens, queries):
        fn.cache_clear()
