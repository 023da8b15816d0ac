"""Caption Lambda (Captions=On): SQS batch of new contents -> captions and keywords
(``cliptag.captions``). A message that fails is retried alone (``ReportBatchItemFailures``), then
kept in the caption dead-letter queue; a photo that cannot be captioned is logged and
acknowledged. Either way the objects' tags are as the tagger wrote them: a caption only adds."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from cliptag import caption_wiring
from cliptag.adapters.notifications import caption_request
from cliptag.errors import MalformedEvent, TransientError

logger = Logger(service="cliptag-captioner")
metrics = Metrics(namespace="cliptag", service="captioner")
processor = BatchProcessor(event_type=EventType.SQS)


def caption_one(record: SQSRecord) -> None:
    try:
        content_id, bucket, key = caption_request(record.body)
    except MalformedEvent as exc:
        logger.error("malformed caption request acknowledged", message_id=record.message_id, reason=str(exc))
        return
    try:
        outcome = caption_wiring.service().caption(content_id, bucket, key)
    except TransientError as exc:
        logger.warning("caption will be retried", content_id=content_id, reason=str(exc))
        raise
    logger.info(outcome, content_id=content_id, bucket=bucket, key=key)
    if outcome.startswith("captioned:"):
        metrics.add_metric(name="Captions", unit=MetricUnit.Count, value=1)


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    caption_wiring.service()  # cold start: the model before the first message is timed
    return dict(process_partial_response(event=event, record_handler=caption_one, processor=processor, context=context))
