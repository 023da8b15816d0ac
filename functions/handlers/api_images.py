"""GET /images: listings of objects that are not one tag's.

GET /images?status=failed                  objects that could not be tagged, newest first
GET /images?all=dog,beach&none=indoor      objects with every tag of all and none of none, best
                                           first by the weakest of their all scores (cliptag.combined)

The combined listing says which plan answered it and what it read; a query that every plan
would need more than the bound to answer is a 400 saying why. (No ``from __future__ import
annotations`` here: the validator reads the annotations.)
"""

from typing import Annotated, Literal

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.exceptions import BadRequestError
from aws_lambda_powertools.event_handler.openapi.params import Query
from cliptag import wiring
from cliptag.combined import MAX_TAGS, CombinedPage, parse_tags
from cliptag.lexicon import MAX_TAG_LENGTH
from cliptag.queries import FailurePage

from handlers.api_common import Limit, MinScore, NextToken, filter_tag

router = Router()  # type: ignore[no-untyped-call]
TagList = Annotated[
    str | None,
    Query(
        max_length=MAX_TAGS * (MAX_TAG_LENGTH + 1),
        description=f"tags, comma-separated (up to {MAX_TAGS}; any case, synonyms, places and caption keywords too)",
    ),
]


def _tags(text: str | None, what: str) -> tuple[str, ...]:
    names = parse_tags(text)
    if len(names) > MAX_TAGS:
        raise BadRequestError(f"{what}: at most {MAX_TAGS} tags")
    return tuple(dict.fromkeys(filter_tag(name) for name in names))


@router.get(
    "/images",
    summary="Objects that failed (status=failed), or with every tag of all and none of none, best first",
    responses={400: {"description": "neither status nor all, or a query broader than the bound (says why)"}},
)
def images(
    status: Annotated[Literal["failed"] | None, Query(description="failed: objects that could not be tagged")] = None,
    all: TagList = None,
    none: TagList = None,
    min_score: MinScore = -1.0,
    limit: Limit = 20,
    next_token: NextToken = None,
) -> FailurePage | CombinedPage:
    if status == "failed":
        if all or none:
            raise BadRequestError("status=failed lists failed objects: it takes no tags")
        return wiring.queries().failed_images(limit, next_token)
    wanted = _tags(all, "all")
    if not wanted:
        raise BadRequestError("say which images: status=failed, or all=tag1,tag2 (and none=tag3 to exclude)")
    return wiring.combined().images(wanted, _tags(none, "none"), min_score, limit, next_token)
