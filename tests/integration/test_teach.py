"""A tag taught by example on the local stack, through the command line and the HTTP API: taught
from three transformed copies of one real COCO photo, it finds a fourth copy and none of 100
other real photos (nor of the other tests' photos in the bucket); a rejection holds through
re-teaching; removal takes it off every photo.

Random weights see colour layout more than things (a crop is another photo to them), so the
copies are resized and recompressed, which real weights and random ones both see through."""

from __future__ import annotations

import io
import json
import shutil
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from botocore.credentials import Credentials
from cliptag import wiring
from PIL import Image

from cliptag_cli.gallery.upstream import SignedApi
from cliptag_cli.main import main
from devstack.stack import LocalStack, StackInfo
from tests.conftest import real_photos

NAME = "our harbour"
# (scale, JPEG quality): each a different file; Pillow writes no EXIF unless asked.
COPIES = [(0.75, 85), (0.5, 70), (0.9, 60), (0.6, 92)]


def copies_of(data: bytes) -> list[bytes]:
    image = Image.open(io.BytesIO(data)).convert("RGB")
    out = []
    for scale, quality in COPIES:
        smaller = image.resize((int(image.width * scale), int(image.height * scale)), Image.Resampling.LANCZOS)
        buffer = io.BytesIO()
        smaller.save(buffer, "JPEG", quality=quality)
        out.append(buffer.getvalue())
    return out


def taught_on(api: Any, key: str) -> list[str]:
    status, body = api.image(key)
    assert status == 200, body
    return [t["source"] for t in body["tags"] if t["tag"] == NAME]


def wait_for(check: Any, what: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.5)


def scoring_of(info: StackInfo, key: str) -> str:
    record = wiring.objects().get(info.bucket, key)
    assert record is not None
    return record.scoring


def coco_128() -> list[Path]:
    photos = real_photos(128)
    if len(photos) < 128:
        pytest.skip("needs the 128 COCO photos of ../shared/data")
    return photos


def upload_copies(s3: Any, bucket: str, folder: str, photo: Path) -> list[str]:
    """The copies of ``photo`` (COPIES) under ``folder``: their keys, in COPIES' order."""
    copies = [f"{folder}/copy-{i}.jpg" for i in range(len(COPIES))]
    for key, data in zip(copies, copies_of(photo.read_bytes()), strict=True):
        s3.put_object(Bucket=bucket, Key=key, Body=data)
    return copies


def test_a_tag_taught_from_three_copies_finds_the_fourth_and_no_other_photo(
    stack: LocalStack, info: StackInfo, api: Any, s3: Any, tmp_path: Path, capsys: Any
) -> None:
    photos = coco_128()
    folder = f"teach-{uuid.uuid4().hex[:8]}"
    copies = upload_copies(s3, info.bucket, folder, photos[-1])  # no other test uploads the last photo
    others = [f"{folder}/other/{p.name}" for p in photos[1:101]]
    for key, path in zip(others, photos[1:101], strict=True):
        s3.put_object(Bucket=info.bucket, Key=key, Body=path.read_bytes())
    for key in copies + others:
        api.wait(key, timeout=60)
    state = stack.write_state(tmp_path / "stack.json")
    teach = ["teach", NAME, "--local-state", str(state), "--settle-seconds", "1"]

    capsys.readouterr()
    assert main([*teach, "--examples", *copies[:3], "--category", "places"]) == 0
    said = capsys.readouterr().out
    assert "3 of 3 found (expected recall 100%)" in said and "expected precision 100%" in said, said

    fourth = copies[3]
    wait_for(lambda: taught_on(api, fourth) == ["examples"], f"{fourth} never got the taught tag")
    for key in copies[:3]:
        assert taught_on(api, key) == ["examples"]
    version = scoring_of(info, fourth)
    wait_for(lambda: all(scoring_of(info, k) == version for k in others), "the library was not re-tagged")
    assert [k for k in others if taught_on(api, k)] == []
    page = api.all_keys_with_tag(NAME.upper())  # found like any tag: any case
    assert set(page) == set(copies)
    status, body = api.get("/tags")
    listed = {t["name"]: t for t in body["tags"]}
    assert listed[NAME]["source"] == "examples" and listed[NAME]["category"] == "places"
    assert listed[NAME]["taught"]["examples"] == 3
    status, body = api.get("/categories/places/images")
    assert status == 200 and {i["key"] for i in body["images"]} == set(copies)

    # A person rejects it on one copy; teaching the tag again (a fourth example) keeps it off.
    writer = SignedApi(info.api_url, info.region, Credentials("testing", "testing"))
    rejected = copies[1]
    answer = writer.decide(f"/images/{quote(rejected, safe='')}/tags/{quote(NAME, safe='')}", confirm=False)
    assert answer.status == 202, answer.body
    wait_for(lambda: taught_on(api, rejected) == [], f"{rejected} kept a rejected tag")
    assert main([*teach, "--examples", fourth]) == 0
    assert "a prototype from 4 example(s)" in capsys.readouterr().out
    wait_for(lambda: scoring_of(info, rejected) not in (version, ""), "no re-tag after teaching again")
    wait_for(lambda: scoring_of(info, copies[0]) == scoring_of(info, rejected), "the re-tag did not finish")
    assert taught_on(api, rejected) == []
    assert all(taught_on(api, k) == ["examples"] for k in copies if k != rejected)
    _, body = api.get("/tags")
    assert {t["name"]: t for t in body["tags"]}[NAME]["taught"]["examples"] == 4

    # Removed: off every photo, out of /tags.
    assert main([*teach, "--remove"]) == 0
    wait_for(lambda: all(taught_on(api, k) == [] for k in copies), "a removed tag stayed on a photo")
    _, body = api.get("/tags")
    assert NAME not in {t["name"] for t in body["tags"]}


def test_teaching_refuses_what_it_cannot_do(
    stack: LocalStack, info: StackInfo, api: Any, s3: Any, tmp_path: Path, capsys: Any
) -> None:
    photo = real_photos(1)[0].read_bytes()
    key = f"teach-refused-{uuid.uuid4().hex[:8]}/one.jpg"
    s3.put_object(Bucket=info.bucket, Key=key, Body=photo)
    api.wait(key)
    state = str(stack.write_state(tmp_path / "stack.json"))
    vocabulary_tag = api.get("/tags")[1]["tags"][0]["name"]
    capsys.readouterr()
    assert main(["teach", vocabulary_tag, "--examples", key, key + ".missing", "--local-state", state]) == 1
    assert "is a tag (or synonym) of the vocabulary" in capsys.readouterr().err
    assert main(["teach", "solo", "--examples", key, "--local-state", state]) == 1
    assert "at least 2 example photos" in capsys.readouterr().err
    assert main(["teach", "ghost", "--examples", key, "nowhere/none.jpg", "--local-state", state]) == 1
    assert "not tagged by the deployed model" in capsys.readouterr().err
    assert main(["teach", "a, b", "--examples", key, key, "--local-state", state]) == 1
    assert "has no comma" in capsys.readouterr().err  # /images?all= separates tags with commas
    assert main(["teach", "never-taught", "--remove", "--local-state", state]) == 1
    assert "no taught tag 'never-taught'" in capsys.readouterr().err


def test_a_taught_tag_survives_a_vocabulary_re_export_and_yields_to_a_tag_of_its_name(
    stack: LocalStack, info: StackInfo, api: Any, s3: Any, model_dir: Path, tmp_path: Path
) -> None:
    """Taught tags live in the table: a re-exported vocabulary leaves them scored; one that adds a
    tag of the same name wins (the taught one waits, its records re-tagged without it)."""
    from cliptag.bundle import ModelBundle

    from model_export.cli import main as export_main

    copies = upload_copies(s3, info.bucket, f"reexport-{uuid.uuid4().hex[:8]}", coco_128()[-3])
    for key in copies:
        api.wait(key)
    state = str(stack.write_state(tmp_path / "stack.json"))
    name = "our pier"
    assert main(["teach", name, "--examples", *copies[:3], "--local-state", state, "--settle-seconds", "1"]) == 0
    wait_for(lambda: all(sources(api, k, name) == ["examples"] for k in copies), "the taught tag was not given")

    vocabulary = ModelBundle.open(model_dir).vocabulary
    edits = {"kept": vocabulary.names[:50], "clash": [*vocabulary.names[:50], name]}
    dirs = {}
    for edit, names in edits.items():
        source = tmp_path / f"{edit}.yaml"
        source.write_text(
            'templates: ["a photo of a {}."]\ntags:\n  things: [' + ", ".join(map(json.dumps, names)) + "]\n"
        )
        dirs[edit] = tmp_path / edit
        shutil.copytree(model_dir, dirs[edit])
        assert export_main(["vocabulary", "--model-dir", str(dirs[edit]), "--vocabulary", str(source)]) == 0
    try:
        stack.redeploy(dirs["kept"])  # a re-export without the name: the taught tag is still scored
        assert main(["retag", "--local-state", state]) == 0
        wait_for(lambda: scoring_of(info, copies[3]) == with_taught_now(), "not re-tagged", timeout=300)
        assert all(sources(api, k, name) == ["examples"] for k in copies)
        stack.redeploy(dirs["clash"])  # the vocabulary now has the name: its tag, from the model
        assert main(["retag", "--local-state", state]) == 0
        wait_for(lambda: scoring_of(info, copies[3]) == with_taught_now(), "not re-tagged", timeout=300)
        assert all("examples" not in sources(api, k, name) for k in copies)
        assert [t["source"] for t in api.get("/tags")[1]["tags"] if t["name"] == name] == ["vocabulary"]
    finally:
        stack.redeploy(model_dir)  # the other tests' model again
        wiring.pipeline()
        assert main(["teach", name, "--remove", "--local-state", state, "--settle-seconds", "1"]) == 0


def sources(api: Any, key: str, tag: str) -> list[str]:
    status, body = api.image(key)
    assert status == 200, body
    return [t["source"] for t in body["tags"] if t["tag"] == tag]


def with_taught_now() -> str:
    """The scoring the deployed tagger stamps records with now (its taught set's version too)."""
    from cliptag_cli.retag import deployed

    wiring.pipeline()  # the tagger records what it runs
    now = deployed(wiring.table())
    assert now is not None
    return now.scoring
