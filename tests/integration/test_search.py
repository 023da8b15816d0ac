"""Search by meaning through the HTTP API: free text, similar images, near-duplicates, tag names as
people type them, categories; and the vector index following uploads, overwrites and deletes.

Random weights make the rankings meaningless, not arbitrary: every expected order here is
computed independently from the same model (the text encoder and the stored image embeddings).
"""

from __future__ import annotations

import io
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cliptag import keys, wiring
from cliptag.adapters.dynamodb import items
from numpy.typing import NDArray
from PIL import Image

from devstack.stack import LocalStack
from model_export.near_duplicates import copies
from tests.conftest import real_photos
from tests.integration.conftest import folder_of, sha256

QUERY = "a dog running on a sandy beach"


def get(api: Any, path: str, **params: Any) -> tuple[int, dict[str, Any]]:
    query = f"?{urllib.parse.urlencode(params)}" if params else ""
    status, body = api.get(path + query)
    return status, body


def quoted(key: str) -> str:
    return urllib.parse.quote(key, safe="")


def vector_of(stack: LocalStack, key: str) -> dict[str, Any] | None:
    assert stack.info is not None
    found = stack.client("s3vectors").get_vectors(
        vectorBucketName=stack.info.vector_bucket,
        indexName=stack.info.vector_index,
        keys=[keys.vector_key(keys.object_ref(stack.info.bucket, key))],
        returnData=True,
        returnMetadata=True,
    )["vectors"]
    return found[0] if found else None


def wait_for(condition: Any, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.25)


def ranked(library: dict[str, NDArray[np.float32]], vector: NDArray[np.float32]) -> list[float]:
    return sorted((float(e @ vector) for e in library.values()), reverse=True)


def test_free_text_search_ranks_the_folder_by_meaning(api, library, model):
    status, body = get(api, "/search", q=QUERY, prefix=folder_of(library), limit=5)
    assert status == 200, body
    query = model.text.embed([QUERY])[0]
    # The five best of the folder, best first (the twins tie, so compare scores, then each hit's own).
    assert [h["score"] for h in body["images"]] == pytest.approx(ranked(library, query)[:5], abs=1e-4)
    for hit in body["images"]:
        assert hit["score"] == pytest.approx(float(library[hit["key"]] @ query), abs=1e-4)
        _, record = api.image(hit["key"])
        assert hit["tags"] == record["tags"][:5]  # each hit with its best tags


def test_search_filters_by_tag_category_and_min_score(api, library):
    folder = folder_of(library)
    _, everything = get(api, "/search", q=QUERY, prefix=folder, limit=100)
    assert {h["key"] for h in everything["images"]} == set(library)
    first = everything["images"][0]
    tag = first["tags"][0]["tag"]
    _, tagged = get(api, "/search", q=QUERY, prefix=folder, tag=tag.upper(), limit=100)  # any case
    with_tag = [h["key"] for h in everything["images"] if tag in {t["tag"] for t in api.image(h["key"])[1]["tags"]}]
    assert [h["key"] for h in tagged["images"]] == with_tag
    category = api.image(first["key"])[1]["categories"][-1]["category"]
    _, in_category = get(api, "/search", q=QUERY, prefix=folder, category=category, limit=100)
    in_it = [
        h["key"]
        for h in everything["images"]
        if category in {c["category"] for c in api.image(h["key"])[1]["categories"]}
    ]
    assert [h["key"] for h in in_category["images"]] == in_it and first["key"] in in_it
    floor = everything["images"][3]["score"]
    _, above = get(api, "/search", q=QUERY, prefix=folder, min_score=floor, limit=100)
    assert [h["key"] for h in above["images"]] == [h["key"] for h in everything["images"] if h["score"] >= floor]


def test_search_refuses_what_it_cannot_answer(api):
    assert get(api, "/search")[0] == 400  # q is required
    assert get(api, "/search", q="x" * 301)[0] == 400
    assert get(api, "/search", q="dog", limit=101)[0] == 400  # S3 Vectors' topK is at most 100
    assert get(api, "/search", q="dog", prefix="no-slash")[0] == 400
    status, body = get(api, "/search", q="dog", tag="no such tag at all")
    assert status == 404 and body["error"] == "unknown tag 'no such tag at all'"


def test_similar_images_come_from_the_stored_vector(api, library):
    folder = folder_of(library)
    key, twin = next(iter(library)), list(library)[-1]
    status, body = get(api, f"/images/{quoted(key)}/similar", prefix=folder, limit=4)
    assert status == 200, body
    hits = [h["key"] for h in body["images"]]
    assert key not in hits and hits[0] == twin and body["images"][0]["score"] == pytest.approx(1.0, abs=1e-5)
    others = {k: v for k, v in library.items() if k not in (key, twin)}
    assert [h["score"] for h in body["images"][1:]] == pytest.approx(ranked(others, library[key])[:3], abs=1e-4)
    assert get(api, f"/images/{quoted(folder + 'nothing-here.jpg')}/similar")[0] == 404


def test_synonyms_and_case_resolve_to_the_tag(api):
    status, by_synonym = api.tag("HUMAN")  # `human` is a synonym of `person`
    assert status == 200 and by_synonym["tag"] == "person"
    status, spaced = api.tag("Meeting  Room")
    assert status == 200 and spaced["tag"] == "meeting room"
    assert api.tag("person")[1]["images"] == by_synonym["images"]


def test_an_unknown_tag_is_a_404_with_close_matches(api):
    status, body = api.tag("persn")
    assert status == 404 and body["error"] == "unknown tag 'persn'"
    assert "person" in body["suggestions"] and len(body["suggestions"]) <= 5
    status, body = get(api, "/categories/animls/images")
    assert status == 404 and "animal" in body["suggestions"]


def test_a_category_lists_images_of_any_of_its_tags_best_first(api, library, info):
    key = next(iter(library))
    category = api.image(key)[1]["categories"][0]
    status, first = get(api, f"/categories/{urllib.parse.quote(category['category'].replace('_', ' '))}/images")
    assert status == 200 and first["tag"] == category["category"]
    images, token = [], None
    while True:  # small pages: an image met under several of the category's tags is listed once
        params = {"limit": 3, **({"next_token": token} if token else {})}
        status, page = get(api, f"/categories/{category['category']}/images", **params)
        assert status == 200, page
        images += page["images"]
        token = page.get("next_token")
        if not token:
            break
    assert images[: len(first["images"])] == first["images"]
    scores = [img["score"] for img in images]
    assert scores == sorted(scores, reverse=True) and len({img["key"] for img in images}) == len(images)
    assert {"key": key, "score": category["score"]}.items() <= next(i for i in images if i["key"] == key).items()
    for img in [i for i in images if i["bucket"] == info.bucket][:5]:  # each listed by its best tag in it
        record = api.image(img["key"])[1]
        assert img["score"] == max(t["score"] for t in record["tags"] if t["tag"] in tags_in(api, category["category"]))
    _, tag_token_page = api.tag("person", limit=1)
    if tag_token_page.get("next_token"):  # a tag's token does not continue a category's listing
        status, _ = get(api, f"/categories/{category['category']}/images", next_token=tag_token_page["next_token"])
        assert status == 400


def tags_in(api: Any, category: str) -> set[str]:
    _, vocabulary = api.get("/tags")
    return {t["name"] for t in vocabulary["tags"] if t["category"] == category}


def test_overwrite_replaces_the_vector_and_delete_removes_it(api, s3, info, stack, model):
    photos = real_photos(12)
    key = f"search-{uuid.uuid4().hex[:8]}/changing.jpg"
    s3.put_object(Bucket=info.bucket, Key=key, Body=photos[9].read_bytes())
    api.wait(key)
    before = vector_of(stack, key)
    assert before is not None
    s3.put_object(Bucket=info.bucket, Key=key, Body=photos[10].read_bytes())
    content = api.wait(key, until=lambda b: b["content_id"] != before["metadata"]["content_id"])["content_id"]
    wait_for(lambda: (v := vector_of(stack, key)) is not None and v["metadata"]["content_id"] == content, "overwrite")
    after = vector_of(stack, key)
    assert after is not None
    assert np.allclose(after["data"]["float32"], model.stored(photos[10].read_bytes()), atol=1e-6)
    s3.delete_object(Bucket=info.bucket, Key=key)
    api.wait_gone(key)
    wait_for(lambda: vector_of(stack, key) is None, "the vector's removal")
    _, found = get(api, "/search", q=QUERY, prefix=key.rsplit("/", 1)[0] + "/")
    assert found["images"] == []


def test_a_failed_overwrite_takes_the_image_out_of_search(api, s3, info, stack):
    key = f"search-{uuid.uuid4().hex[:8]}/becomes-broken.jpg"
    s3.put_object(Bucket=info.bucket, Key=key, Body=real_photos(1)[0].read_bytes())
    api.wait(key)
    assert vector_of(stack, key) is not None
    s3.put_object(Bucket=info.bucket, Key=key, Body=b"not an image")
    api.wait(key, until=lambda b: b["status"] == "failed")
    wait_for(lambda: vector_of(stack, key) is None, "the failed object's vector removal")


# -- near-duplicates --------------------------------------------------------------------------
@pytest.fixture
def near_duplicates_on(stack: LocalStack, model_dir: Path) -> Iterator[float]:
    stack.redeploy(NEAR_DUPLICATES="On", NEAR_DUPLICATE_THRESHOLD="")
    yield wiring.near_duplicate_threshold()
    stack.redeploy(NEAR_DUPLICATES="Off")


def jpeg_with_exif(data: bytes) -> bytes:
    """The photo with EXIF metadata, so that stripping it makes a copy with other bytes."""
    image = Image.open(io.BytesIO(data))
    exif = Image.Exif()
    exif[0x010F] = "cliptag test camera"  # Make
    out = io.BytesIO()
    image.save(out, "JPEG", quality=95, exif=exif)
    return out.getvalue()


def test_near_duplicates_are_recorded_on_both_objects(api, s3, info, model, near_duplicates_on):
    threshold = near_duplicates_on
    photos = real_photos(12)
    folder = f"dups-{uuid.uuid4().hex[:8]}/"
    original = jpeg_with_exif(photos[0].read_bytes())
    made = copies(original)
    uploads = {folder + "original.jpg": original, folder + "exact-copy.jpg": original}
    uploads |= {f"{folder}{kind.replace(' ', '-')}.jpg": data for kind, data in made.items()}
    uploads |= {f"{folder}other-{i}.jpg": p.read_bytes() for i, p in enumerate(photos[1:6])}
    for key, data in uploads.items():
        s3.put_object(Bucket=info.bucket, Key=key, Body=data)
        api.wait(key)
    base = model.stored(original)
    expected = {
        key for key, data in uploads.items() if data != original and float(model.stored(data) @ base) >= threshold
    }
    # The copies the model can tell apart at its threshold: resized, recompressed, EXIF stripped
    # (lightly cropped too with real weights; docs/search.md gives each model's figures).
    assert {folder + "resized.jpg", folder + "recompressed.jpg", folder + "exif-stripped.jpg"} <= expected
    assert not any("other-" in key for key in expected)
    status, body = get(api, f"/images/{quoted(folder + 'original.jpg')}/duplicates")
    assert status == 200 and body["checked"] is True
    # (Other tests store re-encodings of the same COCO photo elsewhere in the bucket: near-duplicates too.)
    listed = {img["key"] for img in body["images"] if img["key"].startswith(folder)}
    assert listed == expected  # the exact copy (same bytes) is not a near-duplicate
    sims = [img["similarity"] for img in body["images"]]
    assert sims == sorted(sims, reverse=True) and min(sims) >= threshold
    for key in expected:  # recorded under both objects
        back = get(api, f"/images/{quoted(key)}/duplicates")[1]
        assert folder + "original.jpg" in {img["key"] for img in back["images"]}
    # A copy deleted or overwritten with another photo stops being listed.
    s3.delete_object(Bucket=info.bucket, Key=folder + "resized.jpg")
    api.wait_gone(folder + "resized.jpg")
    s3.put_object(Bucket=info.bucket, Key=folder + "recompressed.jpg", Body=photos[7].read_bytes())
    api.wait(folder + "recompressed.jpg", until=lambda b: b["content_id"] == sha256(photos[7].read_bytes()))
    wait_for(
        lambda: (
            folder + "recompressed.jpg"
            not in {i["key"] for i in get(api, f"/images/{quoted(folder + 'original.jpg')}/duplicates")[1]["images"]}
        ),
        "the overwritten copy to leave the list",
    )
    now = {
        img["key"]
        for img in get(api, f"/images/{quoted(folder + 'original.jpg')}/duplicates")[1]["images"]
        if img["key"].startswith(folder)
    }
    assert now == expected - {folder + "resized.jpg", folder + "recompressed.jpg"}
    # ... and its items are gone from the table too, under both objects (verify finds none stale).
    for gone in ("resized.jpg", "recompressed.jpg"):
        ref = keys.object_ref(info.bucket, folder + gone)
        own = wiring.table().query(f"{keys.PK} = :pk", {":pk": keys.object_pk(ref)}, ConsistentRead=True)
        assert not [i for i in own if i[keys.SK].startswith(keys.DUPLICATE_PREFIX)], (gone, list(own))
        mirror = items.object_key(keys.object_ref(info.bucket, folder + "original.jpg"), keys.duplicate_sk(ref))
        assert wiring.table().get(mirror) is None


def test_duplicates_say_when_the_check_is_off(api, library):
    status, body = get(api, f"/images/{quoted(next(iter(library)))}/duplicates")
    assert status == 200 and body == {"key": next(iter(library)), "checked": False, "images": []}
    assert get(api, f"/images/{quoted('no/such.jpg')}/duplicates")[0] == 404


# -- filling a new index ------------------------------------------------------------------------
def test_a_retag_fills_a_new_search_index_without_the_model(api, library, stack, model_dir, tmp_path):
    """Search deployed on a stack whose objects were tagged before it (here: a second index, as
    for a model of another dimension): `cliptag retag` puts every object's vector, no inference."""
    from tests.integration.test_retag import queue_idle, run_retag

    assert stack.info is not None
    info, s3vectors = stack.info, stack.client("s3vectors")
    index = f"images-fresh-{uuid.uuid4().hex[:6]}"
    s3vectors.create_index(
        vectorBucketName=info.vector_bucket,
        indexName=index,
        dataType="float32",
        dimension=wiring.bundle().embed_dim,
        distanceMetric="cosine",
        metadataConfiguration={"nonFilterableMetadataKeys": ["ref", "content_id"]},
    )
    try:
        stack.redeploy(VECTOR_INDEX=index)
        run_retag(stack.write_state(tmp_path / "stack.json"), list(library), info.bucket)
        queue_idle(stack)  # records are written before vectors: the batches must have finished
        found = s3vectors.get_vectors(
            vectorBucketName=info.vector_bucket,
            indexName=index,
            keys=[keys.vector_key(keys.object_ref(info.bucket, k)) for k in library],
            returnData=True,
        )["vectors"]
        by_key = {v["key"].split("/", 1)[1]: v["data"]["float32"] for v in found}
        assert set(by_key) == set(library)
        for key, vector in by_key.items():
            assert np.allclose(vector, library[key], atol=1e-6)
        # The redeployed container embedded nothing: it re-scored the stored embeddings.
        assert wiring.image_encoder().images == 0
    finally:
        stack.redeploy(VECTOR_INDEX=info.vector_index)
