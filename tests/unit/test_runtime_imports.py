"""Nothing in functions/ needs what the Lambda runtime layer does not ship.

The layer (layers/runtime/requirements.txt) has onnxruntime but neither ``onnx`` nor
``tokenizers``; the offline code that needs them (the bulk re-scorer, the text encoder) lives in
model_export, which the functions never import.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

OFFLINE_ONLY = {"onnx", "tokenizers", "torch", "transformers", "huggingface_hub", "model_export"}


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


def test_offline_tools_moved_out_of_the_functions():
    assert not (ROOT / "functions" / "cliptag" / "rescoring.py").exists()
    from cliptag import encoder

    assert not hasattr(encoder, "TextEncoder") and not hasattr(encoder, "configure_clip_tokenizer")
    from model_export.text_encoder import CONTEXT_LENGTH, TextEncoder, configure_clip_tokenizer

    assert CONTEXT_LENGTH == 77 and callable(configure_clip_tokenizer) and TextEncoder.embed
