"""The whole flow over real HTTP: S3 upload -> notification -> SQS -> tagger -> DynamoDB -> API."""

from __future__ import annotations

import uuid
from pathlib import Path

from cliptag import wiring
from cliptag.bundle import ModelBundle

from tests.conftest import FORMATS, real_photos
from tests.integration.conftest import sha256


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_real_photos_are_tagged_best_first(s3, info, api, model_dir: Path):
    photos = real_photos(10)
    folder = unique("photos")
    for path in photos:
        s3.put_object(Bucket=info.bucket, Key=f"{folder}/{path.name}", Body=path.read_bytes())
    bundle = ModelBundle.open(model_dir)
    for path in photos:
        body = api.wait(f"{folder}/{path.name}")
        assert body["status"] == "tagged"
        assert body["content_id"] == sha256(path.read_bytes())
        assert body["model"] == bundle.model_key and body["vocabulary_version"] == bundle.vocabulary.version
        scores = [t["score"] for t in body["tags"]]
        assert 1 <= len(scores) <= wiring.settings().top_k and scores == sorted(scores, reverse=True)
        assert {t["tag"] for t in body["tags"]} <= set(bundle.vocabulary.names)
        assert body["width"] > 0 and body["height"] > 0 and body["format"] in ("JPEG", "PNG")
        # ... and every tag finds the image back through the index.
        top = body["tags"][0]
        found = api.all_keys_with_tag(top["tag"])
        assert f"{folder}/{path.name}" in found


def test_same_bytes_under_a_second_key_run_no_inference(s3, info, api):
    data = real_photos(1)[0].read_bytes() + b""  # same content, new key
    first, second = unique("dup/first") + ".jpg", unique("dup/second") + ".jpg"
    s3.put_object(Bucket=info.bucket, Key=first, Body=data)
    a = api.wait(first)
    encoder = wiring.pipeline().encoder
    images_before = encoder.images
    s3.put_object(Bucket=info.bucket, Key=second, Body=data)
    b = api.wait(second)
    assert encoder.images == images_before, "the duplicate content went through the model again"
    assert a["content_id"] == b["content_id"] and a["tags"] == b["tags"]


def test_overwrite_replaces_tags_and_delete_removes_everywhere(s3, info, api):
    photos = real_photos(6)
    key = unique("overwrite/photo") + ".jpg"
    s3.put_object(Bucket=info.bucket, Key=key, Body=photos[0].read_bytes())
    old = api.wait(key)
    # Pick a second photo whose tag set differs, so "replaced, not merged" is observable.
    new_photo = next(p for p in photos[1:] if True)
    s3.put_object(Bucket=info.bucket, Key=key, Body=new_photo.read_bytes())
    new = api.wait(key, until=lambda body: body["content_id"] == sha256(new_photo.read_bytes()))
    new_tags = {t["tag"] for t in new["tags"]}
    for tag in {t["tag"] for t in old["tags"]} | new_tags:
        assert (key in api.all_keys_with_tag(tag)) == (tag in new_tags), tag

    s3.delete_object(Bucket=info.bucket, Key=key)
    api.wait_gone(key)
    for tag in new_tags:
        assert key not in api.all_keys_with_tag(tag)


def test_bad_files_are_recorded_failed_and_do_not_hurt_the_batch(s3, info, api, stack):
    folder = unique("bad")
    bad = {
        f"{folder}/empty.jpg": b"",
        f"{folder}/text.jpg": b"this is not an image, just text with a .jpg name\n",
    }
    for name in ("truncated_jpeg.jpg", "decompression_bomb.gif"):
        if (FORMATS / "misc" / name).is_file():
            bad[f"{folder}/{name}"] = (FORMATS / "misc" / name).read_bytes()
    good = {f"{folder}/good-{p.name}": p.read_bytes() for p in real_photos(3)}
    for key, data in {**bad, **good}.items():  # uploaded together: they share SQS batches
        s3.put_object(Bucket=info.bucket, Key=key, Body=data)
    for key in good:
        assert api.wait(key)["status"] == "tagged"
    for key in bad:
        body = api.wait(key)
        assert body["status"] == "failed" and body["tags"] == []
        assert body["error"], key
    assert "0 bytes" in api.wait(f"{folder}/empty.jpg")["error"]
    assert "not a recognised image" in api.wait(f"{folder}/text.jpg")["error"]
    sqs = stack.client("sqs")
    attrs = sqs.get_queue_attributes(
        QueueUrl=info.dead_letter_queue_url, AttributeNames=["ApproximateNumberOfMessages"]
    )
    assert attrs["Attributes"]["ApproximateNumberOfMessages"] == "0"


def test_awkward_keys_work_through_events_and_api(s3, info, api):
    data = real_photos(1)[0].read_bytes()
    for key in (
        f"{unique('k')}/a b+c & d.jpg",
        f"{unique('k')}/düne/犬 🐶.jpg",
        f"{unique('k')}/x/y/z/deep%20path.jpg",
    ):
        s3.put_object(Bucket=info.bucket, Key=key, Body=data)
        body = api.wait(key)
        assert body["key"] == key and body["status"] == "tagged"
