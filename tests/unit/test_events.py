import json
from pathlib import Path
from urllib.parse import quote_plus

import pytest
from cliptag.adapters.notifications import parse_body
from cliptag.errors import MalformedEvent
from cliptag.ordering import normalise_sequencer
from hypothesis import given
from hypothesis import strategies as st

EVENTS = Path(__file__).resolve().parents[2] / "events"


def s3_body(*records: tuple[str, str]) -> str:
    return json.dumps(
        {
            "Records": [
                {
                    "eventSource": "aws:s3",
                    "eventName": name,
                    "s3": {"bucket": {"name": "b"}, "object": {"key": key, "size": 3}},
                }
                for name, key in records
            ]
        }
    )


def test_keys_are_url_decoded_plus_is_space_and_utf8_escapes():
    (event,) = parse_body(s3_body(("ObjectCreated:Put", "photos/beach+day/d%C3%BCne+1.jpg")))
    assert event.key == "photos/beach day/düne 1.jpg"
    assert event.kind == "created" and event.ref == "b/photos/beach day/düne 1.jpg"


def test_a_literal_plus_arrives_escaped():
    (event,) = parse_body(s3_body(("ObjectCreated:Put", "a%2Bb+%26+c.png")))
    assert event.key == "a+b & c.png"


def test_test_event_yields_nothing():
    assert parse_body(json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "b"})) == []


def test_several_records_created_and_removed_and_ignored_types():
    events = parse_body(
        s3_body(("ObjectCreated:Copy", "a"), ("ObjectRemoved:Delete", "b"), ("ObjectRestore:Post", "c"))
    )
    # No sequencer to order the removal by: the tagger reads the key before recording it.
    assert [(e.kind, e.key) for e in events] == [("created", "a"), ("recheck", "b")]


def test_sns_envelope_is_unwrapped():
    body = json.dumps({"Type": "Notification", "Message": s3_body(("ObjectCreated:Put", "x.jpg"))})
    assert [e.key for e in parse_body(body)] == ["x.jpg"]


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "[]",
        json.dumps({"foo": 1}),
        json.dumps({"Records": [{"eventSource": "aws:sqs"}]}),
        json.dumps({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "s3": {}}]}),
    ],
)
def test_malformed_bodies_are_rejected_with_a_reason(body):
    with pytest.raises(MalformedEvent):
        parse_body(body)


@given(st.text(min_size=1, max_size=200).filter(lambda k: k.strip("\x00") == k))
def test_any_key_survives_s3_encoding(key):
    (event,) = parse_body(s3_body(("ObjectCreated:Put", quote_plus(key))))
    assert event.key == key


def test_sample_events_parse():
    for name in sorted(p.name for p in EVENTS.glob("tagger-*.json")):
        doc = json.loads((EVENTS / name).read_text())
        for record in doc["Records"]:
            parse_body(record["body"])
    batch = json.loads((EVENTS / "tagger-s3-batch.json").read_text())
    keys = [e.key for r in batch["Records"] for e in parse_body(r["body"])]
    assert keys == ["photos/beach day/düne 1.jpg", "photos/a+b & c.png", "photos/犬.webp"]


def eventbridge_body(detail_type: str, key: str, sequencer: str = "0A") -> str:
    detail = {"bucket": {"name": "b"}, "object": {"key": key, "size": 3, "sequencer": sequencer}}
    return json.dumps({"version": "0", "source": "aws.s3", "detail-type": detail_type, "detail": detail})


def test_eventbridge_s3_events_decode_like_notifications():
    (created,) = parse_body(eventbridge_body("Object Created", "photos/beach+day/d%C3%BCne+1.jpg", "ff"))
    assert (created.kind, created.key) == ("created", "photos/beach day/düne 1.jpg")
    assert created.sequencer == normalise_sequencer("FF")
    (removed,) = parse_body(eventbridge_body("Object Deleted", "a%2Bb.png"))
    assert (removed.kind, removed.key) == ("removed", "a+b.png")
    assert parse_body(eventbridge_body("Object Restore Completed", "x.jpg")) == []


def test_our_own_messages_retag_and_ping():
    from cliptag.adapters.notifications import PING_BODY, retag_body

    events = parse_body(retag_body([("b", "a b.jpg"), ("b", "犬.webp")]))
    assert [(e.kind, e.bucket, e.key) for e in events] == [("retag", "b", "a b.jpg"), ("retag", "b", "犬.webp")]
    assert parse_body(PING_BODY) == []
    with pytest.raises(MalformedEvent):
        parse_body(json.dumps({"cliptag": "shred"}))
