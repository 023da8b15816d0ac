"""API Lambda: tag queries over DynamoDB and search over S3 Vectors, behind API Gateway (IAM auth).

GET /images/{key}/tags            one object's tags (key URL-encoded; raw slashes work too)
GET /images?status=failed         objects that could not be tagged, with the reasons, newest first
GET /images?all=&none=            objects with every tag of all, none of none (handlers.api_images)
GET /tags/{tag}/images            objects with a tag (any case, a synonym, a place), best first, paginated
GET /categories/{name}/images     objects with any tag of a category, best first, paginated
GET /search, /images/{key}/similar, /images/{key}/duplicates   search (handlers.api_search)
GET /tags                         the vocabulary
PUT, DELETE /images/{key}/tags/{tag}  confirm or reject a tag (handlers.api_decisions)

An unknown tag or category answers 404 with up to five close matches in "suggestions".

Built on Powertools' event handler with validation: the limits below are declared on the
parameters, so ``openapi()`` describes exactly what is enforced. (No ``from __future__ import
annotations`` here: the validator reads the annotations at run time.)
"""

import contextlib
import os
import re
from typing import Any, Literal
from urllib.parse import quote, unquote

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, CORSConfig, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import BadRequestError, NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.utilities.typing import LambdaContext
from cliptag import loading, snapstart, wiring
from cliptag.combined import TooBroad
from cliptag.decisions import NotTagged
from cliptag.errors import TransientError
from cliptag.lexicon import TAG_PATTERN, fold
from cliptag.loading import NoTextEncoder
from cliptag.queries import TagPage
from cliptag.records import ObjectRecord
from cliptag.taught import active
from cliptag.tokens import BadToken
from pydantic import BaseModel

from handlers import api_decisions, api_images, api_search
from handlers.api_common import (
    HINTS,
    IMAGE_ROUTES,
    CategoryName,
    ImageKey,
    Limit,
    MinScore,
    NextToken,
    TagName,
    UnknownName,
    error,
    object_key_of,
    vocabulary_category,
    vocabulary_tag,
)

logger = Logger(service="cliptag-api")
tracer = Tracer(service="cliptag-api")


def _cors() -> CORSConfig | None:
    """CORS for one browser origin (CORS_ALLOW_ORIGIN); None, the default, leaves it off."""
    origin = wiring.settings().cors_allow_origin
    if not origin:
        return None
    # SigV4 headers, so a browser app holding temporary credentials can sign its calls.
    headers = ["Authorization", "Content-Type", "X-Amz-Date", "X-Amz-Security-Token", "X-Amz-Content-Sha256"]
    return CORSConfig(allow_origin=origin, allow_headers=headers, max_age=600)


app = APIGatewayRestResolver(enable_validation=True, cors=_cors())
app.include_router(api_decisions.router)
app.include_router(api_search.router)
app.include_router(api_images.router)


class Taught(BaseModel):
    """How a tag was taught by example (``cliptag teach``)."""

    method: str
    examples: int
    threshold: float
    precision: float
    recall: float
    at: int


class VocabularyTag(BaseModel):
    name: str
    category: str
    synonyms: list[str]
    source: Literal["vocabulary", "examples"] = "vocabulary"
    taught: Taught | None = None


class VocabularyListing(BaseModel):
    model: str
    vocabulary_version: str
    count: int
    tags: list[VocabularyTag]


@app.exception_handler(RequestValidationError)
def _bad_request(exc: RequestValidationError) -> Response[Any]:
    problems = []
    for e in exc.errors():
        field = ".".join(str(p) for p in e.get("loc", ())[1:]) or "request"
        problems.append(HINTS.get(field) or f"{field}: {e.get('msg')}")
    return error(400, "; ".join(problems) or "invalid request")


@app.exception_handler(NotFoundError)
def _not_found(exc: NotFoundError) -> Response[Any]:
    return error(404, str(exc) or "not found")


@app.exception_handler(BadRequestError)
def _bad_parameter(exc: BadRequestError) -> Response[Any]:
    return error(400, str(exc.msg))


@app.exception_handler(UnknownName)
def _unknown_name(exc: UnknownName) -> Response[Any]:
    body = {"error": str(exc), "suggestions": exc.suggestions}
    return Response(status_code=404, content_type=content_types.APPLICATION_JSON, body=body)


@app.exception_handler(TooBroad)
def _too_broad(exc: TooBroad) -> Response[Any]:
    return error(400, str(exc))


@app.exception_handler(BadToken)
def _bad_token(exc: BadToken) -> Response[Any]:
    return error(400, f"next_token: {exc}")


@app.exception_handler(TransientError)
def _try_again(exc: TransientError) -> Response[Any]:
    """Throttling or a timeout behind the API: the caller may repeat the request (a decision too:
    recording it again changes nothing)."""
    logger.warning("answered 503", reason=str(exc))
    body = {"error": f"try again in a few seconds: {exc}"}
    headers = {"Retry-After": "2"}
    return Response(status_code=503, content_type=content_types.APPLICATION_JSON, body=body, headers=headers)


@app.exception_handler(NotTagged)
def _not_tagged(exc: NotTagged) -> Response[Any]:
    return error(409, str(exc))


@app.exception_handler(NoTextEncoder)
def _no_text_encoder(exc: NoTextEncoder) -> Response[Any]:
    return error(503, str(exc))


@app.get("/images/<key>/tags", summary="Tags of one object", responses={404: {"description": "unknown key"}})
@tracer.capture_method
def image_tags(key: ImageKey) -> ObjectRecord:
    object_key = object_key_of(key)
    record = wiring.queries().image(object_key)
    if record is None:
        raise NotFoundError(f"no tags for key {object_key!r}")
    return record


@app.get(
    "/tags/<tag>/images",
    summary="Objects carrying a tag, highest score first",
    responses={404: {"description": "unknown tag, with suggestions"}},
)
@tracer.capture_method
def tag_images(
    tag: TagName,
    min_score: MinScore = -1.0,
    limit: Limit = 20,
    next_token: NextToken = None,
) -> TagPage:
    try:
        name = vocabulary_tag(tag)
    except UnknownName as unknown:  # an open tag (a place), if any object carries it
        page = wiring.queries().images_with_open_tag(fold(tag), min_score, limit, next_token)
        if not page.images and page.next_token is None and next_token is None:
            raise unknown from None
        return page
    taught = name in wiring.lexicon().taught
    return wiring.queries().images_with_tag(name, min_score, limit, next_token, taught)


@app.get(
    "/categories/<name>/images",
    summary="Objects with any tag of a category, best first (by their best tag in it)",
    responses={404: {"description": "unknown category, with suggestions"}},
)
@tracer.capture_method
def category_images(
    name: CategoryName,
    min_score: MinScore = -1.0,
    limit: Limit = 20,
    next_token: NextToken = None,
) -> TagPage:
    category = vocabulary_category(name)
    tags = wiring.lexicon().tags_in(category)
    return wiring.queries().images_in_category(category, tags, min_score, limit, next_token)


@app.get("/tags", summary="The tag vocabulary, and the tags taught by example")
@tracer.capture_method
def vocabulary() -> VocabularyListing:
    bundle = wiring.bundle()
    vocab = bundle.vocabulary
    tags = [VocabularyTag(name=t.name, category=t.category, synonyms=list(t.synonyms)) for t in vocab.tags]
    try:
        taught = active(wiring.taught_store().head(), bundle.model_key, wiring.vocabulary_lexicon().folded)
    except TransientError as exc:  # the vocabulary still answers; taught tags show when the table does
        logger.warning("could not read the taught tags: %s", exc)
        taught = {}
    tags += [
        VocabularyTag(
            name=name,
            category=e.category,
            synonyms=[],
            source="examples",
            taught=Taught(
                method=e.method,
                examples=e.examples,
                threshold=e.threshold,
                precision=e.precision,
                recall=e.recall,
                at=e.at,
            ),
        )
        for name, e in sorted(taught.items())
    ]
    return VocabularyListing(model=bundle.model_key, vocabulary_version=vocab.version, count=len(tags), tags=tags)


def normalise_path(event: dict[str, Any]) -> dict[str, Any]:
    """One form of the path whichever way it arrived (API Gateway decodes it; a local server
    may not): an image key re-encoded whole, so its slashes stay inside one path segment (the
    greedy ``{key+}`` route); a tag or category decoded, so its limits apply to the name itself."""
    path = event.get("path") or ""
    parts = path.split("/")
    decision = event.get("httpMethod") in ("PUT", "DELETE")  # /images/{key}/tags/{tag}
    if decision and len(parts) >= 5 and parts[1] == "images" and parts[-2] == "tags":
        path = f"/images/{quote(unquote('/'.join(parts[2:-2])), safe='')}/tags/{unquote(parts[-1])}"
    elif len(parts) >= 4 and parts[1] == "images" and parts[-1] in IMAGE_ROUTES:
        path = f"/images/{quote(unquote('/'.join(parts[2:-1])), safe='')}/{parts[-1]}"
    elif (
        len(parts) == 4
        and parts[1] in ("tags", "categories")
        and parts[3] == "images"
        and re.match(TAG_PATTERN, unquote(parts[2]))
    ):
        path = f"/{parts[1]}/{unquote(parts[2])}/images"  # otherwise left as it is, for the pattern to refuse
    return {**event, "path": path}


def _build_for_snapshot() -> None:
    """What SnapStart's snapshot should hold: the vocabulary and the loaded text encoder (most of
    the API's ~1.5 s cold start); the pagination secret and the taught tags are read after a
    restore, on first use."""
    wiring.vocabulary_lexicon()
    if wiring.search() is not None:
        with contextlib.suppress(NoTextEncoder):  # answered 503 by search by text, never at init
            wiring.text_encoder()


snapstart.register(_build_for_snapshot, wiring.renew_clients)
if os.environ.get("MODEL_S3_URI") or os.environ.get("MODEL_FILES_S3_URI"):
    # A text encoder fetched from S3 (~300 MB for SigLIP2) is copied and loaded while the
    # container starts, not in the first search's 29 s.
    loading.start(wiring.text_encoder)


def openapi() -> str:
    return app.get_openapi_json_schema(title="cliptag API", version="1.0.0", description=__doc__)


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(normalise_path(event), context)
