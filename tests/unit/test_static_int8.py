"""The static int8 (QDQ) study on the tiny model: calibration reads real photos through the tagger's
preprocessing, the QDQ model loads in ONNX Runtime, and its parity figures come out (no speed is
asserted: the machine is shared)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from cliptag.bundle import ModelBundle

from model_export import static_int8
from model_export.photos import coco_photos
from tests.conftest import COCO, require


@pytest.fixture
def photos() -> list[Path]:
    require(COCO)
    return coco_photos()


def test_reader_yields_preprocessed_batches_of_real_photos(model_dir: Path, photos: list[Path]):
    prep = ModelBundle.open(model_dir).preprocessing
    reader = static_int8.PhotoReader(photos[:3], prep, batch=2)
    assert len(reader) == 2
    shapes = []
    while (feed := reader.get_next()) is not None:
        (pixels,) = feed.values()
        assert list(feed) == ["pixel_values"] and pixels.dtype == np.float32
        assert np.isfinite(pixels).all() and pixels.std() > 0.1  # normalised photo pixels, not zeros
        shapes.append(pixels.shape)
    assert shapes == [(2, 3, prep.crop, prep.crop), (1, 3, prep.crop, prep.crop)]
    reader.rewind()
    assert reader.get_next() is not None


def test_calibration_and_parity_photos_are_disjoint(photos: list[Path]):
    parity, calibration = static_int8.split_photos(photos, 16, 8)
    assert len(parity) == 16 and len(calibration) == 8
    assert not set(parity) & set(calibration)
    assert parity == photos[:16]  # the photos the export's parity check uses
    with pytest.raises(SystemExit):
        static_int8.split_photos(photos[:10], 8, 8)


def test_qdq_model_is_produced_and_loads_in_onnx_runtime(model_dir: Path, photos: list[Path], tmp_path: Path):
    prep = ModelBundle.open(model_dir).preprocessing
    fp32 = model_dir / "image_encoder.onnx"
    reader = static_int8.PhotoReader(photos[-4:], prep)
    candidate = static_int8.CANDIDATES[0]
    cache = static_int8.calibrate(fp32, reader, candidate.method, tmp_path / "ranges.json", chunk=2)
    qdq = static_int8.quantize_qdq(fp32, tmp_path / "image_encoder.qdq.onnx", candidate, cache)
    ops = {node.op_type for node in onnx.load(str(qdq)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    session = ort.InferenceSession(str(qdq), providers=["CPUExecutionProvider"])
    pixels = reader.get_next()
    assert pixels is not None
    (out,) = session.run(None, pixels)
    assert out.shape == (1, ModelBundle.open(model_dir).embed_dim) and np.isfinite(out).all()


def test_study_reports_parity_figures_for_each_variant(model_dir: Path, photos: list[Path], tmp_path: Path):
    candidates = [static_int8.CANDIDATES[0]]
    rows = static_int8.study(
        model_dir, tmp_path, candidates, n_parity=10, n_calibration=4, batch=4, rounds=1, photos=photos
    )
    assert [r["variant"] for r in rows] == [static_int8.FP32, static_int8.DYNAMIC, candidates[0].name]
    fp32, _, qdq = rows
    assert fp32["min_cosine"] == pytest.approx(1.0, abs=1e-6) and fp32["top5_agreement"] == 1.0
    assert 0.9 < qdq["min_cosine"] <= qdq["mean_cosine"] <= 1.0 + 1e-6
    assert 0.0 <= qdq["top5_agreement"] <= 1.0
    assert qdq["photos"] == 10 and qdq["calibration_photos"] == 4 and qdq["bytes"] > 0
    assert all(r["ms_per_image"] > 0 for r in rows)  # measured, whatever the speed
    assert "| minmax u8s8 |" in static_int8.table(rows)
