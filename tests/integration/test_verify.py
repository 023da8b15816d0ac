"""`cliptag verify` against the local stack: each kind of drift is injected behind the tagger's
back (S3 without events, DynamoDB and S3 Vectors writes), verify finds exactly it, `--repair`
fixes it with no model run for an unchanged object, and verify then reports the library clean."""

from __future__ import annotations

import json
import re
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cliptag import keys, wiring

from cliptag_cli.main import main
from cliptag_cli.verify import snapshot as snapshot_module
from devstack.stack import LocalStack
from tests.conftest import real_photos
from tests.integration.test_retag import queue_idle

EVENTS = ["s3:ObjectCreated:*", "s3:ObjectRemoved:*", "s3:LifecycleExpiration:*"]


class Library:
    """A bucket of its own whose events reach the local stack's tagger, and a state file that
    points the cliptag command at it."""

    def __init__(self, stack: LocalStack, s3: Any, tmp_path: Path) -> None:
        assert stack.info is not None
        self.stack, self.s3, self.info = stack, s3, stack.info
        self.bucket = f"verify-{uuid.uuid4().hex[:8]}"
        s3.create_bucket(Bucket=self.bucket)
        self.events(on=True)
        state = json.loads(stack.write_state(tmp_path / "s.json").read_text())
        self.state = tmp_path / "stack.json"
        self.state.write_text(json.dumps({**state, "bucket": self.bucket}))
        self.state_dir = tmp_path / "verify-state"

    def events(self, on: bool) -> None:
        config = {"QueueConfigurations": [{"QueueArn": self.stack.queue_arn, "Events": EVENTS}]} if on else {}
        self.s3.put_bucket_notification_configuration(Bucket=self.bucket, NotificationConfiguration=config)

    def verify(self, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
        capsys.readouterr()
        code = main(
            ["verify", "--local-state", str(self.state), "--state-dir", str(self.state_dir), "--settle", "0", *extra]
        )
        return code, capsys.readouterr().out

    def ref(self, key: str) -> str:
        return keys.object_ref(self.bucket, key)


def kinds(out: str) -> dict[str, int]:
    return {kind: int(n) for n, kind in re.findall(r"^\s+(\d+)\s+.*\[([a-z-]+)\]$", out, re.M)}


def fresh(data: bytes) -> bytes:
    return data + uuid.uuid4().bytes  # content nobody has embedded


def test_verify_finds_each_kind_of_drift_and_repair_leaves_it_clean(stack, s3, tmp_path, capsys):
    lib = Library(stack, s3, tmp_path)
    photos = [p.read_bytes() for p in real_photos(9)]
    names = [f"album/{i}.jpg" for i in range(8)]
    for name, data in zip(names, photos, strict=False):
        s3.put_object(Bucket=lib.bucket, Key=name, Body=data)
    deadline = time.monotonic() + 90
    while not all((r := wiring.objects().get(lib.bucket, n)) is not None and r.tags for n in names):
        assert time.monotonic() < deadline, "the library was not tagged"
        time.sleep(0.3)
    queue_idle(stack)
    code, out = lib.verify(capsys)
    assert code == 0 and "clean" in out

    # Drift, behind the tagger's back.
    lib.events(on=False)
    s3.put_object(Bucket=lib.bucket, Key="album/new.jpg", Body=fresh(photos[8]))  # an event that never came
    s3.delete_object(Bucket=lib.bucket, Key=names[0])  # a delete whose event was lost
    s3.put_object(Bucket=lib.bucket, Key=names[1], Body=fresh(photos[0]))  # an overwrite whose event was lost
    lib.events(on=True)
    table, index = wiring.table(), wiring.vector_index()
    assert index is not None
    items = list(table.query(f"{keys.PK} = :pk", {":pk": keys.object_pk(lib.ref(names[2]))}))
    tag_item = next(i for i in items if keys.tag_from_sk(i[keys.SK]))
    loser = {keys.TAG_INDEX_SK: keys.tag_index_sk(-0.5, lib.ref(names[2])), "score": Decimal("-0.5")}
    table.put({**tag_item, **loser})  # another writer's score left in the index
    items = list(table.query(f"{keys.PK} = :pk", {":pk": keys.object_pk(lib.ref(names[3]))}))
    table.batch_write(
        [], [{keys.PK: i[keys.PK], keys.SK: i[keys.SK]} for i in items if keys.tag_from_sk(i[keys.SK])][:1]
    )
    index.delete_many([lib.ref(names[4])])  # a vector lost
    dim = wiring.bundle().embed_dim
    ghost = {"key": lib.ref("album/ghost.jpg"), "data": {"float32": np.ones(dim, np.float32).tolist()},
             "metadata": {"ref": lib.ref("album/ghost.jpg"), "content_id": "0" * 64, "tags": [], "categories": [],
                          "folders": ["album/"]}}  # fmt: skip
    index.client.put_vectors(vectorBucketName=index.bucket, indexName=index.index, vectors=[ghost])
    record5 = wiring.objects().get(lib.bucket, names[5])
    assert record5 is not None
    table.put({keys.PK: keys.object_pk(lib.ref(names[5])), keys.SK: keys.duplicate_sk(lib.ref("album/gone.jpg")),
               "content_id": record5.content_id, "other_ref": lib.ref("album/gone.jpg"),
               "other_content_id": "1" * 64, "similarity": Decimal("0.99")})  # fmt: skip

    # --dry-run estimates and reads nothing else.
    capsys.readouterr()
    assert main(["verify", "--local-state", str(lib.state), "--dry-run"]) == 0
    assert "estimated cost $" in capsys.readouterr().out

    # Interrupted while reading the table, then resumed: the same findings.
    real_add_table = snapshot_module.Snapshot.add_table

    def interrupted(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    snapshot_module.Snapshot.add_table = interrupted  # type: ignore[method-assign]
    try:
        assert lib.verify(capsys)[0] == 130
    finally:
        snapshot_module.Snapshot.add_table = real_add_table  # type: ignore[method-assign]
    code, out = lib.verify(capsys)
    assert code == 1, out
    assert kinds(out) == {
        "missing-record": 1,
        "gone-object": 1,
        "changed-object": 1,
        "tag-items": 2,
        "missing-vector": 1,
        "orphan-vector": 1,
        "stale-duplicate": 1,
    }, out
    for example in ("album/new.jpg", names[0], names[1], names[2], names[3], names[4], "album/ghost.jpg"):
        assert example in out

    images = wiring.pipeline().encoder.images
    code, out = lib.verify(capsys, "--repair")
    assert code == 1 and "repaired:" in out, out
    queue_idle(stack)
    code, out = lib.verify(capsys)
    assert code == 0 and "clean" in out, out
    # Only the two new contents (the new object, the overwrite) went through the model.
    assert wiring.pipeline().encoder.images - images == 2
    assert wiring.objects().get(lib.bucket, names[0]) is None
    record1 = wiring.objects().get(lib.bucket, names[1])
    assert record1 is not None and record1.etag == s3.head_object(Bucket=lib.bucket, Key=names[1])["ETag"].strip('"')


def test_verify_says_when_it_cannot_run(tmp_path, capsys):
    state = tmp_path / "stack.json"
    state.write_text(json.dumps({"bucket": "b", "table": "t", "queue_url": "q", "region": "us-east-1",
                                 "aws_endpoint_url": "http://127.0.0.1:9", "api_url": ""}))  # fmt: skip
    assert main(["verify", "--local-state", str(state), "--state-dir", str(tmp_path)]) == 2
    assert "verify: error:" in capsys.readouterr().err
    assert main(["verify", "--local-state", str(tmp_path / "none.json"), "--state-dir", str(tmp_path)]) == 2
    assert "no local stack" in capsys.readouterr().err  # a refusal is an error, not drift
