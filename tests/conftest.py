"""Shared fixtures: the exported tiny model, real photos, and where the shared data lives."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
COCO = SHARED / "images" / "coco-val2017"
FORMATS = SHARED / "images" / "formats"
TOKENIZER_DIR = SHARED / "tokenizer" / "clip-vit-base-patch32"
NO_SHARED = f"reference data not found at {SHARED} (clone the repo beside shared/ to run this test)"


def require(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{NO_SHARED}: missing {path.name}")
    return path


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real exported ONNX model (tiny geometry, random weights): `make test` builds it first."""
    configured = Path(os.environ.get("CLIPTAG_TEST_MODEL_DIR", ROOT / "build" / "model-tiny"))
    if (configured / "manifest.json").is_file():
        return configured
    pytest.importorskip("torch", reason="exporting the test model needs the export extra (make venv)")
    require(TOKENIZER_DIR)
    from model_export.export import ExportOptions, run_export

    out = tmp_path_factory.mktemp("model") / "tiny"
    run_export(
        ExportOptions(
            source="tiny",
            out_dir=out,
            vocabulary=ROOT / "model_export" / "vocabulary" / "default.yaml",
            geometry_dir=TOKENIZER_DIR,
            progress=False,
        )
    )
    return out


def real_photos(limit: int = 12) -> list[Path]:
    from model_export.photos import coco_photos, skimage_photos

    photos = coco_photos()[:limit] or skimage_photos()[:limit]
    if not photos:
        pytest.skip("no real photos: neither shared/data nor scikit-image is available")
    return photos
