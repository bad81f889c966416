"""Light runtimes for the query path: ONNX Runtime and numpy, never torch."""
