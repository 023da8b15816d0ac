"""WriteBack=ObjectTags+Sidecar on the local stack: a photo's tags reach its S3 object tags (its
owner's kept) and an XMP sidecar that exiftool reads; decisions and deletions follow; and neither
tagging events nor sidecars ever bring an object back to the tagger."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.credentials import Credentials
from cliptag import wiring

from cliptag_cli.gallery.upstream import SignedApi
from cliptag_cli.main import main
from devstack.stack import LocalStack, StackInfo
from tests.conftest import real_photos

pytestmark = pytest.mark.integration
OWN_TAGS = {f"team:{i}": f"shoot {i}" for i in range(7)}  # the owner's: 3 of S3's 10 left for ours


@pytest.fixture(scope="module")
def written(stack: LocalStack, info: StackInfo, s3: Any) -> Iterator[str]:
    """The stack with WriteBack=ObjectTags+Sidecar; yields the sidecar prefix."""
    stack.redeploy(WRITE_BACK="ObjectTags+Sidecar")
    wiring.pipeline()
    prefix = info.sidecar_prefix
    assert prefix == "cliptag-xmp/"  # the template's default
    try:
        yield prefix
    finally:
        stack.redeploy(WRITE_BACK="Off")
        wiring.pipeline()


def sidecar(s3: Any, info: StackInfo, prefix: str, key: str) -> bytes | None:
    try:
        return bytes(s3.get_object(Bucket=info.bucket, Key=f"{prefix}{key}.xmp")["Body"].read())
    except s3.exceptions.NoSuchKey:
        return None


def ours(s3: Any, info: StackInfo, key: str) -> tuple[dict[str, str], list[str]]:
    found = {t["Key"]: t["Value"] for t in s3.get_object_tagging(Bucket=info.bucket, Key=key)["TagSet"]}
    mine = {k: v for k, v in found.items() if not k.startswith("cliptag:")}
    return mine, [found[k] for k in sorted((k for k in found if k.startswith("cliptag:")), key=lambda k: int(k[8:]))]


def until(check: Any, timeout: float = 30) -> Any:
    """``check()``'s first truthy answer (the write-back follows the record's commit)."""
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, "not in time"
        time.sleep(0.25)
    return found


def queue_idle(stack: LocalStack, info: StackInfo, quiet_s: float = 3.0) -> int:
    """Wait until the tagging queue is empty and no invocation ran for ``quiet_s``; the count."""
    sqs = stack.client("sqs")
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    last, since = stack.invocations, time.monotonic()
    while True:
        attrs = sqs.get_queue_attributes(QueueUrl=info.queue_url, AttributeNames=names)["Attributes"]
        busy = any(int(attrs[n]) for n in names)
        if busy or stack.invocations != last:
            last, since = stack.invocations, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            return last
        time.sleep(0.2)


def test_tags_are_written_back_beside_the_owners_and_exiftool_reads_the_sidecar(
    written: str, stack: LocalStack, info: StackInfo, s3: Any, api: Any, tmp_path: Path
) -> None:
    key = f"writeback-{uuid.uuid4().hex[:6]}/photo.jpg"
    tagging = urllib.parse.urlencode(OWN_TAGS)
    photo = real_photos(1)[0].read_bytes() + b"cliptag-write-back-test-" + uuid.uuid4().bytes  # bytes of its own
    s3.put_object(Bucket=info.bucket, Key=key, Body=photo, Tagging=tagging)
    record = api.wait(key, lambda body: body["status"] == "tagged" and "/w:" in body.get("scoring", ""))
    tags = [t["tag"] for t in record["tags"]]
    mine, written_tags = until(lambda: (found := ours(s3, info, key))[1] and found)
    assert mine == OWN_TAGS  # never dropped nor changed
    assert written_tags == [t.replace("(", " ").replace(")", " ").strip() for t in tags[:3]]  # the best first
    assert "3 of" in record["write_back"] and "7 tags of its own" in record["write_back"]

    data = until(lambda: sidecar(s3, info, written, key))
    exiftool = shutil.which("exiftool")
    if exiftool is None:
        pytest.skip("exiftool not installed (Debian: libimage-exiftool-perl)")
    (path := tmp_path / "photo.jpg.xmp").write_bytes(data)
    out = subprocess.run(
        [exiftool, "-j", "-XMP-dc:Subject", "-XMP-lr:HierarchicalSubject", str(path)], capture_output=True
    )
    read = json.loads(out.stdout)[0]
    subjects = read["Subject"] if isinstance(read["Subject"], list) else [read["Subject"]]
    assert subjects == tags
    categories = {t["tag"]: c for t in record["tags"] for c in [category_of(api, t["tag"])] if c}
    assert read["HierarchicalSubject"][0] == (f"{categories[tags[0]]}|{tags[0]}" if tags[0] in categories else tags[0])

    # Neither the tagging events nor the sidecar's own event bring anything back to the tagger.
    before = queue_idle(stack, info)
    revision = meta(stack, info, key)["revision"]
    assert api.image(f"{written}{key}.xmp")[0] == 404  # the sidecar was never tagged
    assert sidecar(s3, info, written, f"{written}{key}.xmp") is None  # nor given a sidecar of its own
    assert queue_idle(stack, info) == before and meta(stack, info, key)["revision"] == revision

    # A person's rejection reaches the object tags and the sidecar.
    writer = SignedApi(info.api_url, info.region, Credentials("testing", "testing"))
    path_of = f"/images/{urllib.parse.quote(key, safe='')}/tags/{urllib.parse.quote(tags[0], safe='')}"
    assert writer.decide(path_of, False).status == 202
    until(lambda: tags[0] not in ours(s3, info, key)[1])
    until(lambda: f">{tags[0]}<".encode() not in (sidecar(s3, info, written, key) or b""))
    assert ours(s3, info, key)[0] == OWN_TAGS

    # The photo goes: so does its sidecar.
    s3.delete_object(Bucket=info.bucket, Key=key)
    api.wait_gone(key)
    until(lambda: sidecar(s3, info, written, key) is None)


def test_verify_finds_and_repairs_missing_and_orphan_sidecars(
    written: str,
    stack: LocalStack,
    info: StackInfo,
    s3: Any,
    api: Any,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder = f"verify-xmp-{uuid.uuid4().hex[:6]}/"
    kept, lost = f"{folder}kept.jpg", f"{folder}lost.jpg"
    for key, photo in zip((kept, lost), real_photos(4)[2:4], strict=True):
        s3.put_object(Bucket=info.bucket, Key=key, Body=photo.read_bytes() + b"cliptag-verify-" + uuid.uuid4().bytes)
    for key in (kept, lost):
        api.wait(key, lambda body: body["status"] == "tagged")
        until(lambda key=key: sidecar(s3, info, written, key))
    queue_idle(stack, info)
    lost_sidecar = sidecar(s3, info, written, lost)
    s3.delete_object(Bucket=info.bucket, Key=f"{written}{lost}.xmp")  # a sidecar lost
    orphan = f"{written}{folder}gone.jpg.xmp"  # one whose photo never was (or was deleted unseen)
    s3.put_object(Bucket=info.bucket, Key=orphan, Body=lost_sidecar)
    time.sleep(1.1)  # S3's LastModified has whole seconds: the changes are older than the walk
    state = str(stack.write_state(tmp_path / "stack.json"))
    verify = ["verify", "--local-state", state, "--prefix", folder, "--settle", "0", "--state-dir", str(tmp_path)]

    assert main(verify) == 1
    report = capsys.readouterr().out
    assert f"{lost}: tagged; no {written}{lost}.xmp" in report, report
    assert f"{folder}gone.jpg: {orphan}: the photo is gone" in report, report
    assert kept not in report
    assert main([*verify, "--repair"]) == 1
    assert until(lambda: sidecar(s3, info, written, lost)) == lost_sidecar  # written again by a re-tag
    assert sidecar(s3, info, written, f"{folder}gone.jpg") is None
    assert sidecar(s3, info, written, kept)  # untouched
    queue_idle(stack, info)
    assert main(verify) == 0
    for key in (kept, lost):
        s3.delete_object(Bucket=info.bucket, Key=key)
    for key in (kept, lost):
        api.wait_gone(key)


def test_a_photo_put_under_the_sidecar_prefix_is_never_tagged(
    written: str, stack: LocalStack, info: StackInfo, s3: Any, api: Any
) -> None:
    key = f"{written}not-a-sidecar-{uuid.uuid4().hex[:6]}.jpg"
    s3.put_object(Bucket=info.bucket, Key=key, Body=real_photos(2)[1].read_bytes())
    queue_idle(stack, info)
    assert api.image(key)[0] == 404
    s3.delete_object(Bucket=info.bucket, Key=key)


def test_the_emulator_does_send_tagging_events_to_those_who_ask(stack: LocalStack, info: StackInfo, s3: Any) -> None:
    """What makes the no-loop check above mean something: S3 sends s3:ObjectTagging:* events
    (S3 User Guide, "Event notification types"), and the local S3 does too, to a bucket that
    subscribes to them; the stack's bucket subscribes to ObjectCreated, ObjectRemoved and
    LifecycleExpiration only."""
    sqs = stack.client("sqs")
    queue = sqs.create_queue(QueueName=f"tagging-events-{uuid.uuid4().hex[:6]}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    bucket = f"tagging-events-{uuid.uuid4().hex[:6]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="a.jpg", Body=b"x")
    config = {"QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectTagging:*"]}]}
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=config)
    sqs.purge_queue(QueueUrl=queue)
    s3.put_object_tagging(Bucket=bucket, Key="a.jpg", Tagging={"TagSet": [{"Key": "k", "Value": "v"}]})
    got = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=2).get("Messages", [])
    names = [r["eventName"] for m in got for r in json.loads(m["Body"]).get("Records", [])]
    assert names == ["ObjectTagging:Put"]
    stack_config = s3.get_bucket_notification_configuration(Bucket=info.bucket)
    events = {e for q in stack_config["QueueConfigurations"] for e in q["Events"]}
    assert events == {"s3:ObjectCreated:*", "s3:ObjectRemoved:*", "s3:LifecycleExpiration:*"}


def category_of(api: Any, tag: str) -> str:
    status, body = api.get("/tags")
    assert status == 200
    return next((t["category"] for t in body["tags"] if t["name"] == tag), "")


def meta(stack: LocalStack, info: StackInfo, key: str) -> dict[str, Any]:
    from cliptag import keys

    item = stack.client("dynamodb").get_item(
        TableName=info.table,
        Key={"PK": {"S": keys.object_pk(keys.object_ref(info.bucket, key))}, "SK": {"S": keys.META}},
        ConsistentRead=True,
    )["Item"]
    return {"revision": item["revision"]["N"], "updated_at": item["updated_at"]["N"]}
