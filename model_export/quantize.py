"""Smaller image encoders: dynamic int8 and fp16, both produced from the fp32 export."""

from __future__ import annotations

from pathlib import Path


def quantize_int8(src: Path, dst: Path) -> Path:
    """Dynamic int8 on the matrix multiplications (where ViT spends its time); weights QInt8."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul", "Gemm"])
    return dst


def convert_fp16(src: Path, dst: Path) -> Path:
    """fp16 weights and compute, fp32 inputs/outputs so callers do not change."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = convert_float_to_float16(onnx.load(str(src)), keep_io_types=True)
    onnx.save(model, str(dst))
    return dst


VARIANTS = {"int8": quantize_int8, "fp16": convert_fp16}
