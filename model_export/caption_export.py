"""``python -m model_export captions``: the caption model (BLIP) as two ONNX graphs, a tokenizer
and ``caption.json``, checked against transformers' ``generate()``.

    python -m model_export captions --model Salesforce/blip-image-captioning-base --out build/captions
    python -m model_export captions --model tiny-blip --out build/captions-tiny       # offline, tests

Each graph is quantized to int8 where its parity holds: the image graph when its cross-attention
keys and values keep a min cosine >= 0.99 against fp32, the step graph when greedy decoding gives
the very same tokens as fp32 on every parity photo; otherwise fp32 ships, and the manifest says
which and why.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from model_export.caption_model import DEFAULT_CAPTION_MODEL, RANDOM_CAPTION_MODELS, ImageGraph, StepGraph, load
from model_export.checkpoint import DEFAULT_GEOMETRY_DIR
from model_export.quantize import quantize_int8

OPSET = 17
MAX_NEW_TOKENS = 30


def export(
    name: str, out: Path, photos: int = 16, seed: int = 0, prompt: str = "", quantize: bool = True
) -> dict[str, Any]:
    """Export into a temporary directory, check parity, then replace ``out``; the manifest."""
    import torch

    from model_export.caption_parity import preprocess_photos, torch_generate, wordpiece_ids
    from model_export.photos import coco_photos, skimage_photos

    ckpt = load(name, seed, DEFAULT_GEOMETRY_DIR)
    text = ckpt.model.config.text_config
    heads, layers = int(text.num_attention_heads), int(text.num_hidden_layers)
    head_dim = int(text.hidden_size) // heads
    prompt_ids = wordpiece_ids(ckpt.tokenizer, prompt)
    with tempfile.TemporaryDirectory(dir=out.parent if out.parent.exists() else None) as tmp:
        work = Path(tmp)
        size = ckpt.image_size
        patches = (size // 16) ** 2 + 1
        with torch.no_grad():
            torch.onnx.export(
                ImageGraph(ckpt.model),
                (torch.randn(2, 3, size, size),),
                str(work / "caption_image.onnx"),
                input_names=["pixel_values"],
                output_names=["cross"],
                dynamic_axes={"pixel_values": {0: "batch"}, "cross": {1: "batch"}},
                opset_version=OPSET,
                dynamo=False,
            )
            torch.onnx.export(
                StepGraph(ckpt.model),
                (
                    torch.ones(2, 3, dtype=torch.long),
                    torch.zeros(2 * layers, 2, heads, 4, head_dim),
                    torch.zeros(2 * layers, 2, heads, patches, head_dim),
                ),
                str(work / "caption_step.onnx"),
                input_names=["input_ids", "past", "cross"],
                output_names=["logits", "present"],
                dynamic_axes={
                    "input_ids": {0: "batch", 1: "new"},
                    "past": {1: "batch", 3: "cached"},
                    "cross": {1: "batch"},
                    "logits": {0: "batch"},
                    "present": {1: "batch", 3: "total"},
                },
                opset_version=OPSET,
                dynamo=False,
            )
        ckpt.tokenizer.save(str(work / "caption_tokenizer.json"))
        manifest: dict[str, Any] = {
            "format_version": 1,
            "model": ckpt.key,
            "image_size": size,
            "mean": list(ckpt.mean),
            "std": list(ckpt.std),
            "layers": layers,
            "heads": heads,
            "head_dim": head_dim,
            "bos_token_id": int(text.bos_token_id),
            "sep_token_id": int(text.sep_token_id),
            "prompt": prompt,
            "prompt_ids": prompt_ids,
            "max_new_tokens": MAX_NEW_TOKENS,
            "decoding": "greedy",
            "files": {
                "image": "caption_image.onnx",
                "step": "caption_step.onnx",
                "tokenizer": "caption_tokenizer.json",
            },
        }
        (work / "caption.json").write_text(json.dumps(manifest, indent=2), "utf-8")
        images = [p.read_bytes() for p in (coco_photos()[:photos] or skimage_photos()[:photos])]
        pixels = preprocess_photos(images, manifest)
        expected = torch_generate(ckpt.model, pixels, [int(text.bos_token_id), *prompt_ids], int(text.sep_token_id))
        manifest["parity"] = _check(work, manifest, pixels, expected)
        if quantize:
            manifest["quantization"] = _quantize(work, manifest, pixels, expected)
        (work / "caption.json").write_text(json.dumps(manifest, indent=2), "utf-8")
        if out.exists():
            shutil.rmtree(out)
        shutil.copytree(work, out)
        out.chmod(0o755)  # the temporary directory it was made in is private
    return manifest


CHUNK = 8  # photos decoded at once: 128 at once would hold ~5 GB of image keys and values


def decoded(work: Path, pixels: np.ndarray) -> list[list[int]]:
    """Greedy tokens of every photo with the graphs ``work``'s manifest names, CHUNK at a time."""
    from cliptag.captioning import Captioner

    captioner = Captioner(work)
    return [
        ids
        for at in range(0, len(pixels), CHUNK)
        for ids in captioner.token_ids(pixels[at : at + CHUNK], MAX_NEW_TOKENS)
    ]


def _check(work: Path, manifest: dict[str, Any], pixels: np.ndarray, expected: list[list[int]]) -> dict[str, Any]:
    """The fp32 graphs' greedy tokens against PyTorch's generate(): they must be the same."""
    found = decoded(work, pixels)
    same = sum(a == b for a, b in zip(found, expected, strict=True))
    if same != len(expected):
        first = next(i for i, (a, b) in enumerate(zip(found, expected, strict=True)) if a != b)
        raise SystemExit(f"caption parity failed on photo {first}: ONNX {found[first]} vs PyTorch {expected[first]}")
    return {"photos": len(expected), "same_tokens": same, "tokens": sum(len(t) for t in expected)}


def _quantize(
    work: Path, manifest: dict[str, Any], pixels: np.ndarray, reference_tokens: list[list[int]]
) -> dict[str, Any]:
    """int8 for each graph whose parity holds against fp32 (see the module's docstring);
    ``reference_tokens``: the fp32 graphs' tokens (equal to PyTorch's)."""
    import onnxruntime as ort

    report: dict[str, Any] = {}
    image_int8 = quantize_int8(work / "caption_image.onnx", work / "caption_image.int8.onnx")
    sessions = [
        ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        for path in (work / "caption_image.onnx", image_int8)
    ]
    worst = 1.0
    for at in range(0, len(pixels), CHUNK):
        fp32, int8 = (session.run(None, {"pixel_values": pixels[at : at + CHUNK]})[0] for session in sessions)
        a, b = fp32.reshape(-1, fp32.shape[-1]), int8.reshape(-1, int8.shape[-1])
        cosines = (a * b).sum(-1) / np.maximum(np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1), 1e-12)
        worst = min(worst, float(cosines.min()))
    report["image"] = {"int8_min_cos": round(worst, 5), "kept": worst >= 0.99}
    if report["image"]["kept"]:
        manifest["files"]["image"] = image_int8.name
    quantize_int8(work / "caption_step.onnx", work / "caption_step.int8.onnx", embeddings=True)
    trial = {**manifest, "files": {**manifest["files"], "step": "caption_step.int8.onnx"}}
    (work / "caption.json").write_text(json.dumps(trial), "utf-8")
    tokens = decoded(work, pixels)
    same = sum(x == y for x, y in zip(tokens, reference_tokens, strict=True))
    report["step"] = {"int8_same_captions": f"{same}/{len(tokens)}", "kept": same == len(tokens)}
    if report["step"]["kept"]:
        manifest["files"]["step"] = "caption_step.int8.onnx"
    for kind, name in (("image", "caption_image.int8.onnx"), ("step", "caption_step.int8.onnx")):
        if manifest["files"][kind] != name:
            (work / name).unlink(missing_ok=True)
    for kind, name in (("image", "caption_image.onnx"), ("step", "caption_step.onnx")):
        if manifest["files"][kind] != name:
            (work / name).unlink(missing_ok=True)
    return report


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m model_export captions", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--model",
        default=DEFAULT_CAPTION_MODEL,
        help=f"a Hugging Face BLIP id (default {DEFAULT_CAPTION_MODEL}) or {', '.join(RANDOM_CAPTION_MODELS)}",
    )
    p.add_argument("--out", type=Path, default=Path("build/captions"))
    p.add_argument("--photos", type=int, default=16, help="real photos for the parity checks (128: the full check)")
    p.add_argument("--prompt", default="", help="text every caption starts from (BLIP: e.g. 'a picture of')")
    p.add_argument("--no-quantize", action="store_true", help="ship fp32 graphs")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    manifest = export(args.model, args.out, args.photos, args.seed, args.prompt, not args.no_quantize)
    print(json.dumps({k: manifest[k] for k in ("model", "files", "parity", "quantization") if k in manifest}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
