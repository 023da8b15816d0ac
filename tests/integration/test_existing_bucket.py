"""A bucket the user already has: the stack never rewrites its notification configuration, its
events come through EventBridge, and `cliptag backfill` tags what was there before.

This stack runs in its own processes (an AWS emulator holding the user's bucket, set up first,
and `python -m devstack up --existing-bucket` attached to it), as a user's would."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from devstack.stack import free_port
from tests.conftest import ROOT, real_photos
from tests.integration.conftest import Api

BUCKET = "photo-archive"


def client(endpoint: str, service: str) -> Any:
    return boto3.client(  # type: ignore[call-overload]
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def wait_for(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def archive(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The user's AWS (an emulator with their bucket, objects and notifications), then the stack."""
    work = tmp_path_factory.mktemp("existing")
    port, api_port = free_port(), free_port()
    endpoint = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    env.pop("AWS_ENDPOINT_URL", None)
    aws = subprocess.Popen(
        [sys.executable, "-m", "devstack.moto_patches", "-H", "127.0.0.1", "-p", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    stack = None
    try:
        wait_for(lambda: _answers(endpoint), 20, "the AWS emulator")
        s3, sqs = client(endpoint, "s3"), client(endpoint, "sqs")
        s3.create_bucket(Bucket=BUCKET)
        photos = real_photos(6)
        before = {f"2019/{p.name}": p.read_bytes() for p in photos[:4]}
        for key, data in before.items():
            s3.put_object(Bucket=BUCKET, Key=key, Body=data)
        # The user's own notification: their thumbnailer's queue. The stack must leave it alone.
        theirs = sqs.create_queue(QueueName="thumbnailer")["QueueUrl"]
        their_arn = sqs.get_queue_attributes(QueueUrl=theirs, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        s3.put_bucket_notification_configuration(
            Bucket=BUCKET,
            NotificationConfiguration={
                "QueueConfigurations": [{"QueueArn": their_arn, "Events": ["s3:ObjectCreated:*"]}]
            },
        )
        state = work / "stack.json"
        stack = subprocess.Popen(
            [
                sys.executable, "-m", "devstack", "up", "--model-dir", str(model_dir), "--existing-bucket", BUCKET,
                "--aws-endpoint", endpoint, "--api-port", str(api_port), "--state", str(state),
            ],
            cwd=ROOT,
            env={**env, "POWERTOOLS_METRICS_DISABLED": "true", "POWERTOOLS_LOG_LEVEL": "WARNING"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        wait_for(lambda: state.is_file() or stack.poll() is not None, 90, "the stack")
        assert stack.poll() is None, stack.stderr.read() if stack.stderr else ""
        yield {
            "endpoint": endpoint,
            "state": state,
            "api": Api(f"http://127.0.0.1:{api_port}"),
            "before": before,
            "photos": photos,
            "theirs": theirs,
            "their_arn": their_arn,
        }
    finally:
        for process in (stack, aws):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=30)


def _answers(endpoint: str) -> bool:
    try:
        client(endpoint, "s3").list_buckets()
        return True
    except Exception:
        return False


def test_the_buckets_own_notifications_are_kept_and_eventbridge_added(archive):
    config = client(archive["endpoint"], "s3").get_bucket_notification_configuration(Bucket=BUCKET)
    assert [q["QueueArn"] for q in config["QueueConfigurations"]] == [archive["their_arn"]]
    assert "EventBridgeConfiguration" in config
    assert json.loads(archive["state"].read_text())["bucket"] == BUCKET


def test_uploads_are_tagged_and_deletes_untagged_through_eventbridge(archive):
    s3, api = client(archive["endpoint"], "s3"), archive["api"]
    key = f"2026/new day/{uuid.uuid4().hex[:6]} düne+1.jpg"  # the key arrives URL-encoded
    s3.put_object(Bucket=BUCKET, Key=key, Body=archive["photos"][4].read_bytes())
    body = api.wait(key, timeout=60)
    assert body["status"] == "tagged" and body["key"] == key and body["tags"]
    # Their thumbnailer was notified too, as before the stack existed.
    sqs = client(archive["endpoint"], "sqs")
    received = sqs.receive_message(QueueUrl=archive["theirs"], MaxNumberOfMessages=10, WaitTimeSeconds=2)
    keys = [
        urllib.parse.unquote_plus(r["s3"]["object"]["key"])
        for m in received.get("Messages", [])
        for r in json.loads(m["Body"]).get("Records", [])
    ]
    assert key in keys
    s3.delete_object(Bucket=BUCKET, Key=key)
    api.wait_gone(key, timeout=60)


def test_backfill_tags_what_was_there_before(archive):
    from cliptag_cli.main import main

    api = archive["api"]
    assert all(api.image(key)[0] == 404 for key in archive["before"])  # no event ever came for them
    assert main(["backfill", "--local-state", str(archive["state"]), "--prefix", "2019/"]) == 0
    for key in archive["before"]:
        assert api.wait(key, timeout=90)["status"] == "tagged"
