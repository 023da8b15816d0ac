"""The API's writes: a person confirms or rejects a tag of an image.

PUT    /images/{key}/tags/{tag}   confirm: the tag applies (listed first, as a person's)
DELETE /images/{key}/tags/{tag}   reject: the model never gives it to these bytes again

The decision is recorded on the image's bytes with the caller's IAM identity and the time, then
the tagger re-tags every object holding those bytes from their stored embeddings (no model):
the answer is 202 with the decision and how many objects follow it. A separate IAM statement
grants these methods (the template's ApiWritePolicy), so read-only callers cannot decide.
(No ``from __future__ import annotations`` here: the validator reads the annotations.)
"""

import time
from typing import Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent
from cliptag import wiring
from cliptag.decisions import DecisionOutcome, Verdict
from cliptag.lexicon import fold
from pydantic import TypeAdapter

from handlers.api_common import ImageKey, TagName, UnknownName, object_key_of, vocabulary_tag

router = Router()  # type: ignore[no-untyped-call]
_outcome = TypeAdapter(DecisionOutcome)
RESPONSES: dict[int, Any] = {
    202: {"description": "recorded; the objects holding these bytes are being re-tagged"},
    404: {"description": "unknown key, or unknown tag (with suggestions)"},
    409: {"description": "the image is not tagged (it failed): there is nothing to decide on"},
}


def caller() -> str:
    """Who decides: the signed caller's IAM ARN from API Gateway's request context."""
    event = APIGatewayProxyEvent(router.current_event.raw_event)
    identity = event.request_context.identity
    return identity.user_arn or identity.caller or "unknown"


def _decide(key: str, tag: str, verdict: Verdict) -> Response[Any]:
    object_key = object_key_of(key)
    try:
        name = vocabulary_tag(tag)
    except UnknownName as unknown:  # a place tag the object carries may be decided on too
        record, name = wiring.queries().image(object_key), fold(tag)
        if record is None or name not in (t.tag for t in record.tags):
            raise unknown from None
    outcome = wiring.corrections().decide(object_key, name, verdict, caller(), int(time.time()))
    if outcome is None:
        raise NotFoundError(f"no tags for key {object_key!r}")
    body = _outcome.dump_python(outcome, mode="json")
    return Response(status_code=202, content_type=content_types.APPLICATION_JSON, body=body)


@router.put("/images/<key>/tags/<tag>", summary="Confirm a tag of an image (and of its copies)", responses=RESPONSES)
def confirm_tag(key: ImageKey, tag: TagName) -> Response[DecisionOutcome]:
    return _decide(key, tag, "confirmed")


@router.delete("/images/<key>/tags/<tag>", summary="Reject a tag of an image (and of its copies)", responses=RESPONSES)
def reject_tag(key: ImageKey, tag: TagName) -> Response[DecisionOutcome]:
    return _decide(key, tag, "rejected")
