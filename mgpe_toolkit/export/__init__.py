"""Exporting the learned stages (ONNX) and running the exports (onnxruntime)."""
