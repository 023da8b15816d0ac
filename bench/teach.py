"""``cliptag teach`` through the local stack: a tag taught from three copies of one photo, then the
library re-tagged with it (every tagged object is due: the records' scoring names the taught set),
and again when the tag is removed. Objects re-tagged per second (first send -> queue drained) and
the tagger's DynamoDB write units per object, metered as the re-tag measure meters them.

The library is this measure's objects (the bench photos, each under several keys as fresh bytes)
and whatever earlier measures left in the table: the re-tag reaches all of them, as it would in
a user's table, and the rates are per object re-tagged.
"""

from __future__ import annotations

import contextlib
import io
import time
import warnings
import zlib
from typing import Any

import numpy as np

from bench.context import Bench, Measure
from bench.retag import FirstSend, Library, Retagged, observed
from bench.writes import metering

NAME = "bench taught"


def retag_all(library: Library) -> Retagged:
    """Send every object due under the taught set as it is now; meter until the queue drained."""
    from cliptag import wiring

    from cliptag_cli.retag import Retag, checkpoint_for, deployed

    feeder = FirstSend(library.stack.client("sqs"), library.queue_url)
    with observed(wiring.table().client) as (times, calls), metering(wiring.table()) as meter:
        now = deployed(library.table)
        assert now is not None
        counts = Retag(library.table, checkpoint_for(library.checkpoints, now), feeder, now).run()
        library.wait_idle()
        seconds = time.perf_counter() - feeder.started if feeder.started else 0.0
    assert library.scored(now.scoring), "the re-tag did not reach this measure's objects"
    return Retagged(counts.due, max(seconds, 1e-9), meter.units, sum(times), len(times), len(calls))


def teach(library: Library, photos: int) -> tuple[Any, int, int]:
    """Teach NAME from (up to) three keys holding the first photo: (the fit, examples, objects
    holding that photo)."""
    from cliptag.adapters.dynamodb import DynamoTaughtTags
    from cliptag.taught import TaughtTag
    from cliptag.teaching import fit

    from cliptag_cli.library import background, embeddings_of
    from cliptag_cli.retag import deployed

    deployment = deployed(library.table)
    assert deployment is not None
    same = [library.refs[i] for i in range(0, len(library.refs), photos)]  # the first photo's keys
    vectors = embeddings_of(library.table, deployment, same[:3])
    own = {content for content, _ in vectors.values()}
    sample = background(library.table, deployment.model, own, zlib.crc32(NAME.encode()))
    result = fit(np.stack([v for _, v in vectors.values()]), np.zeros((0, 0), np.float32), sample)
    tag = TaughtTag(NAME, result.vector, result.threshold, deployment.model, examples=tuple(same[:3]))
    DynamoTaughtTags(library.table).put(tag)
    return result, len(vectors), len(same)


def run(bench: Bench) -> None:
    from cliptag.adapters.dynamodb import DynamoTaughtTags

    stack = bench.stack("poller")
    library = Library(stack, bench.scale.retag_objects)
    quiet = contextlib.redirect_stdout(io.StringIO())
    with quiet, warnings.catch_warnings():
        warnings.filterwarnings("ignore", "No application metrics")
        library.deploy(bench.model_dir)
        library.upload(bench.photos)
        library.wait_idle()
        retag_all(library)  # every record current first (earlier measures leave others due)
        fit, examples, holders = teach(library, len(bench.photos))
        taught = retag_all(library)
        gained = sum(1 for r in library.store.get_many(library.refs).values() if any(t.tag == NAME for t in r.tags))
        DynamoTaughtTags(library.table).remove(NAME)
        removed = retag_all(library)
    bench.section(
        f"teach a tag ({examples} examples, {fit.method}, {fit.negatives} library photos sampled) -> library "
        "re-tagged through the local stack"
    )
    bench.row(
        "teach",
        f"objects that gained it (of {holders} holding the photo)",
        f"{gained:8d}",
        "teach_objects_gained",
        gained,
    )
    for case, r in (("teach", taught), ("remove", removed)):
        label = f"{case}: re-tagged per second ({r.objects} objects due)"
        bench.row("teach", label, f"{r.rate:8.0f} objects/s", f"{case}_retag_per_s", r.rate)
        label = f"{case}: write units per object re-tagged"
        bench.row("teach", label, f"{r.units:8.2f} WRU", f"{case}_wru_per_object", r.units)


MEASURE = Measure(
    "teach", "teach a tag, then the library re-tagged: objects/s, write units per object", run, stack="poller"
)
