"""``python -m bench``: run the measures (all, or ``--only`` some), print one table, write the JSON."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

import bench
from bench import (
    backfill,
    captions,
    cold,
    combined,
    cost,
    decode,
    e2e,
    inprocess,
    memory,
    models,
    ort,
    places,
    rescore,
    retag,
    search,
    stages,
    teach,
    text,
    transformers,
    writes,
)
from bench.common import ROOT
from bench.context import FULL, QUICK, Bench, Measure
from model_export.photos import coco_photos, skimage_photos

# In the order they run: each after the measures it needs, the stack's two set-ups apart. The re-tag
# goes before e2e: it re-tags every object of its model in the table, so it wants none but its own.
MEASURES: list[Measure] = [
    m.MEASURE
    for m in (
        stages,
        backfill,
        inprocess,
        writes,
        ort,
        decode,
        places,
        retag,
        teach,
        combined,
        e2e,
        search,
        cold,
        memory,
        rescore,
        text,
        captions,
        transformers,
        models,
        cost,
    )
]
BY_NAME = {m.name: m for m in MEASURES}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=bench.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model-dir", type=Path, default=ROOT / "build" / "model-datacomp-b32-256-random")
    parser.add_argument(
        "--models",
        default=",".join(models.DEFAULT_MODELS),
        help="the models measure's directories: build/model-<name> or paths, comma-separated, the baseline first",
    )
    parser.add_argument("--only", default="", help="comma-separated measures (see --list); what they need runs too")
    parser.add_argument("--list", action="store_true", help="list the measures and exit")
    parser.add_argument("--quick", action="store_true", help="few photos and repeats: a smoke run, not figures")
    parser.add_argument("--batches", type=int, default=None, help=f"default {FULL.batches} ({QUICK.batches} quick)")
    parser.add_argument("--batch-size", type=int, default=10)
    parser.add_argument(
        "--memory-mb",
        type=int,
        default=3538,
        help="Lambda memory for the cost rows (3538 MB = 2 vCPUs, like this machine)",
    )
    parser.add_argument(
        "--e2e-images", type=int, default=None, help=f"default {FULL.e2e_images} ({QUICK.e2e_images} quick)"
    )
    parser.add_argument(
        "--json", type=Path, default=None, help="default build/bench.json (build/bench-quick.json quick)"
    )
    args = parser.parse_args(argv)
    scale = QUICK if args.quick else FULL
    args.batches = args.batches or scale.batches
    args.e2e_images = args.e2e_images or scale.e2e_images
    args.json = args.json or ROOT / "build" / ("bench-quick.json" if args.quick else "bench.json")
    return args


def select(only: str) -> list[Measure]:
    """The measures named (all if none), plus what they need, in the order they run."""
    wanted = {name.strip() for name in only.split(",") if name.strip()} or set(BY_NAME)
    unknown = wanted - set(BY_NAME)
    if unknown:
        raise SystemExit(f"unknown measure(s): {', '.join(sorted(unknown))} (see --list)")
    todo = list(wanted)
    while todo:
        for need in BY_NAME[todo.pop()].needs:
            if need not in wanted:
                wanted.add(need)
                todo.append(need)
    return [m for m in MEASURES if m.name in wanted]


def list_measures() -> None:
    for m in MEASURES:
        needs = f"  (needs {', '.join(m.needs)})" if m.needs else ""
        stack = "  [local stack]" if m.stack else ""
        module = "bench/" + m.run.__module__.rpartition(".")[2] + ".py"
        print(f"{m.name:<10} {module:<19} {m.title}{needs}{stack}")


def header(run: Bench) -> None:
    manifest = json.loads((run.model_dir / "manifest.json").read_text())
    print(
        f"cliptag benchmark - {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}"
    )
    print(
        f"model {manifest['model']['id']} [{manifest['image_encoder']['quantization']}], "
        f"D={manifest['model']['embed_dim']}, {manifest['vocabulary']['tags']} tags"
    )
    run.data["machine"] = {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "model": manifest["model"]["id"],
        "quantization": manifest["image_encoder"]["quantization"],
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.list:
        list_measures()
        return 0
    measures = select(args.only)
    if not (args.model_dir / "manifest.json").is_file():
        print(f"{args.model_dir} is not a model directory: run `make model-bench` first", file=sys.stderr)
        return 1
    photos = [p.read_bytes() for p in (coco_photos() or skimage_photos())]
    if len(photos) < args.batch_size:
        print("not enough real photos (needs ../shared/data or scikit-image)", file=sys.stderr)
        return 1
    os.environ.update(POWERTOOLS_METRICS_DISABLED="true", POWERTOOLS_LOG_LEVEL="ERROR")
    run = Bench(args, QUICK if args.quick else FULL, photos)
    header(run)
    try:
        for measure in measures:
            run.close_stack(unless=measure.stack)  # one stack at a time, only while measures use it
            measure.run(run)
    finally:
        run.close_stack()
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(run.data, indent=2))
    print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
