"""`cliptag retag` after vocabulary edits, through the local stack's queue and tagger: no S3 read,
no inference, the tags a fresh tagging gives, and nothing written for tags that did not change."""

from __future__ import annotations

import re
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cliptag import wiring

from bench.writes import metering
from cliptag_cli.main import main
from devstack.stack import LocalStack
from tests.conftest import real_photos

TEMPLATES = 'templates: ["a photo of a {}."]\n'
VOCABULARIES = {
    "a": TEMPLATES + "tags:\n  animal: [dog, cat]\n  place: [beach, forest, city]\n",
    # forest removed, city renamed town; dog, cat and beach untouched
    "b": TEMPLATES + "tags:\n  animal: [dog, cat]\n  place: [beach, town]\n",
    # a tag whose threshold nothing reaches: every object keeps its tags
    "c": TEMPLATES + "tags:\n  animal: [dog, cat, {name: zebra, threshold: 1.0}]\n  place: [beach, town]\n",
}


@pytest.fixture(scope="module")
def model_dirs(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The stack's model with each vocabulary, each edited from the one before (as a user would)."""
    from model_export.cli import main as export_main

    root, previous, dirs = tmp_path_factory.mktemp("vocabularies"), model_dir, {}
    for name, text in VOCABULARIES.items():
        (root / f"{name}.yaml").write_text(text, "utf-8")
        dirs[name] = root / name
        shutil.copytree(previous, dirs[name])
        assert (
            export_main(["vocabulary", "--model-dir", str(dirs[name]), "--vocabulary", str(root / f"{name}.yaml")]) == 0
        )
        previous = dirs[name]
    return dirs


@pytest.fixture(scope="module")
def deployed(stack: LocalStack, model_dir: Path) -> Iterator[LocalStack]:
    yield stack
    stack.redeploy(model_dir)  # the other tests' model again
    wiring.pipeline()


def run_retag(state: Path, keys: list[str], bucket: str, timeout: float = 120) -> None:
    assert main(["retag", "--local-state", str(state)]) == 0
    scoring = wiring.deployment().scoring
    deadline = time.monotonic() + timeout
    while any((r := wiring.objects().get(bucket, k)) is None or r.scoring != scoring for k in keys):
        assert time.monotonic() < deadline, "the re-tag did not reach every object"
        time.sleep(0.3)


def queue_idle(stack: LocalStack, timeout: float = 120) -> None:
    sqs, deadline = stack.client("sqs"), time.monotonic() + timeout
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    assert stack.info is not None
    while sum(
        int(v)
        for v in sqs.get_queue_attributes(QueueUrl=stack.info.queue_url, AttributeNames=names)["Attributes"].values()
    ):
        assert time.monotonic() < deadline
        time.sleep(0.3)


def tags_of(body: dict[str, Any]) -> dict[str, float]:
    return {t["tag"]: t["score"] for t in body["tags"]}


def test_retag_after_vocabulary_edits(deployed, model_dirs, s3, info, api, tmp_path, capsys):
    stack = deployed
    state = stack.write_state(tmp_path / "stack.json")
    stack.redeploy(model_dirs["a"])
    folder = f"retag-{uuid.uuid4().hex[:6]}"
    photos = real_photos(4)
    keys = [f"{folder}/{p.name}" for p in photos]
    for key, path in zip(keys, photos, strict=True):
        s3.put_object(Bucket=info.bucket, Key=key, Body=path.read_bytes())
    before = {
        key: tags_of(
            api.wait(key, until=lambda b: {t["tag"] for t in b["tags"]} == {"dog", "cat", "beach", "forest", "city"})
        )
        for key in keys
    }
    queue_idle(stack)

    # Vocabulary b (a removed tag, a renamed one), previewed before it is deployed: the exact
    # write units, from the stored embeddings re-scored locally by the bulk scorer.
    capsys.readouterr()
    assert main(["retag", "--dry-run", "--model-dir", str(model_dirs["b"]), "--local-state", str(state)]) == 0
    preview = re.search(
        r"(\d+) tag items change, (\d+) objects keep their tags; (\d+) write units", capsys.readouterr().out
    )
    assert preview, "the dry run printed no exact figures"
    predicted_units = int(preview[3])

    # Deployed: a new container, as after `sam deploy`.
    stack.redeploy(model_dirs["b"])
    pipeline = wiring.pipeline()
    images, reads = pipeline.encoder.images, []
    wiring.reader().client.meta.events.register("before-call.s3.GetObject", lambda **kw: reads.append(kw))
    with metering(wiring.table()) as meter:
        run_retag(state, keys, info.bucket)
        queue_idle(stack)
    assert meter.units == predicted_units, (meter.units, predicted_units)
    assert pipeline.encoder.images == images, "a re-tag ran the model"
    assert reads == [], "a re-tag read objects from S3"
    for key in keys:
        after = tags_of(api.image(key)[1])
        assert set(after) == {"dog", "cat", "beach", "town"}
        assert {t: after[t] for t in ("dog", "cat", "beach")} == {t: before[key][t] for t in ("dog", "cat", "beach")}
    for removed in ("forest", "city"):  # gone from the vocabulary (the API: unknown tag) and the index
        assert api.tag(removed)[0] == 404
        listed = wiring.queries().images_with_tag(removed, -1.0, 100, None).images
        assert not set(keys) & {image.key for image in listed}
    assert set(keys) <= set(api.all_keys_with_tag("town"))  # renamed: found under its new name

    # The same bytes tagged afresh under vocabulary b get exactly the re-tagged object's tags.
    fresh = f"{folder}/fresh-{photos[0].name}"
    s3.put_object(Bucket=info.bucket, Key=fresh, Body=photos[0].read_bytes())
    assert tags_of(api.wait(fresh)) == tags_of(api.image(keys[0])[1])
    queue_idle(stack)

    # Vocabulary c changes no object's tags: each re-tagged object costs its record's write only.
    stack.redeploy(model_dirs["c"])
    pipeline = wiring.pipeline()
    with metering(wiring.table()) as meter:
        counted: list[int] = []
        original = pipeline.commit_all

        def commit_all(plans: Any) -> Any:
            counted.extend(1 for plan in plans for item in plan.items if item.event.kind == "retag" and not item.gone)
            return original(plans)

        pipeline.commit_all = commit_all  # type: ignore[method-assign]
        run_retag(state, [*keys, fresh], info.bucket)
        queue_idle(stack)
    assert counted and meter.units == len(counted), (meter.units, len(counted))
    for key in keys:
        assert set(tags_of(api.image(key)[1])) == {"dog", "cat", "beach", "town"}


class LostLaptop(Exception):
    """The process dies in the middle of a re-tag."""


def due_after_a_new_vocabulary(stack: LocalStack, model_dirs: dict[str, Path], s3: Any, info: Any, api: Any,
                               name: str) -> list[str]:  # fmt: skip
    """15 objects (several Scan pages) tagged under vocabulary c, then vocabulary a deployed."""
    stack.redeploy(model_dirs["c"])
    folder, photos = f"{name}-{uuid.uuid4().hex[:6]}", real_photos(2)
    keys = [f"{folder}/{i:02d}.jpg" for i in range(15)]
    for i, key in enumerate(keys):
        s3.put_object(Bucket=info.bucket, Key=key, Body=photos[i % 2].read_bytes())
    for key in keys:
        api.wait(key)
    queue_idle(stack)
    stack.redeploy(model_dirs["a"])
    wiring.pipeline()
    return keys


def test_an_interrupted_retag_resumes_and_sends_no_object_twice(
    deployed, model_dirs, s3, info, api, tmp_path, monkeypatch
):
    import json

    from cliptag_cli import feed

    stack = deployed
    state = stack.write_state(tmp_path / "stack.json")
    keys = due_after_a_new_vocabulary(stack, model_dirs, s3, info, api, "resume")
    sent: list[tuple[str, str]] = []
    real_send, calls = feed.QueueFeeder.send, []

    def send(self: feed.QueueFeeder, bodies: list[str]) -> None:
        calls.append(len(bodies))
        if len(calls) == 3:
            raise LostLaptop
        sent.extend((o["bucket"], o["key"]) for body in bodies for o in json.loads(body)["objects"])
        real_send(self, bodies)

    monkeypatch.setattr(feed.QueueFeeder, "send", send)
    with pytest.raises(LostLaptop):
        main(["retag", "--local-state", str(state), "--page-size", "10"])
    first = len(sent)
    assert first > 0
    assert main(["retag", "--local-state", str(state), "--page-size", "10"]) == 0  # from the checkpoint
    assert len(sent) > first and len(set(sent)) == len(sent), "an object was sent twice"
    queue_idle(stack)
    scoring = wiring.deployment().scoring
    assert {(info.bucket, k) for k in keys} <= set(sent)
    assert all((r := wiring.objects().get(b, k)) is None or r.scoring == scoring for b, k in sent)
    assert main(["retag", "--local-state", str(state)]) == 0  # nothing left
    assert len(sent) == len(set(sent))


def test_a_retag_checkpoint_made_for_another_deployment_is_discarded(
    deployed, model_dirs, s3, info, api, tmp_path, monkeypatch, capsys
):
    """Interrupted under vocabulary a, run again after b was deployed: it starts over (resuming
    would leave the objects before the old position on a's tags and report success)."""
    import json

    from cliptag_cli import feed

    stack = deployed
    state = stack.write_state(tmp_path / "stack.json")
    keys = due_after_a_new_vocabulary(stack, model_dirs, s3, info, api, "discard")
    real_send, calls = feed.QueueFeeder.send, []

    def send(self: feed.QueueFeeder, bodies: list[str]) -> None:
        calls.append([o["key"] for body in bodies for o in json.loads(body)["objects"]])
        if len(calls) == 3:
            raise LostLaptop
        real_send(self, bodies)

    monkeypatch.setattr(feed.QueueFeeder, "send", send)
    with pytest.raises(LostLaptop):
        main(["retag", "--local-state", str(state), "--page-size", "10"])
    queue_idle(stack)
    monkeypatch.setattr(feed.QueueFeeder, "send", real_send)
    stack.redeploy(model_dirs["b"])
    capsys.readouterr()
    run_retag(state, keys, info.bucket)  # every object on b's scoring: nothing was left behind
    err = capsys.readouterr().err
    assert "checkpoint discarded" in err and "scoring" in err and "resuming" not in err
