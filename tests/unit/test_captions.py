"""The caption model's export (tiny random BLIP): its ONNX graphs decoded greedily in numpy give
transformers' generate() tokens, photo by photo and in a batch, and the runtime needs no torch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from model_export.photos import coco_photos, skimage_photos
from tests.conftest import ROOT

pytest.importorskip("torch")
pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from model_export.caption_export import export

    out = tmp_path_factory.mktemp("captions") / "tiny"
    export("tiny-blip", out, photos=8, prompt="a picture of")  # raises unless the 8 photos' tokens agree
    return out


def test_the_export_checks_its_tokens_against_transformers_generate(exported: Path) -> None:
    manifest = json.loads((exported / "caption.json").read_text())
    assert manifest["parity"]["photos"] == 8 and manifest["parity"]["same_tokens"] == 8
    assert manifest["parity"]["tokens"] > 8  # something was generated
    assert manifest["decoding"] == "greedy" and manifest["prompt_ids"]  # the prompt's WordPiece ids
    for kind in ("image", "step"):  # int8 only where its parity held, and the manifest says which
        assert (exported / manifest["files"][kind]).is_file()
        assert manifest["quantization"][kind]["kept"] == manifest["files"][kind].endswith(".int8.onnx")
    assert {p.name for p in exported.iterdir()} == {"caption.json", *manifest["files"].values()}


def test_a_batch_decodes_as_each_photo_alone(exported: Path) -> None:
    from cliptag.captioning import Captioner

    from model_export.caption_parity import preprocess_photos

    captioner = Captioner(exported)
    photos = [p.read_bytes() for p in (coco_photos()[:4] or skimage_photos()[:4])]
    pixels = preprocess_photos(photos, captioner.manifest)
    alone = [captioner.token_ids(pixels[i : i + 1])[0] for i in range(len(photos))]
    assert captioner.token_ids(pixels) == alone
    captions = captioner.captions(pixels)
    assert all(c.startswith("a picture of ") and len(c.split()) > 4 for c in captions)  # words, not ids
    assert captioner.timing.steps >= 1 and captioner.timing.image_ms > 0


def test_captioning_runs_without_torch(exported: Path) -> None:
    probe = (
        "import sys; from pathlib import Path; import numpy as np\n"
        "from cliptag.captioning import Captioner\n"
        "c = Captioner(Path(sys.argv[1])); s = c.manifest['image_size']\n"
        "print(len(c.captions(np.zeros((1, 3, s, s), np.float32))[0]) > 0, 'torch' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe, str(exported)],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(ROOT / "functions")},
        check=True,
    )
    assert out.stdout.split() == ["True", "False"]
