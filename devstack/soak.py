"""``make soak``: 1,000 uploads through the local stack with faults injected, then an audit.

The workload mixes real photos (every COCO photo under several keys: duplicates), bad files,
overwrites, deletes (some racing their own upload) and a few objects whose S3 reads fail on every
attempt (an outage that outlasts all retries). The tagger's S3 GETs and DynamoDB writes meet
throttling, timeouts and lost responses at ``--fault-rate`` per HTTP attempt.

Afterwards, from S3 (what is live), a Scan of the table (what was written) and the search index:
- every live object is tagged or failed with a reason, and its index items match its META;
- the search index holds exactly the tagged objects, each vector from its current content;
- deleted objects appear nowhere;
- the dead-letter queue holds exactly the messages of the unreadable objects, each received
  MaxReceives times (the explanation printed next to it);
- after a redrive with the outage over, those are tagged too: nothing was lost.
Exit status 1 when any of that does not hold.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devstack.audit import ObjectState, read_objects, read_vectors, vector_problems
from devstack.faults import FaultInjector
from devstack.redrive import redrive
from devstack.stack import LocalStack

MAX_RECEIVES = 3
PARAMETERS = {"QueueVisibilityTimeout": "10", "MaxReceives": str(MAX_RECEIVES), "BatchWindowSeconds": "1"}
UNREADABLE = "unreadable/"


@dataclass
class Workload:
    """The operations, in order, and what the bucket must end up holding."""

    puts: list[tuple[str, bytes, str]] = field(default_factory=list)  # key, bytes, kind
    deletes: list[str] = field(default_factory=list)
    final: dict[str, tuple[bytes, str]] = field(default_factory=dict)  # live key -> (bytes, kind)

    def put(self, key: str, data: bytes, kind: str) -> None:
        self.puts.append((key, data, kind))
        self.final[key] = (data, kind)

    def delete(self, key: str) -> None:
        self.deletes.append(key)
        self.final.pop(key, None)


def build_workload(photos: list[Path], bad: dict[str, bytes], uploads: int, seed: int) -> Workload:
    rng = random.Random(seed)
    contents = [p.read_bytes() for p in photos]
    work = Workload()
    n_bad, n_unreadable, n_overwrite = uploads // 20, max(3, uploads // 100), uploads // 20
    n_photos = uploads - n_bad - n_unreadable - n_overwrite - 5
    for i in range(n_photos):  # every photo under several keys: duplicates of content
        work.put(f"photos/{i:04d}.jpg", contents[i % len(contents)], "photo")
    names = sorted(bad)
    for i in range(n_bad):
        name = names[i % len(names)]
        work.put(f"bad/{i:03d}-{name}", bad[name], "bad")
    for i in range(5):  # valid, however small: tagged
        work.put(f"tiny/{i}.png", _one_pixel_png((40 * i, 90, 200)), "tiny")
    for i in range(n_unreadable):
        work.put(f"{UNREADABLE}{i:03d}.jpg", contents[rng.randrange(len(contents))], "unreadable")
    for i in rng.sample(range(n_photos), n_overwrite):  # a new version of an existing key
        work.put(f"photos/{i:04d}.jpg", contents[(i + 7) % len(contents)], "photo")
    for i in rng.sample(range(n_photos), uploads // 10):
        work.delete(f"photos/{i:04d}.jpg")
    return work


def bad_files() -> dict[str, bytes]:
    from model_export.photos import SHARED_DATA

    misc = SHARED_DATA / "images" / "formats" / "misc"
    files = {"empty.jpg": b"", "text.jpg": b"plain text with a .jpg name\n"}
    for name in ("truncated_jpeg.jpg", "decompression_bomb.gif"):
        if (misc / name).is_file():
            files[name] = (misc / name).read_bytes()
    return files


def _one_pixel_png(colour: tuple[int, int, int]) -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (1, 1), colour).save(out, "PNG")
    return out.getvalue()


def wait_until_idle(stack: LocalStack, timeout_s: float) -> bool:
    """Both queues quiet (nothing visible or in flight) for a few seconds in a row."""
    assert stack.info is not None
    sqs = stack.client("sqs")
    quiet_since, deadline = None, time.monotonic() + timeout_s
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    while time.monotonic() < deadline:
        attrs = sqs.get_queue_attributes(QueueUrl=stack.info.queue_url, AttributeNames=names)["Attributes"]
        busy = sum(int(attrs[n]) for n in names)
        if busy:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since > 3:
            return True
        time.sleep(0.5)
    return False


def dead_letters(stack: LocalStack) -> list[dict[str, Any]]:
    assert stack.info is not None
    sqs, out = stack.client("sqs"), list[dict[str, Any]]()
    while True:
        batch = sqs.receive_message(
            QueueUrl=stack.info.dead_letter_queue_url,
            MaxNumberOfMessages=10,
            VisibilityTimeout=30,
            AttributeNames=["ApproximateReceiveCount"],
        ).get("Messages", [])
        if not batch:
            return out
        out += batch


def audit(work: Workload, objects: dict[str, ObjectState], bucket: str, live: set[str]) -> list[str]:
    """Every violated invariant, as a sentence."""
    from cliptag.content import content_id

    problems = []
    if live != set(work.final):
        problems.append(f"S3 holds {len(live)} keys, the workload left {len(work.final)}")
    for key, (data, kind) in work.final.items():
        state = objects.get(f"{bucket}/{key}")
        if kind == "unreadable":
            if state and state.status not in ("", "deleted"):
                problems.append(f"{key}: unreadable yet recorded {state.status}")
            continue
        if state is None or state.status not in ("tagged", "failed"):
            problems.append(f"{key}: live but {state.status if state else 'unknown'}")
            continue
        problems += [f"{key}: {p}" for p in state.problems()]
        expected = "failed" if kind == "bad" else "tagged"
        if state.status != expected:
            problems.append(f"{key}: {state.status}, expected {expected} ({state.error})")
        if state.content_id and state.content_id != content_id(data):
            problems.append(f"{key}: tags of an older version")
    for ref, state in objects.items():
        key = ref.split("/", 1)[1]
        if key not in work.final and (state.status not in ("", "deleted") or state.tag_items):
            problems.append(f"{key}: deleted but still {state.status} with {len(state.tag_items)} index items")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", default="build/model-tiny")
    parser.add_argument("--uploads", type=int, default=1000)
    parser.add_argument("--fault-rate", type=float, default=0.10)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--timeout", type=float, default=900)
    args = parser.parse_args(argv)

    from model_export.photos import coco_photos, skimage_photos

    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    photos = coco_photos() or skimage_photos()
    if not photos:
        print("error: no photos (neither ../shared/data nor scikit-image)", file=sys.stderr)
        return 1
    work = build_workload(photos, bad_files(), args.uploads, args.seed)

    with LocalStack(Path(args.model_dir), api_port=0, parameters=PARAMETERS, moto_process=True) as stack:
        from cliptag import wiring

        info = stack.info
        assert info is not None
        faults = FaultInjector(rate=args.fault_rate, seed=args.seed)
        faults.poison.append(lambda service, url, body: service == "s3" and f"/{UNREADABLE}" in url)
        tagger = wiring.pipeline()
        faults.attach(wiring.reader().client)
        faults.attach(wiring.table().client)
        images_before = tagger.encoder.images
        s3 = stack.client("s3")

        start = time.monotonic()
        with ThreadPoolExecutor(8) as pool:  # uploads race each other, as from many clients
            list(pool.map(lambda op: s3.put_object(Bucket=info.bucket, Key=op[0], Body=op[1]), work.puts))
            list(pool.map(lambda key: s3.delete_object(Bucket=info.bucket, Key=key), work.deletes))
        uploaded_s = time.monotonic() - start
        idle = wait_until_idle(stack, args.timeout)
        elapsed = time.monotonic() - start
        inferences = tagger.encoder.images - images_before

        live = {
            o["Key"]
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=info.bucket)
            for o in page.get("Contents", [])
        }
        objects = read_objects(stack.client("dynamodb"), info.table)
        problems = audit(work, objects, info.bucket, live) if idle else ["the queue never drained"]
        vectors = read_vectors(stack.client("s3vectors"), info.vector_bucket, info.vector_index)
        problems += vector_problems(objects, vectors)

        from cliptag.adapters.notifications import parse_body

        letters = dead_letters(stack)
        unreadable = {k for k, (_, kind) in work.final.items() if kind == "unreadable"}
        lettered: set[str] = set()
        for message in letters:
            keys_ = {event.key for event in parse_body(message["Body"])}
            receives = int(message["Attributes"]["ApproximateReceiveCount"])
            lettered |= keys_
            if not keys_ <= unreadable:
                problems.append(f"dead letter for {sorted(keys_)} that no fault explains")
            if receives < MAX_RECEIVES:
                problems.append(f"dead letter for {sorted(keys_)} after only {receives} receives")
        if lettered != unreadable:
            problems.append(f"unreadable objects missing from the DLQ: {sorted(unreadable - lettered)}")

        # The outage ends: redrive, and every dead-lettered object is tagged.
        faults.enabled = False
        sqs = stack.client("sqs")
        for message in letters:
            sqs.change_message_visibility(
                QueueUrl=info.dead_letter_queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
            )
        redriven = redrive(sqs, info.dead_letter_queue_url, info.queue_url)
        wait_until_idle(stack, 120)
        after = read_objects(stack.client("dynamodb"), info.table)
        recovered = sum(1 for k in unreadable if after.get(f"{info.bucket}/{k}", ObjectState("")).status == "tagged")
        if recovered != len(unreadable):
            problems.append(f"after redrive only {recovered} of {len(unreadable)} unreadable objects were tagged")

    kinds = Counter(kind for _, (_, kind) in work.final.items())
    states = Counter(objects[f"{info.bucket}/{k}"].status for k in work.final if f"{info.bucket}/{k}" in objects)
    reasons = Counter(
        objects[f"{info.bucket}/{k}"].error[:70]
        for k, (_, kind) in work.final.items()
        if kind == "bad" and f"{info.bucket}/{k}" in objects
    )
    revisions = Counter(objects[f"{info.bucket}/{k}"].revision for k in work.final if f"{info.bucket}/{k}" in objects)
    contents = {data for _, data, kind in work.puts if kind in ("photo", "tiny", "unreadable")}
    rows = [
        ("uploads (PUT)", len(work.puts)),
        ("deletes", len(work.deletes)),
        ("live objects at the end", len(work.final)),
        (
            "  photos / 1x1 images / bad files / unreadable",
            f"{kinds['photo']} / {kinds['tiny']} / {kinds['bad']} / {kinds['unreadable']}",
        ),
        ("distinct image contents uploaded", len(contents)),
        ("model inferences", inferences),
        ("live objects tagged", states["tagged"]),
        ("live objects failed (with a reason)", states["failed"]),
        ("META writes per live object", dict(sorted(revisions.items()))),
        ("deleted objects still visible", sum(1 for p in problems if "deleted but still" in p)),
        (
            "search index: vectors / problems",
            f"{len(vectors)} / {sum(1 for p in problems if 'search index' in p or 'vector' in p)}",
        ),
        ("dead letters (each: unreadable object, receives)", len(letters)),
        ("redriven, then tagged", f"{redriven}, {recovered}"),
        ("faults injected (per HTTP attempt)", sum(faults.counts().values())),
        ("handler invocations", stack.invocations),
        ("upload time / until idle", f"{uploaded_s:.1f} s / {elapsed:.1f} s"),
    ]
    print(f"\nsoak: {args.uploads} uploads, fault rate {args.fault_rate:.0%}, MaxReceives {MAX_RECEIVES}\n")
    for name, value in rows:
        print(f"  {name:<52} {value}")
    print("\n  faults by service, operation, kind:")
    for (service, operation, kind), n in sorted(faults.counts().items()):
        print(f"    {service:<9} {operation:<15} {kind:<9} {n}")
    print("\n  why bad files failed:")
    for reason, n in reasons.most_common():
        print(f"    {n:>4}  {reason}")
    for message in letters:
        names = sorted(event.key for event in parse_body(message["Body"]))
        receives = message["Attributes"]["ApproximateReceiveCount"]
        print(f"  dead letter: {', '.join(names)}: S3 GET failed on every attempt, received {receives} times")
    if problems:
        print(f"\nFAILED: {len(problems)} problems")
        for problem in problems[:50]:
            print(f"  - {problem}")
        return 1
    print("\nOK: every live object tagged once or failed with a reason; nothing deleted is visible; nothing lost")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
