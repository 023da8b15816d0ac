"""ONNX Runtime session options: ORT's defaults against ours, at this machine's vCPUs and under a
1-vCPU CPU quota (Lambda at 1,769 MB: its /proc/cpuinfo still shows the host's CPUs, so ORT's
default starts a thread per host core), plus what graph optimisation and the memory arena are
worth. Each set of variants runs in a fresh process, round robin."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from bench.common import python_env, run_python
from bench.context import Bench, Measure

ORT_VARIANTS = """
import json, statistics, sys, time
import numpy as np, onnxruntime as ort
from cliptag.encoder import session_options

path, batch, rounds, repeats, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
x = np.random.default_rng(0).normal(size=(batch, 3, size, size)).astype(np.float32)
unoptimised = session_options()
unoptimised.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
no_arena = session_options()
no_arena.enable_cpu_mem_arena = False
variants = {
    "ORT defaults": ort.SessionOptions(),
    "tuned": session_options(),
    "tuned, graph optimisation off": unoptimised,
    "tuned, memory arena off": no_arena,
}
sessions = {k: ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"]) for k, opts in variants.items()}
runs = {label: [] for label in sessions}
for sess in sessions.values():
    sess.run(None, {"pixel_values": x})
for _ in range(rounds):  # round robin: every variant sees the same machine noise
    for label, sess in sessions.items():
        start = time.perf_counter()
        sess.run(None, {"pixel_values": x})
        runs[label].append((time.perf_counter() - start) * 1000 / batch)
out = {label: statistics.median(values) for label, values in runs.items()}
singles = []
for _ in range(repeats):
    start = time.perf_counter()
    sessions["tuned"].run(None, {"pixel_values": x[:1]})
    singles.append((time.perf_counter() - start) * 1000)
out["single"] = statistics.median(singles[1:])
print(json.dumps(out))
"""


def ort_variants(
    path: str, size: int, batch: int, rounds: int, singles: int, preexec: Callable[[], None] | None = None
) -> dict[str, float]:
    """ms per image for ORT's defaults, our options and no graph optimisation, in a fresh process."""
    args = [path, str(batch), str(rounds), str(singles), str(size)]
    out = run_python(ORT_VARIANTS, args, python_env(), preexec)
    result: dict[str, float] = json.loads(out)
    return result


def cgroup_joiner(cpus: int) -> Callable[[], None] | None:
    """A preexec function joining a cgroup limited to ``cpus`` CPUs of quota (cgroup v1 or v2;
    needs root); None when no such cgroup can be made here."""
    period = 100_000
    for base, files in (
        (Path("/sys/fs/cgroup/cpu"), {"cpu.cfs_period_us": str(period), "cpu.cfs_quota_us": str(cpus * period)}),
        (Path("/sys/fs/cgroup"), {"cpu.max": f"{cpus * period} {period}"}),
    ):
        group = base / "cliptag-bench"
        try:
            group.mkdir(exist_ok=True)
            for name, value in files.items():
                (group / name).write_text(value)
        except OSError:
            continue
        procs = group / "cgroup.procs"

        def join(procs: Path = procs) -> None:
            procs.write_text(str(os.getpid()))

        return join
    return None


def run(bench: Bench) -> None:
    from cliptag.bundle import ModelBundle
    from cliptag.config import vcpus

    bundle = ModelBundle.open(bench.model_dir)
    path, size = str(bundle.image_encoder_path()), bundle.preprocessing.input_size
    batch, rounds, singles = bench.args.batch_size, bench.scale.ort_rounds, bench.scale.ort_singles
    here = ort_variants(path, size, batch, rounds, singles)
    join = cgroup_joiner(cpus=1)
    one = ort_variants(path, size, batch, rounds, singles, preexec=join) if join else None
    bench.section(f"inference, batch of {batch}, ms per image (median of {rounds})")
    single = here.pop("single")
    for label, ms in here.items():
        bench.row("inference", f"{label} ({vcpus()} vCPUs)", f"{ms:8.2f} ms")
    bench.row("inference", "tuned, one image per call", f"{single:8.2f} ms", "infer_single_ms", single)
    ratio = here["tuned"] / here["ORT defaults"]
    bench.row("inference", f"tuned / ORT defaults, {vcpus()} vCPUs", f"{ratio:8.2f} x", "tuned_over_default", ratio)
    for label, key in (("graph optimisation", "no_graph_opt_over_tuned"), ("memory arena", "no_arena_over_tuned")):
        ratio = here[f"tuned, {label} off"] / here["tuned"]
        bench.row("inference", f"{label} off / on", f"{ratio:8.2f} x", key, ratio)
    if one:
        for label in ("ORT defaults", "tuned"):
            bench.row("inference", f"{label} (1-vCPU quota, like 1,769 MB)", f"{one[label]:8.2f} ms")
        ratio = one["tuned"] / one["ORT defaults"]
        key = "tuned_over_default_1vcpu"
        bench.row("inference", "tuned / ORT defaults, 1-vCPU quota", f"{ratio:8.2f} x", key, ratio)
    else:
        bench.row("inference", "1-vCPU quota", "skipped: needs a writable cgroup (run as root)")
    bench.data["infer_batch_ms_per_image"] = here["tuned"]


MEASURE = Measure("ort", "ORT defaults vs our session options, variants, 1-vCPU cgroup quota", run)
