"""CLIP towers -> ONNX with a dynamic batch axis (the model contract's two encoders)."""

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


def export_encoders(model: Any, image_size: int, out_dir: Path) -> tuple[Path, Path]:
    import torch

    image_tower, text_tower = _towers(model)
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
        ids = torch.full((2, 77), 49407, dtype=torch.int64)
        ids[:, 0] = 49406
        torch.onnx.export(
            text_tower,
            (ids,),
            str(text_path),
            input_names=["input_ids"],
            output_names=["text_embeds"],
            # Dynamic sequence too: callers may drop trailing padding (causal model, pooled at
            # the first end-of-text token), which the parity check proves changes nothing.
            dynamic_axes={"input_ids": {0: "batch", 1: "sequence"}, "text_embeds": {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,
        )
    return image_path, text_path


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
