"""Identical content is never run through the model twice, even by concurrent invocations."""

from __future__ import annotations

import json
import uuid
from urllib.parse import quote_plus

from aws_lambda_powertools.utilities.data_classes import SQSRecord
from cliptag import wiring
from cliptag.adapters import notifications
from cliptag.adapters.dynamodb import DynamoContentCache
from cliptag.batch import Message

from tests.conftest import real_photos


def message(message_id: str, bucket: str, key: str) -> Message:
    record = {
        "eventSource": "aws:s3",
        "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": bucket}, "object": {"key": quote_plus(key)}},
    }
    return notifications.message(SQSRecord({"messageId": message_id, "body": json.dumps({"Records": [record]})}))


def test_a_second_invocation_waits_for_the_first_ones_embedding(s3, info):
    data = real_photos(3)[2].read_bytes() + uuid.uuid4().bytes  # content nobody has embedded yet
    key_a, key_b = f"claim/{uuid.uuid4().hex[:6]}-a.jpg", f"claim/{uuid.uuid4().hex[:6]}-b.jpg"
    bucket = f"claims-{uuid.uuid4().hex[:8]}"  # no notifications: only these invocations see the objects
    s3.create_bucket(Bucket=bucket)
    for key in (key_a, key_b):
        s3.put_object(Bucket=bucket, Key=key, Body=data)
    tagger = wiring.pipeline()
    before = tagger.encoder.images

    plans_a, _ = tagger.plan([message("msg-a", bucket, key_a)])  # A claims and embeds...
    plans_b, _ = tagger.plan([message("msg-b", bucket, key_b)])  # ...B arrives before A commits
    assert tagger.encoder.images == before + 1
    assert "being embedded by another invocation" in plans_b[0].items[0].transient
    assert tagger.commit_all(plans_b)["msg-b"] is not None  # B is reported failed: SQS redelivers it

    assert tagger.commit_all(plans_a)["msg-a"] is None
    retry_b, _ = tagger.plan([message("msg-b", bucket, key_b)])  # the redelivery reuses A's work
    assert retry_b[0].items[0].outcome == "reused"
    assert tagger.commit_all(retry_b)["msg-b"] is None
    assert tagger.encoder.images == before + 1
    a, b = wiring.objects().get(bucket, key_a), wiring.objects().get(bucket, key_b)
    assert a is not None and b is not None and a.tags == b.tags and a.content_id == b.content_id


def test_claims_expire_and_belong_to_their_message(stack):
    cache = DynamoContentCache(wiring.table(), "m")
    content = uuid.uuid4().hex
    assert cache.claim(content, owner="msg-1", lease_s=300)
    assert not cache.claim(content, owner="msg-2", lease_s=300)  # held by another
    assert cache.claim(content, owner="msg-1", lease_s=300)  # its own redelivery
    stale = uuid.uuid4().hex
    assert cache.claim(stale, owner="crashed", lease_s=-1)  # holder died, lease over
    assert cache.claim(stale, owner="msg-3", lease_s=300)
