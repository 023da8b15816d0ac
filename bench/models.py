"""The supported models side by side (docs/models.md): image encoder ms per image shipped (int8)
and fp32, one search query's text encoding, the files each function's layer carries, and whether
they fit Lambda's 250 MB beside the layers the function already has. Every model is timed in one
process, round robin, so the ratios to the first (today's OpenAI ViT-B/32) share the machine's
noise. Random weights of each model's real geometry cost what the real weights cost."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from bench.common import ROOT, python_env, run_python
from bench.context import Bench, Measure

# The random-weight directories of the real geometries (make model MODEL=<name>), first the baseline.
DEFAULT_MODELS = ("vit-b-32-random", "datacomp-b32-256-random", "siglip2-b32-256-random")
# What the functions carry besides their model files (docs/performance.md, "Deployment size").
LAMBDA_LIMIT_MIB = 250.0
TAGGER_OTHERS_MIB = 143.1 + 0.2  # runtime layer + code
API_OTHERS_MIB = 143.1 + 11.2 + 0.2  # runtime layer + text layer (tokenizers) + code
REGION = "us-east-1"

TIMING = """
import json, statistics, sys, time
import numpy as np, onnxruntime as ort
from cliptag.bundle import ModelBundle
from cliptag.encoder import session_options
from cliptag.text import TextEncoder

dirs, batch, rounds, queries = json.loads(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rng = np.random.default_rng(0)
sessions, inputs, texts = {}, {}, {}
for d in dirs:
    b = ModelBundle.open(d)
    size = b.preprocessing.input_size
    inputs[d] = rng.normal(size=(batch, 3, size, size)).astype(np.float32)
    fp32 = b.verified_path(next(v["file"] for v in b.manifest["image_encoder_variants"] if v["quantization"] == "fp32"))
    for label, path in (("shipped", b.image_encoder_path()), ("fp32", fp32)):
        sessions[(d, label)] = ort.InferenceSession(str(path), session_options(), providers=["CPUExecutionProvider"])
    texts[d] = TextEncoder(b.text_encoder_path(), b.tokenizer_path(), threads=1, settings=b.text_settings)
runs = {k: [] for k in sessions}
for k, s in sessions.items():
    s.run(None, {"pixel_values": inputs[k[0]]})
for _ in range(rounds):
    for k, s in sessions.items():
        start = time.perf_counter()
        s.run(None, {"pixel_values": inputs[k[0]]})
        runs[k].append((time.perf_counter() - start) * 1000 / batch)
query_ms = {d: [] for d in dirs}
for i in range(queries + 3):
    for d, t in texts.items():
        start = time.perf_counter()
        t.embed([f"a photo of {i} dogs running on a sandy beach at sunset"])
        if i >= 3:
            query_ms[d].append((time.perf_counter() - start) * 1000)
out = {d: {"shipped": statistics.median(runs[(d, "shipped")]), "fp32": statistics.median(runs[(d, "fp32")]),
           "query": statistics.median(query_ms[d])} for d in dirs}
print(json.dumps(out))
"""


COLD = """
import json, time
start = time.perf_counter()
from cliptag import loading
loading.text_encoder().embed(["a dog running on a sandy beach"])
print(json.dumps((time.perf_counter() - start) * 1000))
"""


LOCAL_KEYS = {"aws_access_key_id": "bench", "aws_secret_access_key": "bench"}


def api_cold_ms(model_dir: Path, runs: int) -> dict[str, float]:
    """The API's first search by text in a fresh interpreter (imports, SHA-256 checks, ORT session,
    tokenizer, one query), its text encoder read from its layer, or fetched from S3 as
    ApiModelS3Uri has it (the layer's manifest and vocabulary; moto on loopback, so the copy costs
    less than from S3 in Lambda), medians of ``runs``."""
    import shutil
    import statistics
    import tempfile

    import boto3
    from moto.server import ThreadedMotoServer

    from devstack.stack import free_port

    manifest = json.loads((model_dir / "manifest.json").read_text("utf-8"))
    fetched = [manifest["text_encoder"]["file"], manifest["tokenizer"]["file"]]
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's server logs every request
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        endpoint = f"http://127.0.0.1:{port}"
        s3 = boto3.client(
            "s3", endpoint_url=endpoint, region_name=REGION, aws_access_key_id="b", aws_secret_access_key="b"
        )
        s3.create_bucket(Bucket="models")
        for name in fetched:
            s3.upload_file(str(model_dir / name), "models", f"m/{name}")
        env = {**python_env(), "AWS_ACCESS_KEY_ID": "b", "AWS_SECRET_ACCESS_KEY": "b", "AWS_DEFAULT_REGION": REGION}
        out: dict[str, list[float]] = {"layer": [], "s3": []}
        with tempfile.TemporaryDirectory() as layer:
            for name in ("manifest.json", manifest["vocabulary"]["file"]):  # what pack.py leaves in the layer
                shutil.copy(model_dir / name, Path(layer) / name)
            for _ in range(runs):
                with tempfile.TemporaryDirectory() as tmp:
                    local = {**env, "MODEL_DIR": str(model_dir), "MODEL_S3_URI": "", "MODEL_FILES_S3_URI": ""}
                    out["layer"].append(float(run_python(COLD, [], local)))
                    remote = {**local, "MODEL_DIR": layer, "MODEL_FILES_S3_URI": "s3://models/m"}
                    remote.update(AWS_ENDPOINT_URL=endpoint, CLIPTAG_TMP_MODEL_DIR=tmp)
                    out["s3"].append(float(run_python(COLD, [], remote)))
        return {k: statistics.median(v) for k, v in out.items()}
    finally:
        server.stop()


def model_dirs(names: str) -> list[Path]:
    return [Path(n) if "/" in n else ROOT / "build" / f"model-{n}" for n in names.split(",") if n.strip()]


def function_files(model_dir: Path) -> dict[str, dict[str, Any]]:
    """What each function's model layer holds (layers/model/pack.py's choice), in MiB."""
    manifest = json.loads((model_dir / "manifest.json").read_text("utf-8"))

    def mib(*names: str) -> float:
        return sum((model_dir / n).stat().st_size for n in (*names, "manifest.json")) / 2**20

    vocabulary, tokenizer = manifest["vocabulary"]["file"], manifest["tokenizer"]["file"]
    tagger = mib(manifest["image_encoder"]["file"], manifest["tag_embeddings"]["file"], vocabulary)
    api = mib(manifest["text_encoder"]["file"], tokenizer, vocabulary)
    return {
        "tagger": {"mib": tagger, "fits": tagger + TAGGER_OTHERS_MIB <= LAMBDA_LIMIT_MIB},
        "api": {"mib": api, "fits": api + API_OTHERS_MIB <= LAMBDA_LIMIT_MIB},
        "manifest": manifest,
    }


def run(bench: Bench) -> None:
    from cliptag.config import vcpus

    dirs = [d for d in model_dirs(bench.args.models) if (d / "manifest.json").is_file()]
    missing = [d.name for d in model_dirs(bench.args.models) if d not in dirs]
    batch, rounds = bench.args.batch_size, bench.scale.ort_rounds
    bench.section(f"models: image ms per image (batch of {batch}, {vcpus()} vCPUs, median of {rounds} rounds)")
    if missing:
        bench.row("models", "not exported (make model MODEL=<name>)", ", ".join(missing))
    if not dirs:
        return
    queries = 30 if bench.args.quick else 200
    out = json.loads(
        run_python(TIMING, [json.dumps([str(d) for d in dirs]), str(batch), str(rounds), str(queries)], python_env())
    )
    base = out[str(dirs[0])]
    figures = {}
    for d in dirs:
        t, files = out[str(d)], function_files(d)
        m = files["manifest"]
        name = m["model"]["id"].removeprefix("cliptag/")
        shipped = m["image_encoder"]["quantization"]
        ratio = t["shipped"] / base["shipped"]
        bench.row("models", f"{name}: image {shipped}", f"{t['shipped']:8.2f} ms  ({ratio:.2f}x the first)")
        bench.row("models", f"{name}: image fp32", f"{t['fp32']:8.2f} ms")
        bench.row("models", f"{name}: one query, 1 thread", f"{t['query']:8.2f} ms")
        for function in ("tagger", "api"):
            f = files[function]
            verdict = "fits" if f["fits"] else "does not fit: ApiModelS3Uri"
            bench.row("models", f"{name}: {function} model layer", f"{f['mib']:8.1f} MiB  ({verdict})")
        cold = api_cold_ms(d, bench.scale.cold_runs)
        bench.row(
            "models", f"{name}: API cold, first query (layer / S3)", f"{cold['layer']:8.0f} ms / {cold['s3']:.0f} ms"
        )
        figures[name] = {
            "api_cold_layer_ms": cold["layer"],
            "api_cold_s3_ms": cold["s3"],
            "image_ms": t["shipped"],
            "image_quantization": shipped,
            "image_fp32_ms": t["fp32"],
            "query_ms": t["query"],
            "ratio_to_first": ratio,
            "embed_dim": m["model"]["embed_dim"],
            "tagger_layer_mib": files["tagger"]["mib"],
            "api_layer_mib": files["api"]["mib"],
        }
    bench.data["models"] = figures


MEASURE = Measure("models", "each supported model: image ms (int8, fp32), query ms, layer sizes, fits", run)
