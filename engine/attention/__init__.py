"""Attention maps for every ViT in the catalogue, and CAMs for CNNs (the Attention panel).

Importing this package is cheap (no torch): the GUI reads the method names from here.
The torch side lives in capture.py, adapters.py, compute.py and jobs.py.
"""
from __future__ import annotations

from engine.errors import PatchworkError

#: method id -> (menu title, needs a class or text target, needs attention (a ViT))
METHODS: dict[str, tuple[str, bool, bool]] = {
    "raw": ("Raw attention", False, True),
    "rollout": ("Attention rollout", False, True),
    "gradrollout": ("Gradient rollout (class)", True, True),
    "gradcam": ("Grad-CAM (class)", True, False),
    "eigencam": ("EigenCAM", False, False),
}


class AttentionError(PatchworkError):
    """A map that cannot be drawn for this model or these settings."""
