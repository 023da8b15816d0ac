"""Nothing in functions/ needs what the Lambda runtime layer does not ship.

The layer (layers/runtime/requirements.txt and its Makefile) has onnxruntime and tokenizers (the
API embeds search queries) but not ``onnx``; the offline code that needs it (the bulk re-scorer)
lives in model_export, which the functions never import.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

OFFLINE_ONLY = {"onnx", "torch", "transformers", "huggingface_hub", "model_export"}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text("utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_functions_import_nothing_the_runtime_layer_lacks():
    offenders = {
        str(path.relative_to(ROOT)): sorted(m for m in imported_modules(path) if m.split(".")[0] in OFFLINE_ONLY)
        for path in sorted((ROOT / "functions").rglob("*.py"))
    }
    assert {path: mods for path, mods in offenders.items() if mods} == {}


def test_offline_tools_stay_out_of_the_functions():
    # The bulk re-scoring graph builder needs the ONNX helper package: export-time only. The text
    # encoder is runtime code (the API embeds search queries) and the export imports it from there.
    assert not (ROOT / "functions" / "cliptag" / "rescoring.py").exists()
    assert not (ROOT / "model_export" / "text_encoder.py").exists()
    from cliptag.text import CONTEXT_LENGTH, TextEncoder, configure_clip_tokenizer

    assert CONTEXT_LENGTH == 77 and callable(configure_clip_tokenizer) and TextEncoder.embed
