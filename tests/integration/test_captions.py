"""Captions=On on the local stack (a tiny random BLIP, exported here): the caption function
captions each new content once, writes the caption and the keywords CLIP confirms, and the tagger
puts them in every holder's record; re-tags keep them; a caption that fails leaves the tags as
they were."""

from __future__ import annotations

import time
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cliptag import wiring
from cliptag.adapters.notifications import retag_body

from devstack.stack import LocalStack, StackInfo
from tests.conftest import real_photos

pytestmark = pytest.mark.integration
pytest.importorskip("torch")


@pytest.fixture(scope="module")
def captioning(stack: LocalStack, info: StackInfo, s3: Any, api: Any, caption_model: Path) -> Iterator[str]:
    stack.start_captions(caption_model)
    folder = f"captions-{uuid.uuid4().hex[:6]}/"
    try:
        yield folder
    finally:
        stack.stop_captions()
        listed = s3.list_objects_v2(Bucket=info.bucket, Prefix=folder).get("Contents", [])
        for obj in listed:
            s3.delete_object(Bucket=info.bucket, Key=obj["Key"])
        for obj in listed:
            api.wait_gone(obj["Key"])


def unique(photo: bytes) -> bytes:
    """The photo's pixels as bytes no other test uploaded: only new contents are captioned, and the
    session's content cache holds every photo the other tests sent."""
    return photo + b"cliptag-caption-test-" + uuid.uuid4().bytes  # after the JPEG's end


def captioned(api: Any, key: str, timeout: float = 60) -> dict[str, Any]:
    return api.wait(key, lambda body: bool(body.get("caption")), timeout=timeout)


def caption_tags(record: dict[str, Any]) -> list[str]:
    return [t["tag"] for t in record["tags"] if t["source"] == "caption"]


def idle(stack: LocalStack, quiet_s: float = 3.0) -> int:
    """Invocations of the caption function once none has run for ``quiet_s``."""
    last, since = stack.captions.invocations, time.monotonic()
    while time.monotonic() - since < quiet_s:
        time.sleep(0.2)
        if stack.captions.invocations != last:
            last, since = stack.captions.invocations, time.monotonic()
    return last


def test_a_new_photo_gets_a_caption_and_keywords_once(
    captioning: str, stack: LocalStack, info: StackInfo, s3: Any, api: Any
) -> None:
    photo = unique(real_photos(3)[0].read_bytes())
    first = f"{captioning}first.jpg"
    s3.put_object(Bucket=info.bucket, Key=first, Body=photo)
    record = captioned(api, first)
    words = caption_tags(record)
    assert len(record["caption"].split()) > 3 and words  # a sentence, and keywords CLIP kept
    assert all(t["score"] != 1.0 for t in record["tags"] if t["source"] == "caption")  # CLIP scores
    assert any(t["source"] == "model" for t in record["tags"])  # beside the model's tags
    calls = idle(stack)

    second = f"{captioning}copy.jpg"  # the same bytes: never captioned again
    s3.put_object(Bucket=info.bucket, Key=second, Body=photo)
    copy = captioned(api, second)
    assert copy["caption"] == record["caption"] and caption_tags(copy) == words
    assert idle(stack) == calls

    stack.client("sqs").send_message(QueueUrl=info.queue_url, MessageBody=retag_body([(info.bucket, first)]))
    time.sleep(3)  # a re-tag from the stored embedding keeps them
    again = captioned(api, first)
    assert again["caption"] == record["caption"] and caption_tags(again) == words


def test_an_open_keyword_finds_its_photos_and_search_shows_the_caption(
    captioning: str, info: StackInfo, s3: Any, api: Any
) -> None:
    key = f"{captioning}open.jpg"
    s3.put_object(Bucket=info.bucket, Key=key, Body=unique(real_photos(3)[1].read_bytes()))
    record = captioned(api, key)
    vocabulary = {t["name"] for t in api.get("/tags")[1]["tags"]}
    open_words = [w for w in caption_tags(record) if w not in vocabulary]
    assert open_words, caption_tags(record)
    status, page = api.tag(open_words[0], limit=100)
    assert status == 200 and (key, "caption") in {(i["key"], i["source"]) for i in page["images"]}
    status, page = api.get(f"/images?all={urllib.parse.quote(open_words[0])}&limit=100")  # a filter too
    assert status == 200 and key in [i["key"] for i in page["images"]], page
    status, found = api.get(f"/images/{urllib.parse.quote(key, safe='')}/similar?limit=5")
    assert status == 200
    status, found = api.get(f"/search?q={urllib.parse.quote(record['caption'])}&limit=100")
    assert status == 200
    hit = next(h for h in found["images"] if h["key"] == key)
    assert hit["caption"] == record["caption"]


def test_a_caption_that_fails_leaves_the_tags_as_they_were(
    captioning: str, stack: LocalStack, info: StackInfo, s3: Any, api: Any, tmp_path: Path
) -> None:
    import os

    working = os.environ["CAPTION_MODEL_DIR"]
    os.environ["CAPTION_MODEL_DIR"] = str(tmp_path)  # no model there: every caption attempt fails
    wiring.reset()
    try:
        key = f"{captioning}fails.jpg"
        s3.put_object(Bucket=info.bucket, Key=key, Body=unique(real_photos(3)[2].read_bytes()))
        record = api.wait(key, lambda body: body["status"] == "tagged")
        resources = stack.client("cloudformation").describe_stack_resources(StackName="cliptag-local")
        dead = next(
            r["PhysicalResourceId"]
            for r in resources["StackResources"]
            if r.get("LogicalResourceId") == "CaptionDeadLetterQueue"
        )
        sqs, waiting = stack.client("sqs"), ["ApproximateNumberOfMessages"]
        deadline = time.monotonic() + 60  # retried (MaxReceives 2 here), then kept with the dead letters
        while not int(sqs.get_queue_attributes(QueueUrl=dead, AttributeNames=waiting)["Attributes"][waiting[0]]):
            assert time.monotonic() < deadline, "the failed caption never reached the dead-letter queue"
            time.sleep(0.5)
        after = api.image(key)[1]
        assert after["tags"] == record["tags"] and not after.get("caption")
    finally:
        os.environ["CAPTION_MODEL_DIR"] = working
        wiring.reset()
