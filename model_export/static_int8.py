"""Static int8 (QDQ) for the image encoder: calibrated on real photos, measured against fp32 and the
shipped dynamic int8 (issue #14).

``python -m model_export.static_int8 --model-dir build/model-vit-b-32-random`` quantizes the bundle's
fp32 image encoder with ONNX Runtime's ``quantize_static`` under each candidate setting, then prints
one table: min/mean cosine and top-5 tag agreement against fp32 on COCO photos, file size, and
ms/image in batches of 10, each variant timed in alternation with the shipped dynamic int8 in one
process so the ratios are fair.

Calibration photos and parity photos are disjoint: parity uses the first COCO photos (as the
export does), calibration the last ones. Both go through the tagger's own preprocessing
(``cliptag.imaging.load_pixels`` with the bundle's constants), so the ranges are those of what the
tagger feeds the model.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from cliptag.bundle import ModelBundle
from cliptag.encoder import ImageEncoder
from cliptag.imaging import Limits, Preprocessing, load_pixels
from numpy.typing import NDArray
from onnxruntime.quantization import CalibrationDataReader

from model_export import parity
from model_export.photos import coco_photos

FP32, DYNAMIC = "fp32", "int8 dynamic (shipped)"


@dataclass(frozen=True)
class Candidate:
    """One ``quantize_static`` setting (always QDQ)."""

    name: str
    method: str = "MinMax"  # onnxruntime.quantization.CalibrationMethod member
    ops: tuple[str, ...] = ("MatMul",)  # () = every op type ORT's QDQ quantizer knows
    # The QDQ quantizer also quantizes the attention MatMuls (both inputs activations; its
    # MatMulConstBOnly option applies to QOperator only); False excludes them by name, leaving
    # the weight MatMuls: the dynamic variant's coverage.
    attention: bool = True
    activations: str = "QUInt8"
    weights: str = "QInt8"
    per_channel: bool = False
    reduce_range: bool = False  # 7-bit weights: ORT's advice against u8s8 saturation without VNNI
    preprocess: bool = False  # ORT's quant_pre_process first (shape inference + graph optimisation)
    # MatMul outputs left in float: DQ -> MatMul without a Q after it, which ORT fuses into
    # MatMulIntegerToFloat (the dynamic variant's kernel minus quantizing the input at run time)
    # instead of QLinearMatMul followed by a DequantizeLinear.
    float_outputs: bool = False


CANDIDATES = (
    Candidate("minmax u8s8"),
    Candidate("minmax u8s8 weight MatMuls only", attention=False),
    Candidate("minmax u8s8 reduce-range", reduce_range=True),
    Candidate("minmax u8s8 per-channel", per_channel=True),
    Candidate("minmax u8s8 per-channel reduce-range", per_channel=True, reduce_range=True),
    Candidate("minmax s8s8", activations="QInt8"),
    Candidate("minmax u8u8", weights="QUInt8"),
    Candidate("entropy u8s8", method="Entropy"),
    Candidate("percentile u8s8", method="Percentile"),
    Candidate("minmax u8s8 pre-processed", preprocess=True),
    Candidate("minmax u8s8 float outputs", float_outputs=True),
    Candidate("minmax u8s8 weight MatMuls only float outputs", attention=False, float_outputs=True),
    Candidate("minmax u8s8 all ops (QLinear)", ops=()),
)


class PhotoReader(CalibrationDataReader):  # type: ignore[misc]  # ORT ships no type hints
    """Real photos' pixels, ``batch`` at a time, preprocessed as the tagger preprocesses them."""

    def __init__(self, photos: Sequence[Path], prep: Preprocessing, input_name: str = "pixel_values", batch: int = 1):
        self.photos, self.prep, self.input_name, self.batch = list(photos), prep, input_name, batch
        self._next = 0

    def get_next(self) -> dict[str, NDArray[np.float32]] | None:
        chunk = self.photos[self._next : self._next + self.batch]
        if not chunk:
            return None
        self._next += len(chunk)
        return {self.input_name: np.stack([load_pixels(p.read_bytes(), self.prep, Limits())[1] for p in chunk])}

    def rewind(self) -> None:
        self._next = 0

    def __len__(self) -> int:
        return -(-len(self.photos) // self.batch)


def split_photos(photos: Sequence[Path], n_parity: int, n_calibration: int) -> tuple[list[Path], list[Path]]:
    """(parity, calibration): the first photos for parity, as the export uses them, the last ones
    for calibration; never the same photo in both."""
    if n_parity + n_calibration > len(photos):
        raise SystemExit(f"{n_parity} parity + {n_calibration} calibration photos, only {len(photos)} available")
    return list(photos[:n_parity]), list(photos[len(photos) - n_calibration :])


def calibrate(fp32: Path, reader: PhotoReader, method: str, cache: Path, chunk: int = 8) -> Path:
    """Ranges of every float tensor, written where ``quantize_static(calibration_cache_path=...)``
    reads them: one calibration serves every candidate of that method. Collected ``chunk`` photos
    at a time (the calibrators hold every intermediate output of a chunk: ~100 MB per ViT-B/32
    photo)."""
    from onnxruntime.quantization.calibrate import CalibrationMethod, create_calibrator, save_tensors_data

    # The calibrators print their progress; the study prints its own.
    with tempfile.TemporaryDirectory(prefix="calib-") as tmp, contextlib.redirect_stdout(io.StringIO()):
        calibrator = create_calibrator(
            fp32,
            None,
            augmented_model_path=str(Path(tmp) / "augmented.onnx"),
            calibrate_method=CalibrationMethod[method],
        )
        photos = reader.photos
        for start in range(0, len(photos), chunk):
            calibrator.collect_data(PhotoReader(photos[start : start + chunk], reader.prep, reader.input_name))
        save_tensors_data(calibrator.compute_data(), cache)
    return cache


def preprocessed(fp32: Path, work_dir: Path) -> Path:
    """ORT's recommended step before static quantization: symbolic shape inference and ORT's
    basic graph optimisations (constant folding, redundant nodes removed), saved once."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    dst = work_dir / "image_encoder.pre.onnx"
    if not dst.is_file():
        quant_pre_process(str(fp32), str(dst))
    return dst


def activation_matmuls(model: Path) -> list[str]:
    """Names of the MatMuls neither of whose inputs is a weight (attention scores and context)."""
    import onnx

    graph = onnx.load(str(model), load_external_data=False).graph
    weights = {init.name for init in graph.initializer}
    return [n.name for n in graph.node if n.op_type == "MatMul" and not weights.intersection(n.input)]


def quantize_qdq(fp32: Path, dst: Path, candidate: Candidate, cache: Path) -> Path:
    """``quantize_static`` in QDQ format with the ranges calibrated into ``cache``."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    quantize_static(
        str(fp32),
        str(dst),
        quant_format=QuantFormat.QDQ,
        op_types_to_quantize=list(candidate.ops) or None,
        per_channel=candidate.per_channel,
        reduce_range=candidate.reduce_range,
        activation_type=QuantType[candidate.activations],
        weight_type=QuantType[candidate.weights],
        calibrate_method=CalibrationMethod[candidate.method],
        calibration_cache_path=str(cache),
        nodes_to_exclude=None if candidate.attention else activation_matmuls(fp32),
        extra_options={"OpTypesToExcludeOutputQuantization": ["MatMul"]} if candidate.float_outputs else None,
    )
    return dst


def parity_figures(
    reference: NDArray[np.float32], embeds: NDArray[np.float32], tags: NDArray[np.float32]
) -> dict[str, Any]:
    stats = parity.cosine_stats(reference, embeds)
    return {
        "min_cosine": stats.min_cosine,
        "mean_cosine": stats.mean_cosine,
        "top5_agreement": parity.top5_agreement(reference, embeds, tags),
    }


def _ms_per_image(encoder: ImageEncoder, pixels: NDArray[np.float32]) -> float:
    start = time.perf_counter()
    encoder.session.run(None, {encoder.input_name: pixels})
    return (time.perf_counter() - start) * 1000 / len(pixels)


def paired_timings(
    paths: dict[str, Path], baseline: str, pixels: NDArray[np.float32], rounds: int
) -> dict[str, tuple[float, float]]:
    """(median ms/image, median ratio to the baseline) of each encoder, with the tagger's options.

    Each round times the encoder and the baseline back to back (the baseline first in even rounds,
    second in odd ones) and keeps their ratio, so a ratio compares runs a second apart: on a shared
    machine, load moves by more than the differences measured here within the minutes a study
    takes (measured: the same file 1.12x and 1.36x the baseline in two runs timed minutes apart)."""
    base = ImageEncoder(paths[baseline])
    base.embed(pixels)  # warm-up: first-run allocations
    out: dict[str, tuple[float, float]] = {}
    base_runs: list[float] = []
    for name, path in paths.items():
        if name == baseline:
            continue
        other = ImageEncoder(path)
        other.embed(pixels)
        mine, ratios = [], []
        for r in range(rounds):
            ms = {id(e): _ms_per_image(e, pixels) for e in ((base, other) if r % 2 == 0 else (other, base))}
            mine.append(ms[id(other)])
            base_runs.append(ms[id(base)])
            ratios.append(ms[id(other)] / ms[id(base)])
        out[name] = (statistics.median(mine), statistics.median(ratios))
    out[baseline] = (statistics.median(base_runs), 1.0)
    return out


def study(
    model_dir: Path,
    work_dir: Path,
    candidates: Sequence[Candidate] = CANDIDATES,
    n_parity: int = 64,
    n_calibration: int = 32,
    batch: int = 10,
    rounds: int = 11,
    photos: Sequence[Path] | None = None,
    log: Any = print,
) -> list[dict[str, Any]]:
    """One row per encoder (fp32, the shipped dynamic int8, each candidate): file, MB, parity
    figures against fp32, ms/image and the ratio to the dynamic int8."""
    bundle = ModelBundle.open(model_dir)
    prep, tags = bundle.preprocessing, bundle.tag_embeddings
    fp32 = model_dir / "image_encoder.onnx"
    parity_set, calibration_set = split_photos(photos if photos is not None else coco_photos(), n_parity, n_calibration)
    reference = parity.photo_embeddings(fp32, parity_set, prep)
    paths = {FP32: fp32, DYNAMIC: model_dir / "image_encoder.int8.onnx"}
    rows: dict[str, dict[str, Any]] = {FP32: parity_figures(reference, reference, tags)}
    rows[DYNAMIC] = parity_figures(reference, parity.photo_embeddings(paths[DYNAMIC], parity_set, prep), tags)
    caches: dict[str, Path] = {}  # one calibration per method and source graph
    for i, candidate in enumerate(candidates):
        started = time.perf_counter()
        source = preprocessed(fp32, work_dir) if candidate.preprocess else fp32
        key = f"{candidate.method}{'-pre' if candidate.preprocess else ''}"
        if key not in caches:  # kept in --work-dir: a second study of the same photos skips it
            caches[key] = work_dir / f"{key}-{len(calibration_set)}.json"
            if not caches[key].is_file():
                calibrate(source, PhotoReader(calibration_set, prep), candidate.method, caches[key])
                log(f"[static-int8] {key} calibration on {len(calibration_set)} photos")
        path = quantize_qdq(source, work_dir / f"image_encoder.qdq{i}.onnx", candidate, caches[key])
        paths[candidate.name] = path
        rows[candidate.name] = parity_figures(reference, parity.photo_embeddings(path, parity_set, prep), tags)
        figures = rows[candidate.name]
        log(
            f"[static-int8] {candidate.name}: min cosine {figures['min_cosine']:.5f}"
            f" ({time.perf_counter() - started:.0f} s)"
        )
    pixels = np.stack([load_pixels(p.read_bytes(), prep, Limits())[1] for p in parity_set[:batch]])
    timings = paired_timings(paths, DYNAMIC, pixels, rounds)
    return [
        {
            "variant": name,
            "file": paths[name].name,
            "bytes": paths[name].stat().st_size,
            **figures,
            "ms_per_image": timings[name][0],
            "vs_dynamic": timings[name][1],
            "photos": len(parity_set),
            "calibration_photos": len(calibration_set),
        }
        for name, figures in rows.items()
    ]


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| image encoder | size | min cosine vs fp32 | mean cosine | top-5 tags identical"
        " | ms/image | vs dynamic int8 |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['variant']} | {r['bytes'] / 1e6:.1f} MB | {r['min_cosine']:.5f} | {r['mean_cosine']:.5f}"
            f" | {r['top5_agreement']:.0%} | {r['ms_per_image']:.1f} | {r['vs_dynamic']:.2f}x |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m model_export.static_int8", description=__doc__)
    parser.add_argument("--model-dir", type=Path, default=Path("build/model-vit-b-32-random"))
    parser.add_argument("--photos", type=int, default=64, help="COCO photos for parity (the first ones)")
    parser.add_argument("--calibration", type=int, default=32, help="COCO photos to calibrate on (the last ones)")
    parser.add_argument("--rounds", type=int, default=11, help="timing rounds against the dynamic int8 (median of)")
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--only", default="", help="comma-separated candidate names (default: all)")
    parser.add_argument("--work-dir", type=Path, default=None, help="keep the quantized files and ranges here")
    args = parser.parse_args(argv)
    wanted = {n.strip() for n in args.only.split(",") if n.strip()}
    candidates = [c for c in CANDIDATES if not wanted or c.name in wanted]
    if wanted - {c.name for c in candidates}:
        parser.error(f"unknown candidates: {sorted(wanted - {c.name for c in candidates})}")
    with tempfile.TemporaryDirectory(prefix="static-int8-") as tmp:
        work = args.work_dir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        rows = study(args.model_dir, work, candidates, args.photos, args.calibration, args.batch, args.rounds)
    print(f"\n{rows[0]['photos']} parity photos, {rows[0]['calibration_photos']} calibration photos (disjoint);")
    print(f"ms/image in batches of {args.batch}, median of {args.rounds} runs alternated with the dynamic int8\n")
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
