"""Prove the runtime layer holds everything the functions import, nothing more needed.

Builds the layer with the same Makefile for this machine's Python (Lambda's own Python cannot
run here), then, in an isolated interpreter whose only paths are the layer, the function code
and what the Lambda runtime itself provides (boto3 and its dependencies), imports both handlers,
loads a model directory, decodes HEIC/AVIF/JPEG and runs the image encoder, and embeds a search
query with the text encoder (tokenizers without huggingface_hub).

Usage: python layers/check_runtime_layer.py MODEL_DIR
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROBE = textwrap.dedent(
    """
    import sys, json, numpy as np
    from pathlib import Path
    import handlers.tagger, handlers.api  # every import of both functions resolves
    from cliptag.bundle import ModelBundle
    from cliptag.encoder import ImageEncoder
    from cliptag.imaging import Limits, load_pixels
    from cliptag.text import TextEncoder
    bundle = ModelBundle.open(sys.argv[1])
    encoder = ImageEncoder(bundle.image_encoder_path())
    pixels = [load_pixels(Path(p).read_bytes(), bundle.preprocessing, Limits())[1] for p in sys.argv[2:]]
    emb = encoder.embed(np.stack(pixels))
    query = TextEncoder(bundle.text_encoder_path(), bundle.tokenizer_path()).embed(["a dog on the beach"])
    assert "huggingface_hub" not in sys.modules, "tokenizers must not need huggingface_hub at run time"
    print(json.dumps({"images": len(pixels), "dim": int(emb.shape[1]), "query_dim": int(query.shape[1]),
                      "model": bundle.model_key}))
    """
)


def main() -> int:
    model_dir = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "build" / "model-tiny").resolve()
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    samples = [
        p
        for p in (
            ROOT.parent / "shared/data/images/formats/heic/samplefilehub.heif",
            ROOT.parent / "shared/data/images/formats/misc/hopper.avif",
            ROOT.parent / "shared/data/images/formats/misc/hopper_orientation_6.jpg",
        )
        if p.is_file()
    ]
    with tempfile.TemporaryDirectory() as tmp:
        layer, provided = Path(tmp) / "layer", Path(tmp) / "lambda-runtime"
        pip = f"{sys.executable} -m pip"
        subprocess.run(
            [
                "make",
                "-s",
                "-C",
                str(ROOT / "layers/runtime"),
                "build-RuntimeLayer",
                f"ARTIFACTS_DIR={layer}",
                f"LAMBDA_PYTHON={version}",
                f"PIP={pip}",
            ],
            check=True,
        )
        # What the Lambda Python runtime ships besides the standard library.
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--no-compile", "--target", str(provided), "boto3"],
            check=True,
        )
        size = sum(f.stat().st_size for f in layer.rglob("*") if f.is_file()) / 2**20
        code = (
            f"import sys; sys.path[:0] = {[str(layer / 'python'), str(ROOT / 'functions'), str(provided)]!r}\n" + PROBE
        )
        result = subprocess.run(
            [sys.executable, "-I", "-c", code, str(model_dir), *map(str, samples)],
            capture_output=True,
            text=True,
            env={"POWERTOOLS_TRACE_DISABLED": "true", "AWS_DEFAULT_REGION": "us-east-1"},
        )
        print(f"runtime layer for Python {version}: {size:.1f} MiB")
        print(result.stdout.strip() or result.stderr[-3000:])
        return result.returncode


if __name__ == "__main__":
    raise SystemExit(main())
