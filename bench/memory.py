"""Peak RSS of a fresh tagger process: a batch of 12 MP JPEGs decoded, embedded and scored."""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench.common import python_env, run_python
from bench.context import Bench, Measure

PEAK_RSS = """
import resource, sys, numpy as np
from pathlib import Path
import handlers.tagger
from cliptag import wiring
from cliptag.imaging import Limits, load_pixels
t = wiring.pipeline()
px = [load_pixels(Path(p).read_bytes(), t.preprocessing, Limits())[1] for p in sys.argv[1:]]
emb = t.encoder.embed(np.stack(px)); t.scorer.tags(emb)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def run(bench: Bench) -> None:
    jpegs = bench.big_jpegs(bench.scale.memory_jpegs)
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i, data in enumerate(jpegs):
            path = Path(tmp) / f"{i}.jpg"
            path.write_bytes(data)
            paths.append(str(path))
        rss = float(run_python(PEAK_RSS, paths, python_env(bench.model_dir)).strip())
    bench.section("memory")
    count = "ten" if len(jpegs) == 10 else str(len(jpegs))
    bench.row("memory", f"peak RSS, batch of {count} 12 MP JPEGs", f"{rss:8.0f} MiB", "peak_rss_mib", rss)


MEASURE = Measure("memory", "peak RSS of a tagger process, batch of ten 12 MP JPEGs", run)
