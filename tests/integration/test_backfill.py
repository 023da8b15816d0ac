"""`cliptag backfill` against the local stack: objects that were in a bucket before any event."""

from __future__ import annotations

import csv
import gzip
import io
import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from cliptag import keys, wiring

from cliptag_cli import feed
from cliptag_cli.main import main
from devstack.stack import LocalStack
from tests.conftest import real_photos


@pytest.fixture
def archive(stack: LocalStack, s3: Any, tmp_path: Path) -> dict[str, Any]:
    """A bucket full of photos that never sent an event (no notifications), and a state file that
    points the cliptag command at it with the local stack's table and queue."""
    assert stack.info is not None
    bucket = f"archive-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    photos = real_photos(8)
    keys = [f"albums/{i:02d} {p.name}" for i, p in enumerate(photos)] + ["albums/notes.txt", "other/x.jpg"]
    for key, path in zip(keys, [*photos, photos[0], photos[1]], strict=True):
        s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())
    state = tmp_path / "stack.json"
    state.write_text(json.dumps({**json.loads(stack.write_state(tmp_path / "s.json").read_text()), "bucket": bucket}))
    return {
        "bucket": bucket,
        "state": state,
        "photos": [k for k in keys if k.endswith(".jpg") and k.startswith("albums/")],
    }


REAL_SEND = feed.QueueFeeder.send


class LostLaptop(Exception):
    """The process dies in the middle of a backfill."""


def sent_keys(monkeypatch: pytest.MonkeyPatch, fail_on_call: int = 0) -> list[str]:
    """Record what the backfill sends; optionally crash on the Nth send (a lost laptop)."""
    sent: list[str] = []
    original = REAL_SEND

    def send(self: feed.QueueFeeder, bodies: list[str]) -> None:
        if fail_on_call and len(sent_calls) + 1 == fail_on_call:
            raise LostLaptop
        sent_calls.append(len(bodies))
        sent.extend(o["key"] for b in bodies for o in json.loads(b)["objects"])
        original(self, bodies)

    sent_calls: list[int] = []
    monkeypatch.setattr(feed.QueueFeeder, "send", send)
    return sent


def args(archive: dict[str, Any], *extra: str) -> list[str]:
    return ["backfill", "--local-state", str(archive["state"]), "--prefix", "albums/", "--suffix", ".jpg", *extra]


def wait_tagged(bucket: str, keys: list[str], api: Any) -> None:
    def all_there() -> bool:
        return all((r := wiring.objects().get(bucket, k)) is not None and r.status == "tagged" for k in keys)

    deadline = time.monotonic() + 90
    while not all_there():
        assert time.monotonic() < deadline, "not all backfilled objects were tagged"
        time.sleep(0.3)


def test_dry_run_counts_and_sends_nothing(archive, monkeypatch, capsys):
    sent = sent_keys(monkeypatch)
    assert main(args(archive, "--dry-run")) == 0
    out = capsys.readouterr().out
    assert sent == [] and "listed 9, would send 8, skipped 0" in out and "1 outside *.jpg" in out
    assert "estimated cost $" in out
    assert all(wiring.objects().get(archive["bucket"], k) is None for k in archive["photos"])


def test_an_interrupted_backfill_resumes_and_sends_nothing_twice(archive, monkeypatch, api, s3):
    sent = sent_keys(monkeypatch, fail_on_call=3)  # pages of 2 keys: two pages sent, then the crash
    with pytest.raises(LostLaptop):
        main(args(archive, "--page-size", "2"))
    first = list(sent)
    assert len(first) == 4
    sent.clear()
    sent_keys_again = sent_keys(monkeypatch)
    assert main(args(archive, "--page-size", "2")) == 0  # continues from the checkpoint
    resumed = list(sent_keys_again)
    assert sorted(first + resumed) == sorted(archive["photos"])
    wait_tagged(archive["bucket"], archive["photos"], api)

    # Done and unchanged: a new run sends nothing. One photo overwritten: only it is sent.
    again = sent_keys(monkeypatch)
    assert main(args(archive)) == 0 and again == []
    changed = archive["photos"][3]
    s3.put_object(Bucket=archive["bucket"], Key=changed, Body=real_photos(9)[8].read_bytes())
    once_more = sent_keys(monkeypatch)
    assert main(args(archive)) == 0
    assert once_more == [changed]


def test_an_s3_inventory_report_is_read_instead_of_listing(archive, s3, monkeypatch, api):
    """The AWS-native input for buckets too large to list: the report's manifest and CSV files."""
    from urllib.parse import quote

    report = f"inventory-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=report)
    listed = s3.list_objects_v2(Bucket=archive["bucket"])["Contents"]
    rows = io.StringIO()
    writer = csv.writer(rows, quoting=csv.QUOTE_ALL)
    for o in listed:  # inventory CSV keys are URL-encoded
        writer.writerow([archive["bucket"], quote(o["Key"]), str(o["Size"]), o["ETag"].strip('"')])
    s3.put_object(Bucket=report, Key="inv/data/part-0.csv.gz", Body=gzip.compress(rows.getvalue().encode()))
    manifest = {
        "sourceBucket": archive["bucket"],
        "fileFormat": "CSV",
        "fileSchema": "Bucket, Key, Size, ETag",
        "files": [{"key": "inv/data/part-0.csv.gz", "size": 1, "MD5checksum": "x"}],
    }
    s3.put_object(Bucket=report, Key="inv/manifest.json", Body=json.dumps(manifest).encode())
    sent = sent_keys(monkeypatch)
    assert main(args(archive, "--inventory", f"s3://{report}/inv/manifest.json")) == 0
    assert sorted(sent) == sorted(archive["photos"])
    wait_tagged(archive["bucket"], archive["photos"], api)


def test_the_backlog_never_exceeds_its_cap():
    """Backpressure: the feeder waits for the taggers instead of filling the queue, also when one
    page holds more messages than the cap."""

    class Queue:
        def __init__(self) -> None:
            self.depth, self.peak, self.waits, self.now = 0, 0, 0, 0.0

        def drain(self, seconds: float) -> None:  # time passes while the feeder sleeps
            self.waits += 1
            self.now += seconds
            self.depth = max(0, self.depth - 7)  # the taggers drain 7 messages meanwhile

        def clock(self) -> float:
            return self.now

        def get_queue_attributes(self, **_: Any) -> dict[str, Any]:
            return {"Attributes": {"ApproximateNumberOfMessages": str(self.depth)}}

        def send_message_batch(self, Entries: list[Any], **_: Any) -> dict[str, Any]:  # noqa: N803 - boto3's name
            self.depth += len(Entries)
            self.peak = max(self.peak, self.depth)
            return {}

    for pages, page in ((40, 10), (1, 1000)):
        queue = Queue()
        feeder = feed.QueueFeeder(queue, "q", max_backlog=25, sleep=queue.drain, clock=queue.clock)
        for _ in range(pages):
            feeder.send(["{}"] * page)
        assert feeder.sent == pages * page and queue.peak <= 25 and queue.waits


def test_the_window_between_a_send_and_its_checkpoint_is_at_least_once(archive, monkeypatch, api, capsys):
    """A crash after a page is sent and before its checkpoint is saved: the page is listed again
    when the run resumes (sent again, or skipped if already tagged), and the duplicate changes
    nothing: every record is written exactly once."""
    from cliptag.adapters.dynamodb.items import object_key

    from cliptag_cli.jobs import Checkpoint

    real_save, saves = Checkpoint.save, []

    def save(self: Checkpoint, position: dict[str, Any]) -> None:
        saves.append(position)
        if len(saves) == 2:  # page 2 is in the queue; its checkpoint never reaches the table
            raise LostLaptop
        real_save(self, position)

    monkeypatch.setattr(Checkpoint, "save", save)
    sent = sent_keys(monkeypatch)
    with pytest.raises(LostLaptop):
        main(args(archive, "--page-size", "2"))
    assert len(sent) == 4  # two pages sent, one checkpoint saved
    monkeypatch.setattr(Checkpoint, "save", real_save)
    capsys.readouterr()
    again = sent_keys(monkeypatch)
    assert main(args(archive, "--page-size", "2")) == 0
    assert "at least once" in capsys.readouterr().err
    assert set(sent[:2]).isdisjoint(again)  # page 1 was checkpointed: never listed again
    wait_tagged(archive["bucket"], archive["photos"], api)
    table = wiring.table()
    revisions = {k: table.get(object_key(f"{archive['bucket']}/{k}"))["revision"] for k in archive["photos"]}
    assert set(revisions.values()) == {1}, revisions


def test_backfill_keeps_to_the_stack_key_filter(archive, monkeypatch, capsys):
    """The tagger may read only KeyPrefix*KeySuffix: backfill lists nothing else."""
    state = json.loads(archive["state"].read_text())
    archive["state"].write_text(json.dumps({**state, "key_prefix": "albums/", "key_suffix": ".jpg"}))
    sent = sent_keys(monkeypatch)
    plain = ["backfill", "--local-state", str(archive["state"]), "--dry-run"]
    assert main(plain) == 0
    assert "listed 9, would send 8" in capsys.readouterr().out  # other/x.jpg not listed, notes.txt filtered
    with pytest.raises(SystemExit, match="outside the stack's KeyPrefix"):
        main([*plain, "--prefix", "other/"])
    assert sent == []


def test_ctrl_c_prints_one_line_exits_130_and_the_run_continues(archive, stack):
    import os
    import signal
    import subprocess
    import sys

    from tests.conftest import ROOT

    command = [sys.executable, "-m", "cliptag_cli", *args(archive, "--page-size", "1", "--max-backlog", "1")]
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'functions'}:{ROOT}"}
    # Ctrl-C's SIGINT as a terminal delivers it: a run started in the background (`cmd &`, nohup)
    # inherits SIGINT ignored, and Python then installs no KeyboardInterrupt handler at all.
    proc = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    checkpoints = wiring.table()
    job = f"backfill s3://{archive['bucket']}/albums/"
    deadline = time.monotonic() + 60
    while checkpoints.get(keys.job_key(job)) is None:  # a page is sent and checkpointed
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, (out, err)
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert err.strip().splitlines()[-1] == "interrupted; run it again to continue from the checkpoint"
    # Resumed without the backlog of 1 (with it the feeder sends a page a minute: SQS's counts lag).
    resume = [sys.executable, "-m", "cliptag_cli", *args(archive, "--page-size", "1")]
    resumed = subprocess.run(resume, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from the checkpoint" in resumed.stderr
