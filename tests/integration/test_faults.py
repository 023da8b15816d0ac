"""Faults injected at the HTTP layer of the tagger's own boto3 clients (devstack.faults):
throttling, timeouts and lost responses on S3 GET and DynamoDB writes. Everything above the
fault is real: botocore's retries, the partial batch report, SQS redelivery, the DLQ, redrive."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from cliptag import wiring

from devstack.audit import read_objects
from devstack.faults import FaultInjector
from devstack.redrive import redrive
from tests.conftest import real_photos


@pytest.fixture
def faults(stack: Any) -> Iterator[FaultInjector]:
    """An injector on the tagger's S3 and DynamoDB clients, removed after the test."""
    injector = FaultInjector(rate=0.0)
    clients = [wiring.reader().client, wiring.table().client]
    for client in clients:
        injector.attach(client)
    yield injector
    for client in clients:
        injector.detach(client)


def dead_letters(stack: Any, info: Any, timeout: float) -> list[dict[str, Any]]:
    sqs = stack.client("sqs")
    deadline, moved = time.monotonic() + timeout, []
    while time.monotonic() < deadline and not moved:
        moved = sqs.receive_message(
            QueueUrl=info.dead_letter_queue_url, WaitTimeSeconds=1, AttributeNames=["ApproximateReceiveCount"]
        ).get("Messages", [])
    return moved


def test_faults_on_a_fifth_of_requests_are_absorbed_and_every_object_is_written_once(s3, info, api, stack, faults):
    folder = f"faulty-{uuid.uuid4().hex[:8]}"
    photos = real_photos(12)[2:12]  # contents no other test uploads: each is embedded here
    faults.rate = 0.2  # twice the soak's rate; plus one fault of each kind for each service first
    faults.queued = {"s3": ["throttle", "timeout", "lost"], "dynamodb": ["lost", "throttle", "timeout", "lost"]}
    images_before = wiring.pipeline().encoder.images
    for path in photos:
        s3.put_object(Bucket=info.bucket, Key=f"{folder}/{path.name}", Body=path.read_bytes())
    for path in photos:
        assert api.wait(f"{folder}/{path.name}", timeout=60)["status"] == "tagged"
    faults.rate = 0.0

    kinds = {kind for (_service, _op, kind) in faults.counts()}
    services = {service for (service, _op, _kind) in faults.counts()}
    assert services == {"s3", "dynamodb"} and kinds == {"throttle", "timeout", "lost"}, faults.counts()
    objects = read_objects(stack.client("dynamodb"), info.table)
    for path in photos:
        state = objects[f"{info.bucket}/{folder}/{path.name}"]
        assert state.problems() == [], state
        assert state.revision == 1, f"{path.name}: META written {state.revision} times"
    # Lost responses and retries did not make anything run through the model twice.
    assert wiring.pipeline().encoder.images - images_before <= len(photos)


def test_an_s3_outage_on_one_object_dead_letters_only_its_message_after_retries(s3, info, api, stack, faults):
    folder = f"s3-outage-{uuid.uuid4().hex[:8]}"
    flaky, fine = f"{folder}/flaky.jpg", [f"{folder}/fine-{i}.jpg" for i in range(3)]
    faults.poison.append(lambda service, url, body: service == "s3" and "/flaky.jpg" in url and folder in url)
    photos = real_photos(4)
    s3.put_object(Bucket=info.bucket, Key=flaky, Body=photos[0].read_bytes())
    for key, path in zip(fine, photos[1:], strict=True):
        s3.put_object(Bucket=info.bucket, Key=key, Body=path.read_bytes())
    for key in fine:
        assert api.wait(key)["status"] == "tagged"

    moved = dead_letters(stack, info, timeout=60)
    assert len(moved) == 1 and "flaky.jpg" in moved[0]["Body"]
    assert int(moved[0]["Attributes"]["ApproximateReceiveCount"]) >= 2  # MaxReceives=2
    gets = [f for f in faults.log if f.service == "s3" and "/flaky.jpg" in f.target]
    # botocore tried each delivery 4 times, backing off (jittered: 0-1, 0-2, 0-4 s) between tries.
    assert len(gets) >= 2 * 4, gets
    assert gets[3].at - gets[0].at > 0.2, "no backoff between retries"
    assert api.image(flaky)[0] == 404  # never half-written
    objects = read_objects(stack.client("dynamodb"), info.table)
    assert all(objects[f"{info.bucket}/{key}"].revision == 1 for key in fine)  # the rest committed once

    # The outage is over: redrive, and the object is tagged like any other upload.
    faults.poison.clear()
    sqs = stack.client("sqs")
    sqs.change_message_visibility(
        QueueUrl=info.dead_letter_queue_url, ReceiptHandle=moved[0]["ReceiptHandle"], VisibilityTimeout=0
    )
    assert redrive(sqs, info.dead_letter_queue_url, info.queue_url) == 1
    assert api.wait(flaky)["status"] == "tagged"


def test_a_dynamodb_write_outage_on_one_object_dead_letters_it_and_redrive_reuses_the_embedding(
    s3, info, api, stack, faults
):
    folder = f"ddb-outage-{uuid.uuid4().hex[:8]}"
    stuck = f"{folder}/stuck.jpg"
    # Every write naming this object fails (its TAG and META items); the content cache does not.
    faults.poison.append(lambda service, url, body: service == "dynamodb" and stuck.encode() in body)
    photo = real_photos(13)[12]
    s3.put_object(Bucket=info.bucket, Key=stuck, Body=photo.read_bytes())
    s3.put_object(Bucket=info.bucket, Key=f"{folder}/fine.jpg", Body=real_photos(1)[0].read_bytes())
    assert api.wait(f"{folder}/fine.jpg")["status"] == "tagged"
    moved = dead_letters(stack, info, timeout=60)
    assert len(moved) == 1 and "stuck.jpg" in moved[0]["Body"]
    assert api.image(stuck)[0] == 404

    faults.poison.clear()
    images_before = wiring.pipeline().encoder.images
    sqs = stack.client("sqs")
    sqs.change_message_visibility(
        QueueUrl=info.dead_letter_queue_url, ReceiptHandle=moved[0]["ReceiptHandle"], VisibilityTimeout=0
    )
    assert redrive(sqs, info.dead_letter_queue_url, info.queue_url) == 1
    assert api.wait(stuck)["status"] == "tagged"
    assert wiring.pipeline().encoder.images == images_before, "the cached embedding was not reused"
    assert read_objects(stack.client("dynamodb"), info.table)[f"{info.bucket}/{stuck}"].problems() == []
