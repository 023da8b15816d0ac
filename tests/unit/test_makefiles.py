"""The Makefiles, dry-run: no warnings for any MODEL, the right export per directory, and a
model layer holding only what the functions load."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make")


def make(*args: str, cwd: Path = ROOT, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MODEL", "MODEL_DIR")}
    return subprocess.run(
        ["make", *args], cwd=cwd, env={**clean, **(env or {})}, capture_output=True, text=True, timeout=60
    )


def exports(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if "-m model_export " in line]


@pytest.mark.parametrize(
    "args",
    [
        ["demo", "MODEL=tiny"],
        ["demo"],
        ["test"],
        ["demo", "MODEL=vit-b-32-random"],
        ["demo", "MODEL=datacomp-b32-256-random"],
        ["bench"],
        ["local", "MODEL=tiny"],
        ["layer-check"],
    ],
)
def test_dry_runs_print_no_warning(args: list[str]):
    result = make("-n", *args)
    assert result.returncode == 0, result.stderr
    assert "warning" not in result.stderr.lower(), result.stderr


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["demo", "MODEL=tiny"], ["--model tiny --no-progress --out build/model-tiny"]),
        (
            ["demo"],
            [
                "--model open_clip:ViT-B-32-256/datacomp_s34b_b86k"
                " --out build/model-open_clip_ViT-B-32-256_datacomp_s34b_b86k"
            ],
        ),
        (["test"], ["--model tiny --no-progress --out build/model-tiny"]),
        (["bench"], ["--model datacomp-b32-256-random --out build/model-datacomp-b32-256-random"]),
        (["bench", "BENCH_MODEL=vit-b-32-random"], ["--model vit-b-32-random --out build/model-vit-b-32-random"]),
        (["demo", "MODEL=/ckpt/mine"], ["--model /ckpt/mine --out build/model-_ckpt_mine"]),
        (
            ["demo", "MODEL=openai/clip-vit-base-patch32"],
            ["--model openai/clip-vit-base-patch32 --out build/model-openai_clip-vit-base-patch32"],
        ),
        (
            ["demo", "MODEL=siglip2-b32-256-random"],
            ["--model siglip2-b32-256-random --out build/model-siglip2-b32-256-random"],
        ),
    ],
)
def test_each_model_directory_is_exported_once_with_its_own_arguments(args: list[str], expected: list[str]):
    result = make("-n", "-B", *args)  # -B: as if nothing were built yet
    assert result.returncode == 0, result.stderr
    assert [line.split("-m model_export ", 1)[1] for line in exports(result.stdout)] == expected
    assert "warning" not in result.stderr.lower(), result.stderr


@pytest.mark.parametrize(
    ("layer", "expected"),
    [
        ("build-ModelLayer", ["image_encoder.int8.onnx", "manifest.json", "tag_embeddings.npy", "vocabulary.json"]),
        (
            "build-ApiModelLayer",
            ["manifest.json", "tag_embeddings.npy", "text_encoder.int8.onnx", "tokenizer.json", "vocabulary.json"],
        ),
    ],
)
def test_each_model_layer_packs_only_what_its_function_loads(tmp_path: Path, layer: str, expected: list[str]):
    model = tmp_path / "model"
    model.mkdir()
    names = {
        "image_encoder.int8.onnx": "chosen",
        "image_encoder.onnx": "fp32, not chosen",
        "text_encoder.onnx": "text fp32, not chosen",
        "text_encoder.int8.onnx": "text, chosen",
        "tokenizer.json": "{}",
        "vocabulary.json": "{}",
        "tag_embeddings.npy": "x",
        "parity.json": "{}",
    }
    for name, text in names.items():
        (model / name).write_text(text)
    (model / "manifest.json").write_text(
        json.dumps(
            {
                "image_encoder": {"file": "image_encoder.int8.onnx"},
                "text_encoder": {"file": "text_encoder.int8.onnx"},
                "tokenizer": {"file": "tokenizer.json"},
                "vocabulary": {"file": "vocabulary.json"},
                "tag_embeddings": {"file": "tag_embeddings.npy"},
            }
        )
    )
    artifacts = tmp_path / "artifacts"
    result = make(
        "-s",
        layer,
        f"CLIPTAG_MODEL_DIR={model}",
        f"ARTIFACTS_DIR={artifacts}",
        cwd=ROOT / "layers" / "model",
    )
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (artifacts / "model").iterdir()) == expected


def test_a_text_encoder_too_big_for_the_api_layer_stays_out_of_it(tmp_path: Path):
    """SigLIP2's text encoder (284 MB int8) cannot join the API's layers within Lambda's 250 MB:
    its layer keeps the manifest, vocabulary and tag embeddings, and the build says how to deploy."""
    model = tmp_path / "model"
    model.mkdir()
    (model / "text_encoder.int8.onnx").write_bytes(b"\0" * (3 * 2**20))
    for name in ("tokenizer.json", "vocabulary.json", "tag_embeddings.npy"):
        (model / name).write_text("{}")
    manifest = {
        "text_encoder": {"file": "text_encoder.int8.onnx"},
        "tokenizer": {"file": "tokenizer.json"},
        "vocabulary": {"file": "vocabulary.json"},
        "tag_embeddings": {"file": "tag_embeddings.npy"},
    }
    (model / "manifest.json").write_text(json.dumps(manifest))
    artifacts = tmp_path / "artifacts"
    args = ["-s", "build-ApiModelLayer", f"CLIPTAG_MODEL_DIR={model}", f"ARTIFACTS_DIR={artifacts}"]
    small = make(*args, cwd=ROOT / "layers" / "model", env={"CLIPTAG_API_MODEL_LAYER_MIB": "2"})
    assert small.returncode == 0, small.stderr
    assert sorted(p.name for p in (artifacts / "model").iterdir()) == [
        "manifest.json",
        "tag_embeddings.npy",
        "vocabulary.json",
    ]
    assert "search by text needs ApiModelS3Uri" in small.stderr
    shutil.rmtree(artifacts)
    roomy = make(*args, cwd=ROOT / "layers" / "model", env={"CLIPTAG_API_MODEL_LAYER_MIB": "4"})
    assert roomy.returncode == 0 and "ApiModelS3Uri" not in roomy.stderr
    assert "text_encoder.int8.onnx" in {p.name for p in (artifacts / "model").iterdir()}
