"""Smaller encoders: dynamic int8 and fp16, both produced from the fp32 export."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path


def quantize_int8(src: Path, dst: Path, embeddings: bool = False, per_channel: bool = False) -> Path:
    """Dynamic int8 on the matrix multiplications (where ViT spends its time); weights QInt8.

    ``embeddings`` also quantizes the embedding tables (the Gathers whose data is a weight: token
    and position embeddings; ORT leaves the Gathers on shapes alone). For the text encoder: its
    token embedding (49,408 x 512) is 40% of the ViT-B/32 text encoder. Measured on the full-size
    geometry (random weights, 1,903 prompts + 1,000 queries, one thread): MatMuls only 139.8 MB,
    min cosine 0.99881, mean 0.99933, p50 8.8 ms; with the embeddings 63.8 MB, min 0.99898, mean
    0.99931, p50 8.6 ms (fp32: 253.6 MB, 18.8 ms). ORT gathers int8 rows and dequantizes only
    those, so the halved file costs nothing. Per-channel weights were worse (min 0.99826).
    The image encoder keeps MatMuls only: its output (and so the cached embeddings' model key)
    stays what it was.

    ``per_channel``: a scale per output column of each weight. SigLIP2's image tower needs it:
    per tensor its embeddings fall to cosine 0.975 of fp32 (ViT-B-32-SigLIP2-256 geometry, random
    weights, 32 COCO photos), per channel 0.9994, at the same size and speed.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    ops = ["MatMul", "Gemm", *(["Gather"] if embeddings else [])]
    quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, op_types_to_quantize=ops, per_channel=per_channel)
    return dst


def convert_fp16(src: Path, dst: Path) -> Path:
    """fp16 weights and compute, fp32 inputs/outputs so callers do not change."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = convert_float_to_float16(onnx.load(str(src)), keep_io_types=True)
    onnx.save(model, str(dst))
    return dst


# The image encoder's candidates; the export keeps the smallest that holds parity (per tensor
# first: where both hold it is the smaller file).
VARIANTS: dict[str, Callable[[Path, Path], Path]] = {
    "int8": quantize_int8,
    "int8-per-channel": partial(quantize_int8, per_channel=True),
    "fp16": convert_fp16,
}
TEXT_VARIANTS = {"int8": partial(quantize_int8, embeddings=True)}
