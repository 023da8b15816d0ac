"""Failed objects listed with their reasons, from the sparse failure index: over HTTP and with
`cliptag failures`; an object tagged again leaves the list."""

from __future__ import annotations

import uuid

from cliptag_cli.main import main
from tests.conftest import real_photos


def all_failures(api) -> list[dict]:
    images, token = [], None
    while True:
        status, body = api.get("/images?status=failed&limit=2" + (f"&next_token={token}" if token else ""))
        assert status == 200, body
        images += body["images"]
        token = body.get("next_token")
        if not token:
            return images


def test_failures_are_listed_with_reasons_and_leave_when_fixed(s3, info, api, stack, tmp_path, capsys):
    folder = f"failures-{uuid.uuid4().hex[:6]}"
    bad = {
        f"{folder}/empty.jpg": b"",
        f"{folder}/notes.jpg": b"not an image at all",
        f"{folder}/cut.jpg": b"\xff\xd8\xff",
    }
    good = f"{folder}/fine.jpg"
    for key, data in bad.items():
        s3.put_object(Bucket=info.bucket, Key=key, Body=data)
    s3.put_object(Bucket=info.bucket, Key=good, Body=real_photos(1)[0].read_bytes())
    for key in [*bad, good]:
        api.wait(key)

    listed = {img["key"]: img for img in all_failures(api)}
    assert set(bad) <= set(listed) and good not in listed
    assert "0 bytes" in listed[f"{folder}/empty.jpg"]["error"]
    assert all(listed[k]["status"] == "failed" and listed[k]["error"] for k in bad)

    state = stack.write_state(tmp_path / "stack.json")
    assert main(["failures", "--local-state", str(state)]) == 0
    printed = capsys.readouterr().out
    assert all(key in printed for key in bad) and good not in printed and "not a recognised image" in printed

    fixed = f"{folder}/notes.jpg"
    s3.put_object(Bucket=info.bucket, Key=fixed, Body=real_photos(2)[1].read_bytes())
    api.wait(fixed, until=lambda body: body["status"] == "tagged")
    assert fixed not in {img["key"] for img in all_failures(api)}


def test_failure_listing_validates_like_the_other_listings(s3, info, api):
    keys = [f"failures-{uuid.uuid4().hex[:6]}/{n}.jpg" for n in range(2)]
    for key in keys:
        s3.put_object(Bucket=info.bucket, Key=key, Body=b"")
        api.wait(key)
    assert api.get("/images?status=tagged")[0] == 400
    assert api.get("/images")[0] == 400
    status, body = api.get("/images?status=failed&limit=1")
    token = body["next_token"]
    edited = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    status, body = api.get(f"/images?status=failed&limit=1&next_token={edited}")
    assert status == 400 and "invalid token" in body["error"]
