"""The composition root: builds the long-lived objects of a Lambda container once, from Settings.

Everything is created on first use and cached for the container's life, so a warm call redoes
nothing; the model itself comes from ``cliptag.loading``, which the tagger starts loading while
its handler module is still importing. This is the one module that joins the domain to its
adapters. Tests and the local stack call ``reset()`` after changing the environment;
``cliptag.snapstart`` calls ``renew_clients()`` after a snapshot is restored.
"""

from __future__ import annotations

import logging
import time
from functools import cache

import numpy as np
from botocore.exceptions import BotoCoreError, ClientError
from numpy.typing import NDArray

from cliptag import caption_wiring, keys, loading, tagger_wiring
from cliptag.adapters import s3, s3vectors
from cliptag.adapters.dynamodb import (
    DynamoContentCache,
    DynamoDecisions,
    DynamoDeployments,
    DynamoDuplicates,
    DynamoFailureIndex,
    DynamoObjectStore,
    DynamoTagIndex,
    DynamoTaughtTags,
    Table,
)
from cliptag.adapters.sqs import SqsCaptionRequests, SqsRetagRequests
from cliptag.combined import CombinedQueries
from cliptag.decisions import Corrections
from cliptag.errors import TransientError
from cliptag.lexicon import Lexicon
from cliptag.loading import bundle, image_encoder, settings, text_encoder
from cliptag.pipeline import TaggingPipeline
from cliptag.queries import TagQueries
from cliptag.records import Deployment
from cliptag.scoring import TagScorer, scoring_version
from cliptag.search import Search
from cliptag.taught import LiveCategories, TaughtCache, active
from cliptag.tokens import PageTokens

__all__ = [
    "bundle",
    "image_encoder",
    "lexicon",
    "pipeline",
    "queries",
    "renew_clients",
    "reset",
    "search",
    "settings",
    "table",
    "taught",
    "text_encoder",
]


@cache
def table() -> Table:
    return Table(settings().table_name)


@cache
def reader() -> s3.S3ObjectReader:
    return s3.S3ObjectReader()


@cache
def objects() -> DynamoObjectStore:
    # The table's first model is read when the store first writes (a failure there retries that
    # message), not here: a cold start with the table out of reach still loads the model.
    return DynamoObjectStore(table(), shards=settings().tag_index_shards, legacy_model=legacy_model)


_legacy: list[str] = []  # the table's first model, once read from the table


def legacy_model() -> str:
    """The table's first model, whose records keep the tag index's original partitions (the
    deployment records it; before any deployment, this model). Another model's records go to
    partitions of their own, so a switch of model never mixes two models in one page. Kept once
    read from the table; a guess (no deployment recorded yet) is asked again next time."""
    if _legacy:
        return _legacy[0]
    try:
        found = DynamoDeployments(table()).get()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
            raise  # which partitions to write cannot be guessed: the message is retried
        found = None  # no table (an in-memory bench): nothing to keep apart
    if found is None:
        return bundle().model_key
    _legacy.append(found.legacy_model)
    return found.legacy_model


def min_score() -> float:
    b, s = bundle(), settings()
    return b.default_threshold if s.min_score is None else s.min_score


@cache
def scorer() -> TagScorer:
    b = bundle()
    per_tag = [t.threshold for t in b.vocabulary.tags]
    return TagScorer.build(
        b.vocabulary.names, b.tag_embeddings, per_tag, min_score(), settings().top_k, b.score_transform
    )


@cache
def deployment() -> Deployment:
    b, top_k, threshold, index = bundle(), settings().top_k, min_score(), settings().vector_index
    s = settings()
    scored_by = scoring_version(b.vocabulary.version, top_k, threshold, index, s.place_tags, s.write_back)
    return Deployment(b.model_key, b.vocabulary.version, scored_by, top_k, threshold, index)


@cache
def vocabulary_lexicon() -> Lexicon:
    """The deployed vocabulary's names, without taught tags."""
    return Lexicon(bundle().vocabulary)


TAUGHT_NAMES_MAX_AGE_S = 30.0  # how long the API trusts its list of taught tags (unknown names re-read it)
_taught_names: list[tuple[float, Lexicon]] = []  # (when read, the lexicon with them)


def lexicon(fresh: bool = False) -> Lexicon:
    """The vocabulary's names and the taught tags' (the API's view: the taught list is read again
    after TAUGHT_NAMES_MAX_AGE_S, or at once with ``fresh``, for a name not found)."""
    now = time.monotonic()
    if _taught_names and not fresh and now - _taught_names[0][0] < TAUGHT_NAMES_MAX_AGE_S:
        return _taught_names[0][1]
    static = vocabulary_lexicon()
    try:
        entries = active(taught_store().head(), bundle().model_key, static.folded)
    except (TransientError, ClientError, BotoCoreError) as exc:  # the vocabulary still answers
        logging.getLogger(__name__).warning("could not read the taught tags: %s", exc)
        return _taught_names[0][1] if _taught_names else static
    found = Lexicon(bundle().vocabulary, {name: e.category for name, e in entries.items()})
    _taught_names[:] = [(now, found)]
    return found


@cache
def taught_store() -> DynamoTaughtTags:
    return DynamoTaughtTags(table())


@cache
def taught() -> TaughtCache:
    """The tagger's taught tags: the head is read on every batch (one consistent read)."""
    return TaughtCache(taught_store(), bundle().model_key, vocabulary_lexicon().folded)


@cache
def categories() -> LiveCategories:
    return LiveCategories(vocabulary_lexicon().category_of, taught())


@cache
def vector_index() -> s3vectors.S3VectorIndex | None:
    s = settings()
    return s3vectors.S3VectorIndex(s.vector_bucket, s.vector_index) if s.vector_bucket and s.vector_index else None


@cache
def contents() -> DynamoContentCache:
    return DynamoContentCache(table(), bundle().model_key)


@cache
def duplicates() -> DynamoDuplicates | None:
    return DynamoDuplicates(table()) if settings().near_duplicates else None


def near_duplicate_threshold() -> float:
    """The NearDuplicateThreshold parameter, else the figure the export chose for this model."""
    s = settings()
    return s.near_duplicate_threshold if s.near_duplicate_threshold is not None else bundle().near_duplicate_threshold


def pipeline() -> TaggingPipeline:
    """The tagger's pipeline (built by cliptag.tagger_wiring, once per container)."""
    return tagger_wiring.pipeline()


@cache
def page_tokens() -> PageTokens:
    """Signs pagination tokens with the stack's secret, fetched once per container."""
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    arn = settings().token_secret_arn
    if not arn:
        raise RuntimeError("TOKEN_SECRET_ARN is not set: the API cannot sign pagination tokens")
    # A provider of our own, not Powertools' module-wide default: its client belongs to this
    # build, so reset() (a redeployed container, another local stack) starts a new one.
    secret = SecretsProvider().get(arn, max_age=3600)
    if isinstance(secret, str):
        return PageTokens(secret.encode("utf-8"))
    if isinstance(secret, bytes):
        return PageTokens(secret)
    raise RuntimeError(f"{arn}: the pagination secret must be a string")


@cache
def tag_index() -> DynamoTagIndex:
    # The API's manifest is the tagger's (its layer's); the table's first model is read at the query.
    space = lambda: keys.tag_space(bundle().model_key, legacy_model())  # noqa: E731
    return DynamoTagIndex(table(), settings().tag_index_shards, space)


@cache
def queries() -> TagQueries:
    s = settings()
    return TagQueries(s.images_bucket, objects(), tag_index(), DynamoFailureIndex(table()), page_tokens())


@cache
def combined() -> CombinedQueries:
    """Listings by several tags: the tag index and records, or the search index's filter."""
    found = search()
    return CombinedQueries(tag_index(), objects(), page_tokens(), found.near_tags if found is not None else None)


@cache
def search() -> Search | None:
    """Search by meaning, when the stack has a vector index (None otherwise)."""
    index = vector_index()
    if index is None:
        return None
    model = bundle().model_key
    space = lambda: keys.tag_space(model, legacy_model())  # noqa: E731 (read at the query, like the tag index's)
    return Search(settings().images_bucket, index, objects(), embed_query, duplicates(), model, space, tag_vector)


def tag_vector(name: str) -> NDArray[np.float32] | None:
    """A vocabulary tag's embedding (the export's, from the model layer); None for a taught tag."""
    position = scorer().positions.get(name)
    return None if position is None else bundle().tag_embeddings[position]


@cache
def decisions() -> DynamoDecisions:
    return DynamoDecisions(table())


@cache
def retag_requests() -> SqsRetagRequests:
    return SqsRetagRequests(settings().tagging_queue_url, later_s=settings().decision_recheck_s)


@cache
def corrections() -> Corrections:
    """Confirm and reject tags (the API); a stack without a queue URL cannot re-tag: refused."""
    if not settings().tagging_queue_url:
        raise RuntimeError("TAGGING_QUEUE_URL is not set: the API cannot have decisions applied")
    return Corrections(settings().images_bucket, objects(), decisions(), retag_requests())


def embed_query(texts: list[str]) -> NDArray[np.float32]:
    """The text encoder, loaded on the first search by text: similar images and near-duplicates
    work without it (an API whose text encoder lives only in S3, loading.NoTextEncoder)."""
    return text_encoder().embed(texts)


def renew_clients() -> None:
    """New boto3 clients in the adapters already built (after a SnapStart restore: the snapshot's
    clients hold its credentials and pooled connections, neither valid in the restored copy)."""
    if table.cache_info().currsize:
        table().client = Table(table().name).client
    if reader.cache_info().currsize:
        reader().client = s3.client()
    if caption_wiring.caption_requests.cache_info().currsize and (sender := caption_wiring.caption_requests()):
        sender.client = SqsCaptionRequests(settings().caption_queue_url).client
    if tagger_wiring.write_back.cache_info().currsize and (writer := tagger_wiring.write_back()) is not None:
        writer.store = s3.S3MetadataStore()
    if vector_index.cache_info().currsize and (index := vector_index()) is not None:
        index.client = s3vectors.client()
    if retag_requests.cache_info().currsize:
        retag_requests().client = SqsRetagRequests(settings().tagging_queue_url).client


def reset() -> None:
    loading.reset()
    caption_wiring.reset()
    tagger_wiring.reset()
    _legacy.clear()
    _taught_names.clear()
    for fn in (
        table,
        reader,
        objects,
        scorer,
        deployment,
        vocabulary_lexicon,
        taught_store,
        taught,
        categories,
        contents,
        vector_index,
        duplicates,
        decisions,
        retag_requests,
        corrections,
        page_tokens,
        queries,
        combined,
        search,
        tag_index,
    ):
        fn.cache_clear()
