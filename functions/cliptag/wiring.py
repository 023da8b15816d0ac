"""Builds the long-lived objects of a Lambda container once (the cold start) from Settings.

Everything is created on first use and cached for the container's life, so a warm call redoes
nothing. Tests and the local stack call ``reset()`` after changing the environment.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

from cliptag.bundle import ModelBundle
from cliptag.config import Settings
from cliptag.encoder import ImageEncoder
from cliptag.imaging import Limits
from cliptag.objects import ObjectSource, download_prefix
from cliptag.scoring import TagScorer
from cliptag.store import TagStore
from cliptag.tagging import Tagger
from cliptag.tokens import PageTokens

# Lambda's writable disk, for MODEL_S3_URI (CLIPTAG_TMP_MODEL_DIR moves it, for tests).
TMP_MODEL_DIR = "/tmp/cliptag-model"


@cache
def settings() -> Settings:
    return Settings()


@cache
def bundle() -> ModelBundle:
    s = settings()
    tmp_dir = Path(os.environ.get("CLIPTAG_TMP_MODEL_DIR", TMP_MODEL_DIR))
    root = download_prefix(s.model_s3_uri, tmp_dir) if s.model_s3_uri else Path(s.model_dir)
    return ModelBundle.open(root)


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
    b, s = bundle(), settings()
    return Tagger(
        encoder=ImageEncoder(b.image_encoder_path(), threads=s.inference_threads),
        scorer=scorer(),
        preprocessing=b.preprocessing,
        model_key=b.model_key,
        vocabulary_version=b.vocabulary.version,
        source=ObjectSource(),
        store=store(),
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
    for fn in (settings, bundle, store, scorer, tagger, page_tokens):
        fn.cache_clear()
