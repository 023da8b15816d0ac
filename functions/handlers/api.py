"""API Lambda: tag queries over DynamoDB, behind API Gateway (IAM auth by default).

GET /images/{key}/tags            one object's tags (key URL-encoded; raw slashes work too)
GET /tags/{tag}/images            objects with a tag, best first, paginated by opaque token
GET /tags                         the vocabulary

Built on Powertools' event handler with validation, so ``openapi()`` describes exactly what
is enforced. (No ``from __future__ import annotations`` here: the validator reads the
annotations at run time.)
"""

import re
from typing import Annotated, Any
from urllib.parse import quote, unquote

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, CORSConfig, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import BadRequestError, NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.utilities.typing import LambdaContext
from cliptag import wiring
from cliptag.tokens import BadToken
from pydantic import BaseModel, Field

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

MAX_KEY_BYTES = 1024  # S3's own limit
MAX_TAG_LENGTH = 100
TAG_PATTERN = re.compile(r"^[\w][\w '&.,()!?+\-]*$")
IMAGE_TAGS_PATH = re.compile(r"^/images/(?P<key>.+)/tags$")


class TagScore(BaseModel):
    tag: str
    score: float = Field(description="cosine similarity of image and tag embeddings, -1..1")


class ImageTags(BaseModel):
    bucket: str
    key: str
    status: str = Field(description="tagged, or failed with a reason in 'error'")
    tags: list[TagScore]
    content_id: str = Field(description="SHA-256 of the object's bytes")
    model: str
    vocabulary_version: str
    width: int
    height: int
    format: str
    error: str | None = None


class TaggedImage(BaseModel):
    bucket: str
    key: str
    score: float


class TagImages(BaseModel):
    tag: str
    images: list[TaggedImage]
    next_token: str | None = Field(default=None, description="pass back as next_token for the next page")


class VocabularyTag(BaseModel):
    name: str
    category: str
    synonyms: list[str]


class VocabularyListing(BaseModel):
    model: str
    vocabulary_version: str
    count: int
    tags: list[VocabularyTag]


def _error(status: int, message: str) -> Response[Any]:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body={"error": message})


@app.exception_handler(RequestValidationError)
def _bad_request(exc: RequestValidationError) -> Response[Any]:
    problems = [f"{'.'.join(str(p) for p in e.get('loc', ())[1:]) or 'request'}: {e.get('msg')}" for e in exc.errors()]
    return _error(400, "; ".join(problems) or "invalid request")


@app.exception_handler(NotFoundError)
def _not_found(exc: NotFoundError) -> Response[Any]:
    return _error(404, str(exc) or "not found")


@app.exception_handler(BadRequestError)
def _bad_parameter(exc: BadRequestError) -> Response[Any]:
    return _error(400, str(exc.msg))


@app.exception_handler(BadToken)
def _bad_token(exc: BadToken) -> Response[Any]:
    return _error(400, f"next_token: {exc}")


@app.get("/images/<key>/tags", summary="Tags of one object", responses={404: {"description": "unknown key"}})
@tracer.capture_method
def image_tags(key: str) -> ImageTags:
    object_key = unquote(key)
    if not object_key or len(object_key.encode("utf-8")) > MAX_KEY_BYTES:
        raise BadRequestError(f"key must be 1..{MAX_KEY_BYTES} bytes")
    bucket = wiring.settings().images_bucket
    record = wiring.store().get_object(bucket, object_key)
    if record is None:
        raise NotFoundError(f"no tags for key {object_key!r}")
    return ImageTags(
        bucket=record.bucket,
        key=record.key,
        status=record.status,
        tags=[TagScore(tag=n, score=s) for n, s in record.tags],
        content_id=record.content_id,
        model=record.model,
        vocabulary_version=record.vocabulary,
        width=record.width,
        height=record.height,
        format=record.format,
        error=record.error or None,
    )


@app.get("/tags/<tag>/images", summary="Objects carrying a tag, highest score first")
@tracer.capture_method
def tag_images(
    tag: str,
    min_score: Annotated[float, Query(ge=-1.0, le=1.0, description="lowest score returned")] = -1.0,
    limit: Annotated[int, Query(ge=1, le=100, description="page size")] = 20,
    next_token: Annotated[str | None, Query(max_length=4096, description="from the previous page")] = None,
) -> TagImages:
    name = unquote(tag).strip()
    if not name or len(name) > MAX_TAG_LENGTH or not TAG_PATTERN.match(name):
        raise BadRequestError(f"tag must be 1..{MAX_TAG_LENGTH} letters, digits, spaces or simple punctuation")
    tokens, store = wiring.page_tokens(), wiring.store()
    query = f"{name}\n{min_score!r}"  # a token only continues the query that issued it
    page, more = store.query_tag(name, min_score, limit, tokens.decode(next_token, query, store.shards))
    token = tokens.encode(more, query) if more else None
    images = []
    for ref, score in page:
        bucket, _, key = ref.partition("/")
        images.append(TaggedImage(bucket=bucket, key=key, score=score))
    return TagImages(tag=name, images=images, next_token=token)


@app.get("/tags", summary="The tag vocabulary")
@tracer.capture_method
def vocabulary() -> VocabularyListing:
    bundle = wiring.bundle()
    vocab = bundle.vocabulary
    return VocabularyListing(
        model=bundle.model_key,
        vocabulary_version=vocab.version,
        count=len(vocab.tags),
        tags=[VocabularyTag(name=t.name, category=t.category, synonyms=list(t.synonyms)) for t in vocab.tags],
    )


def normalise_path(event: dict[str, Any]) -> dict[str, Any]:
    """Route keys containing '/': API Gateway's greedy ``{key+}`` hands them over decoded."""
    match = IMAGE_TAGS_PATH.match(event.get("path") or "")
    if match:
        event = {**event, "path": f"/images/{quote(unquote(match['key']), safe='')}/tags"}
    return event


def openapi() -> str:
    return app.get_openapi_json_schema(title="cliptag API", version="1.0.0", description=__doc__)


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(normalise_path(event), context)
