"""Offline tooling: CLIP checkpoint -> the ONNX model directory the Lambda functions load.

Needs the ``export`` extra (torch, transformers, onnx); nothing here runs in the cloud.
"""
