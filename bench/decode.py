"""Decode + preprocess of 12 MP JPEGs (4000x3000), full decode against draft mode (DCT scaling),
and of 6 MP PNGs, all made by upscaling the photos."""

from __future__ import annotations

import statistics

from cliptag.imaging import Limits, load_pixels

from bench.common import big_png, timed
from bench.context import Bench, Measure


def run(bench: Bench) -> None:
    prep, scale = bench.preprocessing(), bench.scale
    jpegs = bench.big_jpegs(scale.big_jpegs)
    pngs = [big_png(p) for p in bench.photos[: scale.big_pngs]]
    naive = [timed(load_pixels, j, prep, Limits(), False)[0] for j in jpegs for _ in range(scale.decode_repeats)]
    draft = [timed(load_pixels, j, prep, Limits(), True)[0] for j in jpegs for _ in range(scale.decode_repeats)]
    png = [timed(load_pixels, p, prep, Limits())[0] for p in pngs]
    bench.section("decode + preprocess, 12 MP JPEG (4000x3000) and 6 MP PNG, ms (median)")
    n, d = statistics.median(naive), statistics.median(draft)
    bench.row("decode", "12 MP JPEG, full decode", f"{n:8.1f} ms", "jpeg12mp_naive_ms", n)
    bench.row("decode", "12 MP JPEG, draft mode (DCT scaling)", f"{d:8.1f} ms", "jpeg12mp_draft_ms", d)
    bench.row("decode", "draft / full (target <= 0.35)", f"{d / n:8.2f} x", "draft_over_naive", d / n)
    bench.row("decode", "6 MP PNG", f"{statistics.median(png):8.1f} ms", "png6mp_ms", statistics.median(png))


MEASURE = Measure("decode", "12 MP JPEG: draft-mode vs full decode; 6 MP PNG", run)
