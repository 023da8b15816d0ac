"""The domain never reaches an adapter: importing it loads neither boto3 nor botocore."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "functions" / "cliptag"
# The composition root joins the domain to the adapters, so it may import them (the tagger's and
# the caption function's parts of it too).
COMPOSITION_ROOT = {"cliptag.wiring", "cliptag.tagger_wiring", "cliptag.caption_wiring"}
PROBE = (
    "import importlib, json, sys; importlib.import_module(sys.argv[1]);"
    "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & {'boto3', 'botocore'})))"
)


def modules() -> list[str]:
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def aws_modules_loaded(module: str) -> list[str]:
    """What of boto3/botocore importing ``module`` loads, in a fresh interpreter."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, module],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PYTHONPATH": f"{ROOT / 'functions'}:{ROOT}", "PATH": ""},
        check=True,
    )
    loaded: list[str] = json.loads(done.stdout)
    return loaded


def test_no_domain_module_loads_the_aws_sdk():
    domain = [m for m in modules() if not m.startswith("cliptag.adapters") and m not in COMPOSITION_ROOT]
    assert {"cliptag.pipeline", "cliptag.records", "cliptag.queries", "cliptag.scoring"} <= set(domain)
    leaks = {m: loaded for m in domain if (loaded := aws_modules_loaded(m))}
    assert leaks == {}


def test_the_probe_sees_an_adapter_load_the_sdk():
    """So the test above can fail: the DynamoDB adapter does load boto3."""
    assert aws_modules_loaded("cliptag.adapters.dynamodb") == ["boto3", "botocore"]
