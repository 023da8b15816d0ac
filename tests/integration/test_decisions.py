"""A person confirms and rejects tags through the HTTP API (and the command line): the decision
belongs to the bytes, reaches every key holding them, survives re-tags and re-uploads, and new
bytes start without it. Photos are real COCO photos made unique to this module (a few bytes
after the JPEG's end), so no other test's objects share their decisions."""

from __future__ import annotations

import dataclasses
import json
import time
import urllib.parse
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from botocore.credentials import Credentials
from cliptag import codec, wiring
from cliptag.adapters.notifications import retag_body
from cliptag.bundle import ModelBundle
from cliptag.errors import TransientError
from cliptag.ordering import Claim

from cliptag_cli.gallery.upstream import SignedApi
from cliptag_cli.main import main
from devstack.stack import LocalStack, StackInfo
from tests.conftest import real_photos

SIGNER = "arn:aws:iam::123456789012:user/testing"  # the local gateway names the signer by its key


def unique(photo: bytes) -> bytes:
    return photo + b"cliptag-test-" + uuid.uuid4().bytes  # after the JPEG's end: same pixels, new bytes


@pytest.fixture(scope="module")
def writer(info: StackInfo) -> SignedApi:
    return SignedApi(info.api_url, info.region, Credentials("testing", "testing"))


def decide(writer: SignedApi, key: str, tag: str, confirm: bool) -> tuple[int, dict[str, Any]]:
    answer = writer.decide(
        f"/images/{urllib.parse.quote(key, safe='')}/tags/{urllib.parse.quote(tag, safe='')}", confirm
    )
    return answer.status, json.loads(answer.body or b"{}")


def tags_of(api: Any, key: str) -> list[tuple[str, str]]:
    status, body = api.image(key)
    assert status == 200, body
    return [(t["tag"], t["source"]) for t in body["tags"]]


def wait_tags(api: Any, key: str, until: Any, timeout: float = 30) -> list[tuple[str, str]]:
    deadline = time.monotonic() + timeout
    while True:
        found = tags_of(api, key)
        if until(found):
            return found
        assert time.monotonic() < deadline, f"{key}: {found}"
        time.sleep(0.25)


def model_score(model_dir: Path, key: str, bucket: str, tag: str) -> float:
    """The tag's score for the object's stored embedding, computed here from the export's files."""
    record = wiring.objects().get(bucket, key)
    assert record is not None
    content = wiring.contents().get_many([record.content_id])[record.content_id]
    assert content.embedding is not None
    bundle = ModelBundle.open(model_dir)
    names = [t.name for t in bundle.vocabulary.tags]
    vectors = np.load(model_dir / "tag_embeddings.npy").astype(np.float32)
    tag_vector = vectors[names.index(tag)] / np.linalg.norm(vectors[names.index(tag)])
    return float(codec.round_trip(content.embedding) @ tag_vector)


def test_confirm_and_reject_reach_every_copy_and_hold_through_retags_and_uploads(
    stack: LocalStack,
    info: StackInfo,
    api: Any,
    s3: Any,
    writer: SignedApi,
    model_dir: Path,
    tmp_path: Path,
    capsys: Any,
) -> None:
    folder = f"decide-{uuid.uuid4().hex[:8]}"
    first, other = (unique(p.read_bytes()) for p in real_photos(2))
    original, copy = f"{folder}/photo.jpg", f"{folder}/copy of photo.jpg"
    for key in (original, copy):
        s3.put_object(Bucket=info.bucket, Key=key, Body=first)
        api.wait(key)
    before = tags_of(api, original)
    given = [tag for tag, _ in before]
    vocabulary = [t.name for t in ModelBundle.open(model_dir).vocabulary.tags]
    missing = next(t for t in vocabulary if t not in given)  # a tag the model did not give

    status, body = decide(writer, original, missing.upper(), confirm=True)  # any case, as every route
    assert status == 202, body
    assert body["decision"]["tag"] == missing and body["decision"]["verdict"] == "confirmed"
    assert body["decision"]["by"] == SIGNER and abs(body["decision"]["at"] - time.time()) < 60
    assert body["retagging"] == 2  # the object and its copy, found by its bytes
    for key in (original, copy):
        found = wait_tags(api, key, lambda tags: tags[0] == (missing, "person"))
        assert len(found) == len(before)  # TopK in all: the model's last one made room
    record = api.image(original)[1]
    assert record["tags"][0]["score"] == pytest.approx(model_score(model_dir, original, info.bucket, missing), abs=2e-6)
    page = api.tag(missing, limit=2)[1]["images"]  # confirmed images lead the tag's page
    assert {(i["key"], i["source"]) for i in page} == {(original, "person"), (copy, "person")}

    worst = given[0]  # the model's best tag, rejected from the command line
    state = stack.write_state(tmp_path / "stack.json")
    capsys.readouterr()
    assert main(["reject", "--local-state", str(state), copy, worst]) == 0
    assert f"rejected {worst!r}" in capsys.readouterr().out
    for key in (original, copy):
        found = wait_tags(api, key, lambda tags: worst not in [t for t, _ in tags])
        assert found[0] == (missing, "person") and len(found) == len(before)
    assert not {original, copy} & set(api.all_keys_with_tag(worst))

    # The same bytes uploaded again under a third key carry both decisions; a re-tag keeps them.
    third = f"{folder}/again.jpg"
    s3.put_object(Bucket=info.bucket, Key=third, Body=first)
    api.wait(third)
    found = wait_tags(api, third, lambda tags: bool(tags) and tags[0] == (missing, "person"))
    assert worst not in [t for t, _ in found]
    # A re-tag (TopK 10 -> 6: every record is due), sent for this module's objects only.
    try:
        stack.redeploy(TOP_K="6")
        scoring = wiring.deployment().scoring
        stack.client("sqs").send_message(
            QueueUrl=info.queue_url, MessageBody=retag_body([(info.bucket, k) for k in (original, copy, third)])
        )
        for key in (original, copy, third):
            deadline = time.monotonic() + 30
            while (record := wiring.objects().get(info.bucket, key)) is None or record.scoring != scoring:
                assert time.monotonic() < deadline, f"{key} not re-tagged"
                time.sleep(0.25)
            found = tags_of(api, key)
            assert found[0] == (missing, "person") and worst not in [t for t, _ in found] and len(found) == 6
    finally:
        stack.redeploy(TOP_K="10")

    # New bytes under the same key start without decisions.
    s3.put_object(Bucket=info.bucket, Key=original, Body=other)
    found = wait_tags(api, original, lambda tags: all(source == "model" for _, source in tags))
    assert (missing, "person") not in found

    for key in (original, copy, third):  # leave no confirmed tag at the head of other tests' pages
        s3.delete_object(Bucket=info.bucket, Key=key)
        api.wait_gone(key)


def test_decisions_refuse_what_cannot_be_decided(info: StackInfo, api: Any, s3: Any, writer: SignedApi) -> None:
    status, body = decide(writer, "no/such/key.jpg", "dog", confirm=True)
    assert status == 404 and "no tags for key" in body["error"]
    key = f"decide-{uuid.uuid4().hex[:8]}/broken.jpg"
    s3.put_object(Bucket=info.bucket, Key=key, Body=b"not an image at all")
    api.wait(key, until=lambda body: body["status"] == "failed")
    status, body = decide(writer, key, "dog", confirm=False)
    assert status == 409 and "not tagged" in body["error"]
    status, body = decide(writer, key, "dgo", confirm=True)
    assert status == 404 and "dog" in body["suggestions"]
    s3.delete_object(Bucket=info.bucket, Key=key)


def test_a_copy_recorded_by_a_batch_in_flight_follows_in_the_late_round(
    info: StackInfo, api: Any, s3: Any, writer: SignedApi
) -> None:
    """A batch that read the content's decisions before the decision was made commits its copy
    after the API looked for copies: the late round (delayed by the queue's visibility timeout,
    2 s here) finds it in the content index and re-tags it."""
    folder = f"decide-{uuid.uuid4().hex[:8]}"
    original, late = f"{folder}/photo.jpg", f"{folder}/copy committed late.jpg"
    s3.put_object(Bucket=info.bucket, Key=original, Body=unique(real_photos(3)[2].read_bytes()))
    api.wait(original)
    record = wiring.objects().get(info.bucket, original)
    assert record is not None
    rejected = record.tags[0].tag
    status, body = decide(writer, original, rejected, confirm=False)
    assert status == 202 and body["retagging"] == 1
    # What that batch writes: the copy's record as scored before the decision.
    wiring.objects().put(dataclasses.replace(record, key=late), Claim(revision=0))
    assert rejected in [t for t, _ in tags_of(api, late)]
    wait_tags(api, late, lambda tags: rejected not in [t for t, _ in tags])
    wait_tags(api, original, lambda tags: rejected not in [t for t, _ in tags])
    s3.delete_object(Bucket=info.bucket, Key=original)
    api.wait_gone(original)
    ref = f"{info.bucket}/{late}"  # the late copy has no object: its record goes as a removal would
    wiring.objects().delete(info.bucket, late, Claim(revision=wiring.objects().states([ref])[ref][0].revision))
    api.wait_gone(late)


def test_throttling_behind_the_api_answers_503_to_try_again(
    info: StackInfo, writer: SignedApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DynamoDB or SQS throttling after botocore's retries: 503 with Retry-After, not API
    Gateway's bare 502 (repeating a decision is safe)."""

    class Throttled:
        def decide(self, *args: Any) -> None:
            raise TransientError("DynamoDB ProvisionedThroughputExceededException")

    monkeypatch.setattr(wiring, "corrections", Throttled)
    answer = writer.decide("/images/any.jpg/tags/dog", True)
    assert answer.status == 503 and "try again" in json.loads(answer.body)["error"]
