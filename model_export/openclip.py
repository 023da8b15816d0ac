"""OpenCLIP models for the export (open_clip 3.x): ``open_clip:<model>/<pretrained tag>`` (or
``open_clip:hf-hub:<repo>``) with their real weights, and random weights of their real geometry
(benchmarks) or of tiny ones (tests). Each model's differences (preprocessing, tokenizer,
scoring) come out as data for the manifest: ``family.py`` turns them into a ``Checkpoint``.

Two architectures: a CLIP one (OpenAI's layout: DataComp ViT-B-32-256, LAION, OpenAI's own
weights) is converted into transformers' CLIPModel, the export's tested route (a text encoder
whose padding the runtime may drop); anything else (SigLIP2: a timm vision tower with attention
pooling, a bidirectional text tower pooled at its last position) is exported from open_clip's
own modules with its fixed text length.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

PREFIX = "open_clip:"
# name -> (open_clip model, the pretrained tag whose preprocessing it takes, tiny geometry?)
RANDOM: dict[str, tuple[str, str, bool]] = {
    "datacomp-b32-256-random": ("ViT-B-32-256", "datacomp_s34b_b86k", False),
    "siglip2-b32-256-random": ("ViT-B-32-SigLIP2-256", "webli", False),
    "tiny-datacomp": ("ViT-B-32-256", "datacomp_s34b_b86k", True),
    "tiny-siglip2": ("ViT-B-32-SigLIP2-256", "webli", True),
}
TINY_WIDTH, TINY_LAYERS, TINY_HEADS = 64, 2, 2
TINY_SIGLIP_TIMM = "cliptag_tiny_siglip_256"


def import_open_clip() -> Any:
    """``open_clip``, with the torchvision it needs for its transforms kept out of the venv's
    site-packages (``make venv`` puts it in ``.venv/torchvision``, or CLIPTAG_TORCHVISION_DIR):
    there transformers would find it and import it everywhere. PyPI's only torchvision wheels
    here are CUDA builds, whose ``import`` fails against the CPU torch on two operator names it
    registers unguarded; declaring them first is enough for the transforms (a CPU torchvision
    from PyTorch's index needs none of this)."""
    try:
        import open_clip

        return open_clip
    except (ImportError, RuntimeError) as exc:
        if "torchvision" not in str(exc):
            raise
    extra = os.environ.get("CLIPTAG_TORCHVISION_DIR") or str(Path(sys.prefix) / "torchvision")
    if Path(extra).is_dir() and extra not in sys.path:
        sys.path.append(extra)
    for name in [m for m in sys.modules if m.startswith(("torchvision", "open_clip", "timm"))]:
        del sys.modules[name]
    try:
        import open_clip
    except RuntimeError as exc:
        if "torchvision::nms" not in str(exc):
            raise
        import torch

        for name in [m for m in sys.modules if m.startswith(("torchvision", "open_clip", "timm"))]:
            del sys.modules[name]
        library = torch.library.Library("torchvision", "DEF")  # type: ignore[no-untyped-call]
        library.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")  # type: ignore[no-untyped-call]
        library.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")  # type: ignore[no-untyped-call]
        import_open_clip.library = library  # type: ignore[attr-defined]  # kept alive
        import open_clip
    return open_clip


# The Hub repositories of the pretrained tags docs/models.md lists (open_clip's pretrained.py):
# known here so the export can check the Hub before importing torch and open_clip.
HUB_REPOS = {
    "ViT-B-32/openai": "timm/vit_base_patch32_clip_224.openai",
    "ViT-B-32-256/datacomp_s34b_b86k": "laion/CLIP-ViT-B-32-256x256-DataComp-s34B-b86K",
    "ViT-B-32-SigLIP2-256/webli": "timm/ViT-B-32-SigLIP2-256",
    "xlm-roberta-base-ViT-B-32/laion5b_s13b_b90k": "laion/CLIP-ViT-B-32-xlm-roberta-base-laion5B-s13B-b90k",
}


def hub_repo(source: str) -> str | None:
    """The Hub repository holding an OpenCLIP source's weights, where known without open_clip."""
    spec = source.removeprefix(PREFIX)
    if spec.startswith("hf-hub:"):
        return spec.removeprefix("hf-hub:").partition("@")[0]
    return HUB_REPOS.get(spec)


def is_openclip_source(source: str) -> bool:
    return source.startswith(PREFIX) or source in RANDOM


def create(source: str, seed: int = 0, work_dir: Path | None = None) -> tuple[Any, str, str, dict[str, Any]]:
    """(the model in eval mode, its model id, its revision, its open_clip config)."""
    import torch

    oc = import_open_clip()
    torch.backends.mha.set_fastpath_enabled(False)  # the fast path traces to an op ONNX lacks
    if source in RANDOM:
        name, tag, tiny = RANDOM[source]
        cfg = json.loads(json.dumps(oc.get_model_config(name)))  # a deep copy
        pcfg = oc.get_pretrained_cfg(name, tag)
        force = {k: pcfg[k] for k in ("mean", "std", "interpolation", "resize_mode") if k in pcfg}
        if tiny:
            _shrink(cfg)
        elif "hf_tokenizer_name" in cfg["text_cfg"]:
            cfg["text_cfg"].pop("hf_tokenizer_name")  # the real vocabulary size, a stand-in tokenizer
        torch.manual_seed(seed)
        model = oc.create_model(name, pretrained=None, force_preprocess_cfg=force, **_kwargs(cfg))
        return model.eval(), f"cliptag/{source}", f"seed{seed}", cfg
    spec = source.removeprefix(PREFIX)
    if spec.startswith("hf-hub:"):
        model = oc.create_model(spec, require_pretrained=True)
        name, revision = spec, "main"
    else:
        name, _, tag = spec.partition("/")
        if not tag:
            raise SystemExit(f"--model {source}: name a pretrained tag, e.g. open_clip:ViT-B-32-256/datacomp_s34b_b86k")
        model = oc.create_model(name, pretrained=tag, require_pretrained=True)
        revision = tag
    cfg = oc.get_model_config(name.removeprefix("hf-hub:")) or {}
    return model.eval(), spec, revision, cfg


def _kwargs(cfg: dict[str, Any]) -> dict[str, Any]:
    return {"embed_dim": cfg["embed_dim"], "vision_cfg": cfg["vision_cfg"], "text_cfg": cfg["text_cfg"]}


def _shrink(cfg: dict[str, Any]) -> None:
    """A few-MB model of the same family and structure: every width, depth and count made small."""
    vision, text = cfg["vision_cfg"], cfg["text_cfg"]
    text.update(width=TINY_WIDTH, heads=TINY_HEADS, layers=TINY_LAYERS)
    if "timm_model_name" in vision:
        _register_tiny_siglip_vision()
        vision["timm_model_name"] = TINY_SIGLIP_TIMM
        cfg["embed_dim"] = TINY_WIDTH  # the MAP-pooled features are the embedding (timm_proj none)
        text.pop("hf_tokenizer_name", None)
        text["vocab_size"] = STAND_IN_VOCAB
    else:
        vision.update(width=TINY_WIDTH, layers=TINY_LAYERS)  # heads: width / 64
        cfg["embed_dim"] = TINY_WIDTH


STAND_IN_VOCAB = 4096  # the tiny SigLIP text tower's vocabulary (the stand-in tokenizer's ids)


def _register_tiny_siglip_vision() -> None:
    """A timm ViT shaped like SigLIP's (patch 32 at 256 px, no class token, attention pooling),
    a few layers of width 64."""
    import timm
    from timm.models import register_model
    from timm.models.vision_transformer import VisionTransformer

    if timm.is_model(TINY_SIGLIP_TIMM):
        return

    def cliptag_tiny_siglip_256(pretrained: bool = False, **kwargs: Any) -> Any:
        args = dict(img_size=256, patch_size=32, embed_dim=TINY_WIDTH, depth=TINY_LAYERS, num_heads=TINY_HEADS)
        kwargs = {k: v for k, v in kwargs.items() if k not in ("pretrained_cfg", "pretrained_cfg_overlay", "cache_dir")}
        return VisionTransformer(**{**args, "class_token": False, "global_pool": "map", **kwargs})

    cliptag_tiny_siglip_256.__name__ = TINY_SIGLIP_TIMM
    register_model(cliptag_tiny_siglip_256)


def is_clip_architecture(model: Any) -> bool:
    """OpenAI's layout (open_clip's ``CLIP`` with its own vision transformer): transformers' CLIPModel
    holds exactly these weights."""
    return type(model).__name__ == "CLIP" and type(model.visual).__name__ == "VisionTransformer"


def to_transformers(model: Any, cfg: dict[str, Any]) -> Any:
    """The same weights in transformers' CLIPModel (names mapped, attention's fused q/k/v split),
    so the export's CLIP route (and its trimmable text encoder) serves open_clip's CLIP models.
    The parity check against open_clip's own encode_image/encode_text proves the mapping."""
    import torch
    from transformers import CLIPConfig, CLIPModel

    vision, text = cfg["vision_cfg"], cfg["text_cfg"]
    act = "quick_gelu" if cfg.get("quick_gelu") else "gelu"
    image_size = vision["image_size"]
    v_width, t_width = vision["width"], text["width"]
    config = CLIPConfig(
        projection_dim=cfg["embed_dim"],
        text_config={
            "hidden_size": t_width,
            "intermediate_size": int(t_width * text.get("mlp_ratio", 4.0)),
            "num_attention_heads": text["heads"],
            "num_hidden_layers": text["layers"],
            "max_position_embeddings": text["context_length"],
            "vocab_size": text["vocab_size"],
            "hidden_act": act,
            "projection_dim": cfg["embed_dim"],
            "bos_token_id": 49406,
            "eos_token_id": 49407,
            "pad_token_id": 49407,
            "layer_norm_eps": 1e-5,
        },
        vision_config={
            "hidden_size": v_width,
            "intermediate_size": int(v_width * vision.get("mlp_ratio", 4.0)),
            "num_attention_heads": v_width // vision.get("head_width", 64),
            "num_hidden_layers": vision["layers"],
            "image_size": image_size,
            "patch_size": vision["patch_size"],
            "hidden_act": act,
            "projection_dim": cfg["embed_dim"],
            "layer_norm_eps": 1e-5,
        },
    )
    hf = CLIPModel(config).eval()  # type: ignore[no-untyped-call]
    sd = model.state_dict()
    mapped: dict[str, Any] = {
        "logit_scale": sd["logit_scale"],
        "text_model.embeddings.token_embedding.weight": sd["token_embedding.weight"],
        "text_model.embeddings.position_embedding.weight": sd["positional_embedding"],
        "text_model.final_layer_norm.weight": sd["ln_final.weight"],
        "text_model.final_layer_norm.bias": sd["ln_final.bias"],
        "text_projection.weight": sd["text_projection"].T,
        "vision_model.embeddings.class_embedding": sd["visual.class_embedding"],
        "vision_model.embeddings.patch_embedding.weight": sd["visual.conv1.weight"],
        "vision_model.embeddings.position_embedding.weight": sd["visual.positional_embedding"],
        "vision_model.pre_layrnorm.weight": sd["visual.ln_pre.weight"],
        "vision_model.pre_layrnorm.bias": sd["visual.ln_pre.bias"],
        "vision_model.post_layernorm.weight": sd["visual.ln_post.weight"],
        "vision_model.post_layernorm.bias": sd["visual.ln_post.bias"],
        "visual_projection.weight": sd["visual.proj"].T,
    }
    for theirs, ours, layers in (
        ("transformer", "text_model", text["layers"]),
        ("visual.transformer", "vision_model", vision["layers"]),
    ):
        for i in range(layers):
            src, dst = f"{theirs}.resblocks.{i}", f"{ours}.encoder.layers.{i}"
            for part in ("weight", "bias"):
                q, k, v = torch.chunk(sd[f"{src}.attn.in_proj_{part}"], 3, dim=0)
                mapped |= {f"{dst}.self_attn.q_proj.{part}": q, f"{dst}.self_attn.k_proj.{part}": k}
                mapped |= {f"{dst}.self_attn.v_proj.{part}": v}
                mapped[f"{dst}.self_attn.out_proj.{part}"] = sd[f"{src}.attn.out_proj.{part}"]
                mapped[f"{dst}.layer_norm1.{part}"] = sd[f"{src}.ln_1.{part}"]
                mapped[f"{dst}.layer_norm2.{part}"] = sd[f"{src}.ln_2.{part}"]
                mapped[f"{dst}.mlp.fc1.{part}"] = sd[f"{src}.mlp.c_fc.{part}"]
                mapped[f"{dst}.mlp.fc2.{part}"] = sd[f"{src}.mlp.c_proj.{part}"]
    missing, unexpected = hf.load_state_dict(mapped, strict=False)
    missing = [m for m in missing if not m.endswith("position_ids")]  # a buffer transformers fills itself
    if missing or unexpected:
        raise RuntimeError(f"open_clip -> transformers: missing {missing[:5]}, unexpected {unexpected[:5]}")
    return hf
