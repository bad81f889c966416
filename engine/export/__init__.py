"""Runs trained here, out to ONNX (checked with onnxruntime), and the Train panel's "Test your model".

Torch-free at this level: the GUI reads EXPORTABLE to enable its Export… action.
"""

#: The families a run can be exported from, and what their graph gives.
EXPORTABLE = {"classifier": "logits", "ssl-backbone": "features", "mae": "latent", "clip": "embedding"}
