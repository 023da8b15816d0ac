"""The HTTP API: validation, errors as JSON, pagination, vocabulary."""

from __future__ import annotations

import base64
import json
import uuid

import pytest

from tests.conftest import real_photos


@pytest.fixture(scope="module")
def tagged_folder(s3, info, api) -> tuple[str, list[str]]:
    folder = f"api-{uuid.uuid4().hex[:8]}"
    keys = []
    for path in real_photos(8):
        key = f"{folder}/{path.name}"
        s3.put_object(Bucket=info.bucket, Key=key, Body=path.read_bytes())
        keys.append(key)
    for key in keys:
        api.wait(key)
    return folder, keys


def test_unknown_key_is_a_json_404(api):
    status, body = api.image("no/such/key.jpg")
    assert status == 404 and "no tags for key" in body["error"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 1000}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"min_score": 2}, "min_score"),
        ({"min_score": "high"}, "min_score"),
        ({"next_token": "not-a-token"}, "next_token"),
    ],
)
def test_bad_parameters_are_json_400s(api, params, field):
    status, body = api.tag("dog", **params)
    assert status == 400, body
    assert field in body["error"]


def test_bad_tag_is_400(api):
    status, body = api.tag("<script>")
    assert status == 400 and "tag must be" in body["error"]


def test_pagination_walks_every_image_once_best_first(api, tagged_folder):
    _, keys = tagged_folder
    status, first = api.image(keys[0])
    tag = first["tags"][0]["tag"]
    everything = api.all_keys_with_tag(tag)
    pages, token, scores = [], None, []
    while True:
        params = {"limit": 2, **({"next_token": token} if token else {})}
        status, body = api.tag(tag, **params)
        assert status == 200 and len(body["images"]) <= 2
        pages += [img["key"] for img in body["images"]]
        scores += [img["score"] for img in body["images"]]
        token = body.get("next_token")
        if not token:
            break
    assert pages == everything and len(set(pages)) == len(pages)
    assert scores == sorted(scores, reverse=True)
    assert keys[0] in pages


def test_min_score_filters(api, tagged_folder):
    _, keys = tagged_folder
    _, first = api.image(keys[0])
    tag, score = first["tags"][0]["tag"], first["tags"][0]["score"]
    status, body = api.tag(tag, min_score=score, limit=100)
    assert status == 200 and all(img["score"] >= score - 1e-6 for img in body["images"])
    assert keys[0] in [img["key"] for img in body["images"]]


def test_edited_forged_and_replayed_tokens_are_refused(api, tagged_folder):
    _, keys = tagged_folder
    tag = api.image(keys[0])[1]["tags"][0]["tag"]
    status, page = api.tag(tag, limit=1)
    token = page.get("next_token")
    assert status == 200 and token, "needs a second page"
    body, _, mac = token.partition(".")
    positions = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))["p"]
    # Skip ahead by editing the position, keeping the original signature: refused.
    edited = json.dumps({"v": 1, "p": ["9999999#" + positions[0].split("#", 1)[1]]}, separators=(",", ":"))
    tampered = base64.urlsafe_b64encode(edited.encode()).decode().rstrip("=") + "." + mac
    forged = base64.urlsafe_b64encode(b'{"v":1,"p":[null]}').decode().rstrip("=")  # unsigned
    for bad in (tampered, forged, token[:-2]):
        status, answer = api.tag(tag, limit=1, next_token=bad)
        assert status == 400 and "next_token" in answer["error"], answer
    # A genuine token continues only the query that issued it.
    assert api.tag(tag, limit=1, min_score=0.5, next_token=token)[0] == 400
    assert api.tag(tag, limit=1, next_token=token)[0] == 200


def test_vocabulary_listing(api, model_dir):
    from cliptag.bundle import ModelBundle

    status, body = api.get("/tags")
    bundle = ModelBundle.open(model_dir)
    assert status == 200
    assert body["count"] == len(bundle.vocabulary.tags) == len(body["tags"])
    assert body["vocabulary_version"] == bundle.vocabulary.version
    dog = next(t for t in body["tags"] if t["name"] == "dog")
    assert dog["category"] == "animal" and "puppy" in dog["synonyms"]


def test_sample_api_events_are_answered(stack, tagged_folder):
    """events/api-*.json (for `sam local invoke -e`) go through the real handler."""
    from pathlib import Path

    from handlers import api as api_handler

    from devstack.stack import FakeContext

    events = Path(__file__).resolve().parents[2] / "events"
    expected = {
        "api-tags.json": 200,
        "api-tag-images.json": 200,
        "api-image-tags.json": 404,
        "api-search.json": 200,
        "api-category-images.json": 200,
    }
    for name, status in expected.items():
        result = api_handler.handler(json.loads((events / name).read_text()), FakeContext("api"))
        assert result["statusCode"] == status, (name, result)
        assert json.loads(result["body"])


def test_a_score_is_the_same_in_every_answer(api, tagged_folder):
    """An image's tag scores equal, exactly, the scores its tags' listings give it."""
    _, keys = tagged_folder
    for key in keys[:3]:
        _, body = api.image(key)
        for tag in body["tags"]:
            listing = api.tag(tag["tag"], min_score=tag["score"], limit=100)[1]["images"]
            assert tag["score"] in [img["score"] for img in listing if img["key"] == key], (key, tag)


def test_an_edited_token_is_called_invalid(api, tagged_folder):
    _, keys = tagged_folder
    tag = api.image(keys[0])[1]["tags"][0]["tag"]
    token = api.tag(tag, limit=1)[1]["next_token"]
    status, body = api.tag(tag, limit=1, next_token=token[:-3] + ("AAA" if token[-3:] != "AAA" else "BBB"))
    assert status == 400 and "invalid token" in body["error"], body


def test_limits_are_in_the_openapi_document():
    from handlers.api import openapi
    from handlers.api_common import MAX_TAG_LENGTH

    doc = json.loads(openapi())
    params = {p["name"]: p["schema"] for p in doc["paths"]["/tags/{tag}/images"]["get"]["parameters"]}
    assert params["tag"]["maxLength"] == MAX_TAG_LENGTH and "pattern" in params["tag"]
    assert (params["limit"]["minimum"], params["limit"]["maximum"]) == (1, 100)
    record = doc["components"]["schemas"]["ObjectRecord"]["properties"]
    assert "failed with a reason" in record["status"]["description"]
