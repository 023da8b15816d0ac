"""The two towers -> ONNX with a dynamic batch axis (the model contract's two encoders).

transformers' CLIPModel has its towers here; any other model (open_clip's SigLIP2) brings its
own (``Checkpoint.towers``). A text encoder pooled at the first end-of-text token under a causal
mask takes any sequence length (the runtime drops trailing padding); one pooled at its last
position takes exactly its context length.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

OPSET = 17


def _towers(model: Any) -> tuple[Any, Any]:
    import torch

    class ImageTower(torch.nn.Module):
        """pixel_values -> image_embeds (pooled CLS token through the visual projection)."""

        def __init__(self) -> None:
            super().__init__()
            self.vision = model.vision_model
            self.projection = model.visual_projection

        def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
            out: torch.Tensor = self.projection(self.vision(pixel_values=pixel_values).pooler_output)
            return out

    class TextTower(torch.nn.Module):
        """input_ids [N,77] -> text_embeds. CLIP's text model is causal and pools at the first
        end-of-text token, so end-of-text padding needs no attention mask."""

        def __init__(self) -> None:
            super().__init__()
            self.text = model.text_model
            self.projection = model.text_projection

        def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
            out: torch.Tensor = self.projection(self.text(input_ids=input_ids).pooler_output)
            return out

    return ImageTower().eval(), TextTower().eval()


def export_encoders(ckpt: Any, out_dir: Path) -> tuple[Path, Path]:
    """``ckpt``: a model_export.checkpoint.Checkpoint."""
    import torch

    torch.backends.mha.set_fastpath_enabled(False)  # nn.MultiheadAttention's fast path has no ONNX form
    image_tower, text_tower = ckpt.towers or _towers(ckpt.model)
    image_size, settings = ckpt.preprocessing.input_size, ckpt.text
    image_path, text_path = out_dir / "image_encoder.onnx", out_dir / "text_encoder.onnx"
    with torch.no_grad():
        torch.onnx.export(
            image_tower,
            (torch.randn(2, 3, image_size, image_size),),
            str(image_path),
            input_names=["pixel_values"],
            output_names=["image_embeds"],
            dynamic_axes={"pixel_values": {0: "batch"}, "image_embeds": {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,  # the TorchScript exporter: one self-contained file, quantizes cleanly
        )
        trimmable = settings.pooling == "eot_argmax"
        torch.onnx.export(
            text_tower,
            (example_ids(settings),),
            str(text_path),
            input_names=["input_ids"],
            output_names=["text_embeds"],
            # Dynamic sequence where callers may drop trailing padding (causal model, pooled at
            # the first end-of-text token), which the parity check proves changes nothing.
            dynamic_axes={
                "input_ids": {0: "batch", 1: "sequence"} if trimmable else {0: "batch"},
                "text_embeds": {0: "batch"},
            },
            opset_version=OPSET,
            dynamo=False,
        )
    return image_path, text_path


def example_ids(settings: Any) -> Any:
    """Two texts' ids of the context length: a start token (CLIP's), an end token, padding."""
    import torch

    eot = settings.eot_id if settings.eot_id is not None else 49407
    pad = settings.pad_id if settings.pad_id is not None else eot
    ids = torch.full((2, settings.context_length), pad, dtype=torch.int64)
    ids[:, 0] = 49406 if settings.pooling == "eot_argmax" else 5
    ids[:, 1] = eot
    return ids


def torch_image_embeds(model: Any, pixels: Any) -> Any:
    import torch

    image_tower, _ = _towers(model)
    with torch.no_grad():
        return image_tower(torch.from_numpy(pixels)).numpy()


def torch_text_embeds(model: Any, ids: Any) -> Any:
    import torch

    _, text_tower = _towers(model)
    with torch.no_grad():
        return text_tower(torch.from_numpy(ids)).numpy()
