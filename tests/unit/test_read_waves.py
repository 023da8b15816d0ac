"""A batch never holds more objects' bytes than the tagger's memory allows at MaxObjectBytes: it is
read and decoded in waves, each content still decoded and embedded once (the real tiny model)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from cliptag import pipeline as pipeline_module
from cliptag.adapters import notifications
from cliptag.bundle import ModelBundle
from cliptag.config import objects_in_memory
from cliptag.encoder import ImageEncoder
from cliptag.pipeline import TaggingPipeline
from cliptag.scoring import TagScorer

from bench.common import sqs_record
from bench.inprocess import Latency, MemoryContents, MemoryObjects, MemoryReader
from tests.conftest import real_photos


def test_memory_decides_how_many_objects_are_held(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "3538")
    assert objects_in_memory(50 * 2**20) == 28  # the defaults: a batch of 10 in one wave
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024")
    assert objects_in_memory(200 * 2**20) == 2
    assert objects_in_memory(5 * 2**30) == 1  # never zero


@pytest.fixture(scope="module")
def tagger(model_dir: Path) -> TaggingPipeline:
    bundle = ModelBundle.open(model_dir)
    vocab = bundle.vocabulary
    scorer = TagScorer.build(vocab.names, bundle.tag_embeddings, [t.threshold for t in vocab.tags], 0.0, 5)
    latency = Latency()
    return TaggingPipeline(
        encoder=ImageEncoder(bundle.image_encoder_path()),
        scorer=scorer,
        preprocessing=bundle.preprocessing,
        model_key=bundle.model_key,
        vocabulary_version=vocab.version,
        scoring="s",
        reader=MemoryReader({}, latency),
        contents=MemoryContents(latency),
        objects=MemoryObjects(latency),
    )


def test_a_batch_is_read_and_decoded_in_waves(tagger: TaggingPipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    photos = [p.read_bytes() for p in real_photos(5)]
    blobs = {f"w/{i}.jpg": photos[i % 5] for i in range(8)}  # 5 contents, 3 of them under two keys
    log: list[str] = []

    class Reader(MemoryReader):
        def read(self, bucket: str, key: str, max_bytes: int, if_match: str = "") -> Any:
            log.append("read")
            return super().read(bucket, key, max_bytes, if_match)

    real_decode = pipeline_module.decode

    def decode(*args: Any) -> None:
        log.append("decode")
        real_decode(*args)

    monkeypatch.setattr(pipeline_module, "decode", decode)
    waved = dataclasses.replace(tagger, reader=Reader(blobs, Latency()), read_wave=3)
    messages = [notifications.message(SQSRecord(sqs_record("b", key))) for key in blobs]
    plans, stats = waved.plan(messages)
    held, most = 0, 0
    for step in log:  # bytes are held from their read until the wave is decoded
        held = held + 1 if step == "read" else 0
        most = max(most, held)
    assert most <= 3 and log.count("read") == 8
    assert log.count("decode") == 5 and stats.inference_images == 5  # each content once, across waves
    items = [item for plan in plans for item in plan.items]
    assert all(item.tags for item in items) and all(item.data == b"" for item in items)
    by_content = {item.content_id: item.tags for item in items}
    assert all(item.tags == by_content[item.content_id] for item in items)
