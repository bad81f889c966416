"""Runs trained here, out to ONNX (checked with onnxruntime), and the Train panel's "Test your model"."""
