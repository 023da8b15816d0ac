"""`cliptag captions` on the local stack: photos tagged while Captions was Off get their caption
and keywords once it is On, each content captioned once however many keys hold it; a second run
finds nothing left; with Captions Off a run refuses and a dry run counts and prices."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from cliptag_cli.main import main
from devstack.stack import LocalStack, StackInfo
from tests.conftest import real_photos
from tests.integration.test_captions import caption_tags, captioned, unique

pytestmark = pytest.mark.integration


def test_photos_tagged_before_captions_are_captioned_by_the_backfill(
    stack: LocalStack,
    info: StackInfo,
    s3: Any,
    api: Any,
    caption_model: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder = f"before-captions-{uuid.uuid4().hex[:6]}/"
    first, second = (unique(p.read_bytes()) for p in real_photos(5)[3:5])
    uploads = {f"{folder}a.jpg": first, f"{folder}b.jpg": second, f"{folder}a-copy.jpg": first}
    try:
        for key, body in uploads.items():  # Captions is Off: tagged, never captioned
            s3.put_object(Bucket=info.bucket, Key=key, Body=body)
        for key in uploads:
            assert not api.wait(key, lambda body: body.get("status") == "tagged", timeout=60).get("caption")
        state = str(stack.write_state(tmp_path / "off.json"))
        job = ["captions", "--local-state", state, "--prefix", folder]

        assert main(job) == 1  # no caption queue: it says so and sends nothing
        assert "no caption queue" in capsys.readouterr().out
        assert main([*job, "--dry-run"]) == 0
        out = capsys.readouterr().out
        assert "3 records without a caption: 2 contents to caption, 0 captioned already" in out
        assert "captions $" in out  # priced before anything runs

        stack.start_captions(caption_model)
        try:
            on = ["captions", "--local-state", str(stack.write_state(tmp_path / "on.json")), "--prefix", folder]
            assert main(on) == 0
            assert "sent 2 caption requests" in capsys.readouterr().out
            records = {key: captioned(api, key) for key in uploads}
            original, copy = records[f"{folder}a.jpg"], records[f"{folder}a-copy.jpg"]
            assert len(original["caption"].split()) > 3 and caption_tags(original)
            assert copy["caption"] == original["caption"] and caption_tags(copy) == caption_tags(original)
            assert records[f"{folder}b.jpg"]["caption"]
            assert any(t["source"] == "model" for t in original["tags"])  # the model's tags kept

            assert main([*on, "--dry-run"]) == 0  # nothing left
            assert "0 records without a caption: 0 contents to caption" in capsys.readouterr().out
        finally:
            stack.stop_captions()
    finally:
        for key in uploads:
            s3.delete_object(Bucket=info.bucket, Key=key)
        for key in uploads:
            api.wait_gone(key)
