"""Cold start: a fresh interpreter until the first image can be tagged, as Lambda runs it (the
model loading on a thread during the imports) and with everything in sequence, for the ratio."""

from __future__ import annotations

import statistics

from bench.common import python_env, run_python
from bench.context import Bench, Measure

COLD_START = """
import time; t0 = time.perf_counter()
import handlers.tagger
t1 = time.perf_counter()
from cliptag import wiring; wiring.pipeline()
t2 = time.perf_counter()
print(f'{(t1 - t0) * 1000:.0f} {(t2 - t1) * 1000:.0f}')
"""


def run(bench: Bench) -> None:
    env = python_env(bench.model_dir)
    modes = {"lambda": {**env, "AWS_LAMBDA_FUNCTION_NAME": "cliptag-bench"}, "sequential": env}
    runs: dict[str, list[list[float]]] = {mode: [] for mode in modes}
    for _ in range(bench.scale.cold_runs):
        for mode, mode_env in modes.items():  # interleaved: both see the same machine noise
            runs[mode].append([float(v) for v in run_python(COLD_START, [], mode_env).split()])
    bench.section(f"cold start (fresh interpreter, median of {bench.scale.cold_runs})")
    totals = {mode: statistics.median(r[0] + r[1] for r in rows) for mode, rows in runs.items()}
    imports = statistics.median(r[0] for r in runs["lambda"])
    rest = statistics.median(r[1] for r in runs["lambda"])
    bench.row(
        "cold",
        "imports (handler, Powertools, ORT, numpy, Pillow; model loading meanwhile)",
        f"{imports:8.0f} ms",
        "cold_import_ms",
        imports,
    )
    bench.row("cold", "then: AWS clients, scorer, wait for the model", f"{rest:8.0f} ms", "cold_model_ms", rest)
    total = totals["lambda"]
    bench.row(
        "cold", "until the first image can be tagged (target <= 1500)", f"{total:8.0f} ms", "cold_start_ms", total
    )
    total = totals["sequential"]
    label = "same, model loaded after the imports (no preload thread)"
    bench.row("cold", label, f"{total:8.0f} ms", "cold_start_sequential_ms", total)


MEASURE = Measure("cold", "cold start until the first image can be tagged, preload thread vs sequential", run)
