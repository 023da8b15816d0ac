"""Where the CLIP weights come from: the Hugging Face Hub (or its local cache), a local checkpoint,
open_clip (``open_clip:<model>/<tag>``, ``model_export.openclip``), or random init.

The random configurations go through exactly the same export code as real weights: ``tiny``
(small dims, a few MB: tests and CI) and ``vit-b-32-random`` (the real ViT-B/32 geometry read
from its config.json: the same size and compute as the real model, for benchmarks), and their
open_clip counterparts (``tiny-datacomp``, ``tiny-siglip2``, ``datacomp-b32-256-random``,
``siglip2-b32-256-random``).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cliptag.imaging import Preprocessing
from cliptag.scoring import COSINE, ScoreTransform
from cliptag.text import TextSettings

from model_export import hub
from model_export.openclip import RANDOM as OPENCLIP_RANDOM
from model_export.references import TransformersReference

RANDOM_CONFIGS = ("tiny", "vit-b-32-random", *OPENCLIP_RANDOM)
DEFAULT_MODEL = "open_clip:ViT-B-32-256/datacomp_s34b_b86k"  # why: docs/models.md
# The real tokenizer and geometry; random configurations need them (no hub access required).
DEFAULT_GEOMETRY_DIR = (
    Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "tokenizer" / "clip-vit-base-patch32"
)

TINY_OVERRIDES: dict[str, dict[str, int]] = {
    "text_config": {
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_attention_heads": 2,
        "num_hidden_layers": 2,
    },
    "vision_config": {
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_attention_heads": 2,
        "num_hidden_layers": 2,
    },
}
TINY_PROJECTION_DIM = 64


@dataclass
class Checkpoint:
    model: Any  # transformers.CLIPModel (in eval mode), or the open_clip model its towers come from
    model_id: str
    revision: str
    source: str  # "hub", "local", "open_clip" or "random:<config>"
    preprocessing: Preprocessing
    tokenizer_json: Path
    reference: Any  # the family's own pipeline (model_export.references)
    text: TextSettings = field(default_factory=TextSettings)
    score: ScoreTransform = COSINE
    family: str = "clip"  # "clip" | "siglip": informative (the runtime reads the fields, not this)
    towers: tuple[Any, Any] | None = None  # (image, text) torch modules; None: CLIPModel's own

    @property
    def is_random(self) -> bool:
        return self.source.startswith("random:")


def _preprocessing_from(processor_config: dict[str, Any]) -> Preprocessing:
    size: Any = processor_config.get("size", 224)
    size = size.get("shortest_edge", size.get("height", 224)) if isinstance(size, dict) else size
    crop: Any = processor_config.get("crop_size", size)
    crop = crop.get("height", crop.get("width", size)) if isinstance(crop, dict) else crop
    return Preprocessing(
        size=int(size),
        crop=int(crop),
        mean=tuple(float(v) for v in processor_config["image_mean"]),  # type: ignore[arg-type]
        std=tuple(float(v) for v in processor_config["image_std"]),  # type: ignore[arg-type]
        resample=int(processor_config.get("resample", 3)),
    )


def load_checkpoint(source: str, revision: str | None, geometry_dir: Path, work_dir: Path, seed: int = 0) -> Checkpoint:
    """Raises CheckpointUnavailable (before importing torch: in a second or three) when a hub
    model can be neither downloaded nor found in the local Hugging Face cache."""
    from model_export import openclip

    if openclip.is_openclip_source(source):
        return _openclip(source, work_dir, seed)
    if source in RANDOM_CONFIGS:
        import torch
        from transformers import CLIPConfig, CLIPModel

        config_path = geometry_dir / "config.json"
        if not config_path.is_file():
            raise SystemExit(
                f"--config {source} needs the real CLIP geometry and tokenizer in {geometry_dir} "
                "(config.json, preprocessor_config.json, tokenizer.json); pass --geometry-dir"
            )
        raw = json.loads(config_path.read_text())
        if source == "tiny":
            for part, overrides in TINY_OVERRIDES.items():
                raw[part].update(overrides)
            raw["projection_dim"] = raw["text_config"]["projection_dim"] = TINY_PROJECTION_DIM
            raw["vision_config"]["projection_dim"] = TINY_PROJECTION_DIM
        torch.manual_seed(seed)
        model = CLIPModel(CLIPConfig(**raw)).eval()  # type: ignore[no-untyped-call]
        return Checkpoint(
            model=model,
            model_id=f"cliptag/{source}",
            revision=f"seed{seed}",
            source=f"random:{source}",
            preprocessing=_preprocessing_from(json.loads((geometry_dir / "preprocessor_config.json").read_text())),
            tokenizer_json=geometry_dir / "tokenizer.json",
            reference=TransformersReference(model, geometry_dir, geometry_dir),
        )

    # A real checkpoint: a local directory or a hub id (downloaded with progress bars, then cached).
    local = Path(source)
    if local.is_dir():
        return _pretrained(source, revision, work_dir, local_files_only=True)
    if source.startswith(("/", "./", "../", "~")) or source.count("/") > 1:
        raise SystemExit(f"--model {source}: no such checkpoint directory (nor a Hugging Face model id)")
    access = hub.check_access(source, revision)
    print(f"[export] {access.note}", flush=True)
    try:
        return _pretrained(source, revision, work_dir, local_files_only=access.local_files_only)
    except Exception as exc:
        unavailable = hub.download_error(source, revision, exc)
        if unavailable is None:
            raise
        raise unavailable from exc


def _openclip(source: str, work_dir: Path, seed: int) -> Checkpoint:
    """An OpenCLIP model; real weights are checked for like a hub id's (the same fast failure)."""
    from model_export import openclip
    from model_export.openclip_checkpoint import load_openclip

    repo = None if source in openclip.RANDOM else openclip.hub_repo(source)
    if repo is None:  # random weights, or a name open_clip alone can resolve (it imports torch)
        return load_openclip(source, work_dir, seed)
    access = hub.check_access(repo, None, hub.OPENCLIP_FILES)
    print(f"[export] {repo}: {access.note}", flush=True)
    if access.local_files_only:  # open_clip's downloads take no such argument: the library-wide switch
        os.environ["HF_HUB_OFFLINE"] = "1"
        import huggingface_hub.constants

        huggingface_hub.constants.HF_HUB_OFFLINE = True
    try:
        return load_openclip(source, work_dir, seed)
    except Exception as exc:
        unavailable = hub.download_error(repo, None, exc)
        if unavailable is None:
            raise
        raise unavailable from exc


def _pretrained(source: str, revision: str | None, work_dir: Path, local_files_only: bool) -> Checkpoint:
    from transformers import CLIPModel

    local = Path(source)
    model = CLIPModel.from_pretrained(  # type: ignore[no-untyped-call]
        source, revision=revision or "main", local_files_only=local_files_only
    ).eval()
    if local.is_dir():
        snapshot = local
        resolved_revision = revision or getattr(model.config, "_commit_hash", None) or "local"
    else:
        from huggingface_hub import snapshot_download

        snapshot = Path(
            snapshot_download(
                source,
                revision=revision,
                allow_patterns=[
                    "tokenizer.json",
                    "preprocessor_config.json",
                    "tokenizer_config.json",
                    "vocab.json",
                    "merges.txt",
                ],
                local_files_only=local_files_only,
            )
        )
        # The cache stores each revision as snapshots/<commit>: the exact weights, online or not.
        resolved_revision = revision or getattr(model.config, "_commit_hash", None) or snapshot.name
    tokenizer_json = snapshot / "tokenizer.json"
    if not tokenizer_json.is_file():  # older checkpoints ship only vocab/merges: let transformers build it
        from transformers import AutoTokenizer

        out = work_dir / "tokenizer"
        AutoTokenizer.from_pretrained(str(snapshot)).save_pretrained(str(out))
        tokenizer_json = out / "tokenizer.json"
    processor_dir = work_dir / "processor"
    processor_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(snapshot / "preprocessor_config.json", processor_dir / "preprocessor_config.json")
    return Checkpoint(
        model=model,
        model_id=source if not local.is_dir() else local.name,
        revision=str(resolved_revision),
        source="local" if local.is_dir() else "hub",
        preprocessing=_preprocessing_from(json.loads((snapshot / "preprocessor_config.json").read_text())),
        tokenizer_json=tokenizer_json,
        reference=TransformersReference(model, processor_dir, snapshot),
    )
