"""Tagger Lambda: SQS batch of S3 notifications -> tags in DynamoDB.

The whole batch is planned first (one encoder call for every image that needs one) and its
messages committed concurrently; Powertools' batch processor then reports only the messages
that failed transiently (``ReportBatchItemFailures``) so SQS redelivers just those.
"""

from __future__ import annotations

import gc
from collections import Counter
from typing import Any

from cliptag import loading

# The imports below create many long-lived objects (modules, botocore's JSON models) and little
# garbage: collecting during them only costs time (~0.1 s measured). Enabled again below.
gc.disable()
# Before the heavy imports below: the model loads on a thread while they run (cliptag.loading).
loading.start()

from aws_lambda_powertools import Logger, Metrics, Tracer  # noqa: E402
from aws_lambda_powertools.metrics import MetricUnit  # noqa: E402
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response  # noqa: E402
from aws_lambda_powertools.utilities.data_classes import SQSEvent  # noqa: E402
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord  # noqa: E402
from aws_lambda_powertools.utilities.typing import LambdaContext  # noqa: E402
from cliptag import snapstart, wiring  # noqa: E402
from cliptag.adapters import notifications  # noqa: E402
from cliptag.batch import MessagePlan  # noqa: E402
from cliptag.errors import TransientError  # noqa: E402

logger = Logger(service="cliptag-tagger")
metrics = Metrics(namespace="cliptag", service="tagger")
tracer = Tracer(service="cliptag-tagger")
processor = BatchProcessor(event_type=EventType.SQS)
snapstart.register(wiring.pipeline, wiring.renew_clients)  # with SnapStart on: the snapshot holds the loaded model
gc.enable()

OUTCOME_METRICS = {
    "tagged": "ImagesTagged",
    "reused": "ImagesReused",
    "retagged": "ImagesRetagged",
    "failed": "ImagesFailed",
    "deleted": "ObjectsDeleted",
}


def _report(plan: MessagePlan, error: TransientError | None, counts: Counter[str]) -> None:
    """Log and count one committed message; re-raise its transient error for the batch processor."""
    if plan.malformed:
        # Retrying cannot fix a body we do not understand: acknowledge it, loudly.
        logger.error("malformed message acknowledged", message_id=plan.message_id, reason=plan.malformed)
        counts["MalformedMessages"] += 1
        return
    if error is not None:
        logger.warning("message will be retried", message_id=plan.message_id, reason=str(error))
        counts["TransientFailures"] += 1
        raise error
    if plan.sidecars:  # our own sidecars' events (WriteBack=Sidecar): never tagged
        logger.info("sidecar events ignored", message_id=plan.message_id, count=plan.sidecars)
    for item in plan.items:
        event = item.event
        log = logger.warning if item.outcome == "failed" else logger.info
        log(
            f"object {item.outcome or 'unchanged'}",
            bucket=event.bucket,
            key=event.key,
            content_id=item.content_id,
            outcome=item.outcome,
            error=item.result.error if item.result is not None and item.outcome == "failed" else None,
            near_duplicates=item.near_duplicates or None,  # found for this upload (NearDuplicates=On)
        )
        if item.outcome in OUTCOME_METRICS:
            counts[OUTCOME_METRICS[item.outcome]] += 1


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    pipeline = wiring.pipeline()
    plans, stats = pipeline.plan([notifications.message(record) for record in SQSEvent(event).records])
    if stats.inference_images:
        metrics.add_metric(name="InferenceImages", unit=MetricUnit.Count, value=stats.inference_images)
        metrics.add_metric(name="InferenceMs", unit=MetricUnit.Milliseconds, value=stats.inference_ms)
    by_id = {p.message_id: p for p in plans}
    errors = pipeline.commit_all(plans)  # concurrently; the processor reports per message

    counts: Counter[str] = Counter()  # one value per metric per invocation, however many objects

    def record_handler(record: SQSRecord) -> None:
        _report(by_id[record.message_id], errors[record.message_id], counts)

    response = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    for name, value in counts.items():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    return dict(response)
