"""What the API's routes share: the limits and types of their parameters (declared on the
parameters, so the OpenAPI document describes exactly what is enforced), names resolved against
the vocabulary, and the JSON errors. (No ``from __future__ import annotations`` here: the
validator reads the annotations at run time.)"""

from typing import Annotated, Any
from urllib.parse import unquote

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.exceptions import BadRequestError
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from cliptag import wiring
from cliptag.lexicon import MAX_TAG_LENGTH, TAG_PATTERN, fold

MAX_KEY_BYTES = 1024  # S3's own limit, on the decoded key
# What a failed constraint means, in words, for the parameters whose rule is a pattern.
HINTS = {
    "tag": f"tag must be 1..{MAX_TAG_LENGTH} letters, digits, spaces or simple punctuation",
    "name": f"name must be 1..{MAX_TAG_LENGTH} letters, digits, spaces or simple punctuation",
}
MAX_QUERY_LENGTH = 300  # characters; CLIP reads at most 77 tokens of it anyway
KEY_DESCRIPTION = f"the object key, URL-encoded; at most {MAX_KEY_BYTES} bytes decoded"
IMAGE_ROUTES = ("tags", "similar", "duplicates")  # /images/{key}/<route>


class UnknownName(Exception):
    """A tag or category the vocabulary does not have; ``suggestions`` are its closest names."""

    def __init__(self, kind: str, name: str, suggestions: list[str]) -> None:
        super().__init__(f"unknown {kind} {name!r}")
        self.suggestions = suggestions


ImageKey = Annotated[
    str, Path(min_length=1, max_length=3 * MAX_KEY_BYTES, description=KEY_DESCRIPTION)  # 3 characters per byte
]
Limit = Annotated[int, Query(ge=1, le=100, description="how many images at most")]
NextToken = Annotated[str | None, Query(max_length=4096, description="from the previous page")]
MinScore = Annotated[
    float,
    Query(
        ge=-1.0,
        le=1.0,
        description="lowest score returned (a tag page lists images whose tag a person confirmed first, whatever"
        " their score)",
    ),
]
TagName = Annotated[
    str,
    Path(min_length=1, max_length=MAX_TAG_LENGTH, pattern=TAG_PATTERN, description="a tag or a synonym, any case"),
]
CategoryName = Annotated[
    str, Path(min_length=1, max_length=MAX_TAG_LENGTH, pattern=TAG_PATTERN, description="a category, any case")
]
# Search filters (tag and category names resolve like the paths above).
TagFilter = Annotated[str | None, Query(max_length=MAX_TAG_LENGTH, description="only images with this tag")]
CategoryFilter = Annotated[str | None, Query(max_length=MAX_TAG_LENGTH, description="only images in it")]
FolderFilter = Annotated[str | None, Query(max_length=MAX_KEY_BYTES, description="only keys under this folder")]


def object_key_of(key: str) -> str:
    object_key = unquote(key)
    if len(object_key.encode("utf-8")) > MAX_KEY_BYTES:  # the byte limit has no OpenAPI form
        raise BadRequestError(f"key must be 1..{MAX_KEY_BYTES} bytes")
    return object_key


def vocabulary_tag(name: str) -> str:
    """The tag ``name`` means: a vocabulary tag, a synonym, or a tag taught by example (a name
    not found has the taught list read again: a tag taught a moment ago is found at once)."""
    tag = wiring.lexicon().tag(name)
    if tag is None and (tag := (lexicon := wiring.lexicon(fresh=True)).tag(name)) is None:
        raise UnknownName("tag", name.strip(), lexicon.suggest_tags(name))
    return tag


def filter_tag(name: str) -> str:
    """A tag to filter by: ``vocabulary_tag``'s, or else an open tag (a place, a caption's
    keyword) by its folded name, when the tag index holds an object carrying it (a Query a shard);
    UnknownName, with suggestions, when neither."""
    try:
        return vocabulary_tag(name)
    except UnknownName:
        folded, index = fold(name), wiring.tag_index()
        if folded and index.page(folded, -1.0, 1, [None] * index.shards)[0]:
            return folded
        raise


def vocabulary_category(name: str) -> str:
    category = wiring.lexicon().category(name)
    if category is None and (category := (lexicon := wiring.lexicon(fresh=True)).category(name)) is None:
        raise UnknownName("category", name.strip(), lexicon.suggest_categories(name))
    return category


def error(status: int, message: str) -> Response[Any]:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body={"error": message})
