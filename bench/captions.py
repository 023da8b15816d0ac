"""Captions (Captions=On): ms per caption on this machine, split into the image graph, each decoder
step and the keywords, the caption model's cold start, and the cost per 1,000 captions next to the
tagging spine's. BLIP-base's real geometry with random weights (``blip-base-random``, exported
with its 128-photo parity check if missing); ``--quick``: the tiny model."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np

from bench.common import LAMBDA_GB_SECOND, LAMBDA_PER_REQUEST, ROOT, python_env, run_python, timed
from bench.context import Bench, Measure

CAPTION_MEMORY_MB = 3538  # 2 vCPUs, as the tagger
TYPICAL_TOKENS = 12  # a COCO caption's length in BERT tokens; random weights never stop early
# Captions as BLIP-base writes them (COCO style, ~10 words): the keywords' cost depends on their
# length, and random weights write 30 tokens of word salad.
TYPICAL_CAPTIONS = (
    "a dog running on the beach with a red kite",
    "a man riding a wave on top of a surfboard",
    "a plate of food with broccoli and rice on a table",
    "a group of people standing around a birthday cake",
    "a living room with a couch and a television",
    "a red double decker bus driving down a city street",
    "two giraffes standing next to each other in a field",
    "a woman holding an umbrella in the rain",
)
COLD = """
import json, sys, time
start = time.perf_counter()
from pathlib import Path
from cliptag.captioning import Captioner
Captioner(Path(sys.argv[1]))
print(json.dumps((time.perf_counter() - start) * 1000))
"""


def caption_dir(bench: Bench) -> Path:
    name = "tiny-blip" if bench.args.quick else "blip-base-random"
    out = ROOT / "build" / f"captions-{name}"
    if not (out / "caption.json").is_file():
        photos = "8" if bench.args.quick else "128"
        command = [sys.executable, "-m", "model_export", "captions", "--model", name, "--out", str(out)]
        subprocess.run([*command, "--photos", photos], check=True, cwd=ROOT)
    return out


def run(bench: Bench) -> None:
    from cliptag.captioning import Captioner
    from cliptag.keywords import keywords
    from cliptag.text import TextEncoder

    from bench.text import variant_files
    from model_export.caption_parity import preprocess_photos

    directory = caption_dir(bench)
    captioner = Captioner(directory)
    manifest = captioner.manifest
    photos = bench.photos[: 4 if bench.args.quick else 16]
    pixels = preprocess_photos(photos, manifest)
    images, steps, texts = [], [], []
    for one in pixels:
        texts += captioner.captions(one[None])
        images.append(captioner.timing.image_ms)
        steps.append(captioner.timing.step_ms / max(1, captioner.timing.steps))
    cold = [float(run_python(COLD, [str(directory)], python_env())) for _ in range(1 if bench.args.quick else 3)]
    with variant_files(bench.model_dir) as (_, int8, tokenizer, _shipped):
        text = TextEncoder(int8, tokenizer)
        rng = np.random.default_rng(0)
        image = np.asarray(rng.normal(size=text.embed(["a"]).shape[1]), dtype=np.float32)
        words = [timed(keywords, t, text.embed, image, None)[0] for t in TYPICAL_CAPTIONS for _ in range(3)]
        salad = [timed(keywords, t, text.embed, image, None)[0] for t in texts[:4]]
    image_ms, step_ms, keyword_ms = statistics.median(images), statistics.median(steps), statistics.median(words)
    caption_ms = image_ms + TYPICAL_TOKENS * step_ms + keyword_ms
    parity = manifest.get("parity", {})
    bench.section(f"captions: {manifest['model']}, {', '.join(manifest['files'].values())} (one photo at a time)")
    bench.row(
        "captions",
        "parity with transformers' generate() (export)",
        f"{parity.get('same_tokens')}/{parity.get('photos')} photos, same tokens",
    )
    bench.row(
        "captions",
        "image graph (vision tower + cross-attention K/V)",
        f"{image_ms:8.1f} ms",
        "caption_image_ms",
        image_ms,
    )
    bench.row("captions", "decoder, per token (KV cache)", f"{step_ms:8.2f} ms", "caption_token_ms", step_ms)
    bench.row(
        "captions",
        "keywords of a ~10-word caption (CLIP text, MMR, filter)",
        f"{keyword_ms:8.1f} ms",
        "caption_keywords_ms",
        keyword_ms,
    )
    bench.row("captions", "  of the random model's 30-token captions", f"{statistics.median(salad):8.1f} ms")
    bench.row("captions", f"per caption of {TYPICAL_TOKENS} tokens", f"{caption_ms:8.1f} ms", "caption_ms", caption_ms)
    cold_ms = statistics.median(cold)
    bench.row("captions", "cold start: import + load both graphs", f"{cold_ms:8.0f} ms", "caption_cold_ms", cold_ms)
    sizes = sum((directory / f).stat().st_size for f in manifest["files"].values()) / 2**20
    bench.row("captions", "model files", f"{sizes:8.1f} MiB", "caption_model_mib", sizes)
    gb = CAPTION_MEMORY_MB / 1024
    for arch, price in LAMBDA_GB_SECOND.items():
        cost = caption_ms / 1000 * gb * price * 1000 + LAMBDA_PER_REQUEST / 10 * 1000
        bench.data[f"caption_cost_{arch}"] = cost
        spine = bench.data.get(f"cost_total_{arch}_modelled")
        beside = f" (tagging: ${spine:.4f})" if spine else ""
        bench.row("captions", f"cost per 1,000 captions, {arch} at {CAPTION_MEMORY_MB} MB", f"${cost:.4f}{beside}")
    bench.data["caption_manifest"] = json.dumps({k: manifest.get(k) for k in ("model", "files", "quantization")})


MEASURE = Measure("captions", "caption model: image graph, per token, keywords, cold start, cost", run)
