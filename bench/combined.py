"""``GET /images?all=&none=`` at 10^4 tagged objects through the local stack's API (DynamoDB in
moto, on loopback), and modelled at 10^6.

The library is synthetic records written straight to the table (no images: a listing by tags
reads only the index and the records), 10 tags each, drawn from the vocabulary with Zipf's law
(a tag's share of objects falls as 1/rank, the commonest on about every object), scores uniform
in 0.15-0.35. Each case is asked ``RUNS`` times; the table gives the plan the API chose, its p50
latency and the read units it states for the page.

The model for 10^6 objects: every partition 100 times larger, the same plan rule
(``cliptag.combined``: the rarest tag drives when it has at most 1,000 images above
``min_score``, else the search index's filter), each DynamoDB call ``DYNAMODB_CALL_S`` (a Query
page of up to 1 MB, or a BatchGetItem of 100, read one after the other as the code does) and one
QueryVectors ``QUERY_VECTORS_S``; the read units are the plan's own formula.
"""

from __future__ import annotations

import json
import math
import random
import statistics
import threading
import time
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench.common import DYNAMODB_CALL_S
from bench.context import Bench, Measure

OBJECTS = 10_000
TAGS_PER_OBJECT = 10
RUNS = 5
QUERY_VECTORS_S = 0.100  # S3 Vectors: "sub-second", ~100 ms warm for a small filtered query (assumed)
# (all ranks, none ranks, min_score): the tags by their rank in the Zipf draw.
CASES = [
    ((100, 2), (3,), -1.0),
    ((10, 2), (), 0.30),
    ((1000, 1), (), -1.0),
    ((1600, 1), (), -1.0),
    ((1, 2), (), -1.0),
]


def share(rank: int, tags: int) -> float:
    """The share of objects carrying the tag of this rank (10 draws, Zipf over ``tags``)."""
    harmonic = sum(1 / r for r in range(1, tags + 1))
    return min(1.0, TAGS_PER_OBJECT / (rank * harmonic))


def library(names: list[str], seed: int = 20) -> list[Any]:
    from cliptag.records import ObjectRecord, TagScore

    rng = random.Random(seed)
    weights = [1 / r for r in range(1, len(names) + 1)]
    records = []
    for i in range(OBJECTS):
        chosen: set[str] = set()
        while len(chosen) < TAGS_PER_OBJECT:
            chosen.update(rng.choices(names, weights, k=TAGS_PER_OBJECT - len(chosen)))
        tags = sorted((TagScore(t, round(rng.uniform(0.15, 0.35), 6)) for t in chosen), key=lambda t: -t.score)
        records.append(ObjectRecord("bench", f"combined/{i:05d}.jpg", "tagged", f"{i:064x}", tuple(tags)))
    return records


class Calls:
    """The DynamoDB calls the API makes (its client, in this process) and the time spent in them."""

    def __init__(self, client: Any) -> None:
        self.count, self.seconds, self._started = 0, 0.0, threading.local()
        client.meta.events.register("before-call.dynamodb", self._before)
        client.meta.events.register("after-call.dynamodb", self._after)

    def _before(self, **_: Any) -> None:
        self._started.at = time.perf_counter()

    def _after(self, **_: Any) -> None:
        self.count += 1
        self.seconds += time.perf_counter() - self._started.at


def ask(api_url: str, params: dict[str, Any], calls: Calls) -> tuple[float, float, int, dict[str, Any]]:
    """(seconds, of which in DynamoDB calls, how many calls, the answer)."""
    count, spent, start = calls.count, calls.seconds, time.perf_counter()
    with urllib.request.urlopen(f"{api_url}/images?{urllib.parse.urlencode(params)}", timeout=120) as resp:
        body = json.loads(resp.read())
    return time.perf_counter() - start, calls.seconds - spent, calls.count - count, body


def pages(entries: int) -> int:
    """Query pages (1 MB each) that read ``entries`` index entries."""
    from cliptag.combined import INDEX_ENTRY_BYTES

    return max(1, math.ceil(entries * INDEX_ENTRY_BYTES / 1_048_576))


def modelled(size: int, driving: int, other: int, above: float, search: bool) -> tuple[str, float, float]:
    """(plan, seconds, read units) at ``size`` objects for partitions of ``driving`` and ``other``."""
    from cliptag.combined import BOUND, INDEX_ENTRY_BYTES, PROBE, VECTOR_TOP_K

    rare = round(driving * above)
    look = min(PROBE, rare) + min(PROBE, round(other * above))
    if rare <= BOUND:  # past the first look, every open tag is read on up to the bound (cliptag.combined)
        second = rare > PROBE
        entries = rare + min(BOUND + 1 if second else PROBE, round(other * above))
        records = rare
        calls = pages(entries) + (2 if second else 0) + math.ceil(records / 100)
        return "index", calls * DYNAMODB_CALL_S, entries * INDEX_ENTRY_BYTES / 4096 * 0.5 + records
    if not search:
        return "refused (400)", 2 * DYNAMODB_CALL_S, look * INDEX_ENTRY_BYTES / 4096 * 0.5
    entries = look + min(BOUND + 1 - PROBE, rare - PROBE) + min(BOUND + 1 - PROBE, round(other * above) - PROBE)
    seconds = 4 * DYNAMODB_CALL_S + QUERY_VECTORS_S + math.ceil(VECTOR_TOP_K / 100) * DYNAMODB_CALL_S
    return "vector", seconds, entries * INDEX_ENTRY_BYTES / 4096 * 0.5 + VECTOR_TOP_K


def run(bench: Bench) -> None:
    from cliptag import wiring
    from cliptag.ordering import Claim

    stack = bench.stack("poller")
    assert stack.info is not None
    names = wiring.bundle().vocabulary.names
    records = library(names)
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda r: wiring.objects().put(r, Claim(revision=0)), records))  # new: none read
    setup = time.perf_counter() - started
    calls = Calls(wiring.table().client)
    bench.section(
        f"GET /images?all=&none= (combined tags) at {OBJECTS:,} synthetic records through the local API "
        f"(written in {setup:.0f} s), and modelled at 1,000,000 (DynamoDB call {DYNAMODB_CALL_S * 1000:.0f} ms, "
        f"QueryVectors {QUERY_VECTORS_S * 1000:.0f} ms). moto reads its whole table on each index Query, so its "
        "times say little; our own is the request without them, AWS's adds a round trip per call. The records "
        "have no vectors: the vector plan lists nothing here, its cost is the model's."
    )
    for wanted, excluded, min_score in CASES:
        params = {"all": ",".join(names[r - 1] for r in wanted), "limit": 20, "min_score": min_score}
        if excluded:
            params["none"] = ",".join(names[r - 1] for r in excluded)
        runs = [ask(stack.info.api_url, params, calls) for _ in range(RUNS)]
        body, count = runs[-1][3], runs[-1][2]
        plan = body["plan"]
        label = f"all=ranks {'+'.join(map(str, wanted))}" + (f", none={excluded[0]}" if excluded else "")
        label += f", min_score {min_score:g}" if min_score > -1 else ""
        p50 = statistics.median(r[0] for r in runs) * 1000
        own = statistics.median(r[0] - r[1] for r in runs) * 1000  # without the emulator's time
        aws = own + count * DYNAMODB_CALL_S * 1000
        value = (
            f"{plan['kind']:>6}: {plan['read_units']:6.1f} RRU, {len(body['images']):>2} listed; "
            f"{count} DynamoDB calls; {p50:7.1f} ms via moto, {own:5.1f} ms our own, ~{aws:5.1f} ms on AWS"
        )
        key = "combined_" + "_".join(map(str, wanted))
        bench.row("combined", f"10^4 {label}", value, f"{key}_own_ms", own)
        bench.data[f"{key}_moto_p50_ms"] = p50
        bench.data[f"{key}_rru"] = plan["read_units"]
        above = (0.35 - max(min_score, 0.15)) / 0.2
        ranks = sorted(wanted, reverse=True)
        kind, seconds, units = modelled(
            10**6, round(share(ranks[0], len(names)) * 10**6), round(share(ranks[1], len(names)) * 10**6), above, True
        )
        value = f"{kind:>6}: {units:6.1f} RRU (modelled), ~{seconds * 1000:5.1f} ms on AWS"
        bench.row("combined", f"10^6 {label}", value, f"{key}_modelled_ms", seconds * 1000)
        bench.data[f"{key}_modelled_rru"] = units


MEASURE = Measure(
    "combined", "GET /images?all=&none=: plan, latency and read units at 10^4, modelled at 10^6", run, stack="poller"
)
