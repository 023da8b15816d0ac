"""The API's searches by meaning (S3 Vectors), each hit checked against its record.

GET /search?q=&minus=&like=&tag=&not_tag=&category=&prefix=&min_score=&limit=
    free text; minus words (rclip's arithmetic: the query's embedding minus theirs); an image
    plus words (``like`` a key, with or without ``q``); only images with every ``tag`` and none
    of the ``not_tag`` (repeat them), in a category, under a folder
GET /images/{key}/similar         images like this one, from its stored vector
GET /images/{key}/duplicates      its near-duplicates

(No ``from __future__ import annotations`` here: the validator reads the annotations.)
"""

from typing import Annotated, Any

from aws_lambda_powertools import Tracer
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.exceptions import BadRequestError, NotFoundError
from aws_lambda_powertools.event_handler.openapi.params import Query
from cliptag import wiring
from cliptag.keys import VECTOR_FOLDERS_MAX
from cliptag.lexicon import MAX_TAG_LENGTH
from cliptag.records import VectorFilter
from cliptag.search import CancelledQuery, Duplicates, SearchResults

from handlers.api_common import (
    MAX_KEY_BYTES,
    MAX_QUERY_LENGTH,
    CategoryFilter,
    FolderFilter,
    ImageKey,
    Limit,
    MinScore,
    TagFilter,
    filter_tag,
    object_key_of,
    vocabulary_category,
)

router = Router()  # type: ignore[no-untyped-call]
tracer = Tracer(service="cliptag-api")
MAX_TAGS = 5  # tags and not_tags each: S3 Vectors' filter takes them in one $and
MAX_MINUS = 3  # each is one more text embedding (~7 ms)
Tags = Annotated[
    list[str] | None,
    Query(max_length=MAX_TAGS, description=f"only images with every one of these tags (repeat it, up to {MAX_TAGS})"),
]
NotTags = Annotated[
    list[str] | None,
    Query(max_length=MAX_TAGS, description=f"only images with none of these tags (repeat it, up to {MAX_TAGS})"),
]
Minus = Annotated[
    list[str] | None,
    Query(max_length=MAX_MINUS, description=f"words to steer away from (repeat it, up to {MAX_MINUS})"),
]
Like = Annotated[
    str | None, Query(max_length=3 * MAX_KEY_BYTES, description="an image key: images like it (plus q's words)")
]
Text = Annotated[str | None, Query(max_length=MAX_QUERY_LENGTH, description="what to look for, in words")]


def _search() -> Any:
    search = wiring.search()
    if search is None:
        raise NotFoundError("search is not deployed in this stack (no vector index)")
    return search


def _names(values: list[str] | None, what: str) -> tuple[str, ...]:
    given = [v for v in values or [] if v.strip()]  # a blank one is no condition, like a blank category
    for value in given:
        if len(value) > MAX_TAG_LENGTH:
            raise BadRequestError(f"{what} must be 1..{MAX_TAG_LENGTH} characters")
    return tuple(dict.fromkeys(filter_tag(v) for v in given))


def _filter(
    tag: list[str] | str | None,
    category: str | None,
    prefix: str | None,
    not_tag: list[str] | None = None,
) -> VectorFilter | None:
    tags = _names([tag] if isinstance(tag, str) else tag, "tag")
    not_tags = _names(not_tag, "not_tag")
    if set(tags) & set(not_tags):
        raise BadRequestError(
            f"a tag cannot be both wanted and excluded: {', '.join(sorted(set(tags) & set(not_tags)))}"
        )
    if not (tags or not_tags or category or prefix):
        return None
    if prefix and not prefix.endswith("/"):
        raise BadRequestError("prefix must be a folder: a key prefix ending in '/'")
    if prefix and prefix.count("/") > VECTOR_FOLDERS_MAX:
        raise BadRequestError(f"prefix may be at most {VECTOR_FOLDERS_MAX} folders deep (the index keeps no deeper)")
    return VectorFilter(
        category=vocabulary_category(category) if category else None,
        folder=prefix or None,
        tags=tags,
        not_tags=not_tags,
    )


@router.get(
    "/images/<key>/similar",
    summary="Images like this one, most similar first",
    responses={404: {"description": "unknown key, or not in the search index"}},
)
@tracer.capture_method
def similar_images(
    key: ImageKey,
    limit: Limit = 20,
    tag: TagFilter = None,
    category: CategoryFilter = None,
    prefix: FolderFilter = None,
) -> SearchResults:
    object_key = object_key_of(key)
    found = _search().similar(object_key, limit, _filter(tag, category, prefix))
    if found is None:
        raise NotFoundError(f"{object_key!r} is not in the search index (unknown, failed, or not indexed yet)")
    result: SearchResults = found
    return result


@router.get(
    "/images/<key>/duplicates",
    summary="Near-duplicates of one image (resized, recompressed, cropped copies)",
    responses={404: {"description": "unknown key"}},
)
@tracer.capture_method
def image_duplicates(key: ImageKey) -> Duplicates:
    object_key = object_key_of(key)
    found = _search().duplicates(object_key)
    if found is None:
        raise NotFoundError(f"no record for key {object_key!r}")
    result: Duplicates = found
    return result


@router.get(
    "/search",
    summary="Images by meaning: words, words minus words, an image plus words; most similar first",
    responses={404: {"description": "unknown tag or category (with suggestions), or `like` not in the index"}},
)
@tracer.capture_method
def search_images(
    q: Text = None,
    limit: Limit = 20,
    tag: Tags = None,
    not_tag: NotTags = None,
    category: CategoryFilter = None,
    prefix: FolderFilter = None,
    min_score: MinScore = -1.0,
    minus: Minus = None,
    like: Like = None,
) -> SearchResults:
    words = (q or "").strip()
    if not words and not like:
        raise BadRequestError("q (words) or like (an image key) is required")
    if any(not m.strip() or len(m) > MAX_QUERY_LENGTH for m in minus or []):
        raise BadRequestError(f"minus must be 1..{MAX_QUERY_LENGTH} characters")
    where = _filter(tag, category, prefix, not_tag)
    if like is not None and not 0 < len(like.encode("utf-8")) <= MAX_KEY_BYTES:  # a query value arrives decoded
        raise BadRequestError(f"like must be a key of 1..{MAX_KEY_BYTES} bytes")
    liked = like or None
    try:
        found = _search().combined(words, limit, where, min_score, [m.strip() for m in minus or []], liked)
    except CancelledQuery as exc:
        raise BadRequestError(str(exc)) from exc
    if found is None:
        raise NotFoundError(f"{liked!r} is not in the search index (unknown, failed, or not indexed yet)")
    result: SearchResults = found
    return result
