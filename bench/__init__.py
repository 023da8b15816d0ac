"""cliptag benchmark: one run, one table, ratios measured side by side on this machine.

Runs the default model's full-size geometry, DataComp ViT-B-32-256 (random weights: the same
compute and size as the real model; ``make bench BENCH_MODEL=vit-b-32-random`` for OpenAI's)
on real COCO photos, plus 12 MP JPEGs and large PNGs made by upscaling them, against the local
stack (moto in its own process, real HTTP). Prints the table and writes it as JSON.

    make bench                 # or: .venv/bin/python -m bench --model-dir build/model-datacomp-b32-256-random
    python -m bench --list     # the measures, one module each
    python -m bench --model-dir build/model-tiny --quick --only ort,decode   # a quick partial run

Each measure is one module of this package with a ``MEASURE`` (``bench.context.Measure``);
``bench.__main__`` lists them in the order they run and writes the JSON.
"""

from __future__ import annotations

import sys
from pathlib import Path

# The functions' packages (cliptag, handlers) and the repository's own, as the Lambda layout has
# them, also when the project is not installed in the interpreter that runs the benchmark.
_ROOT = Path(__file__).resolve().parent.parent
for _path in (str(_ROOT), str(_ROOT / "functions")):
    if _path not in sys.path:
        sys.path.insert(0, _path)
