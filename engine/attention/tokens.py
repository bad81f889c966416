"""The token view: the notes' ViT picture spelled out with the loaded model's own numbers.

For ViT-B/16 it reads
    224×224×3 → 196 patches of 16×16×3=768 → +[CLS] = 197×768 → 12 heads × 64 → 197×768 per block
and when a patch's pixel count differs from the model width D, the linear patch embedding
is shown as its own step (e.g. 49→128 for the Fashion-MNIST ViT).
"""
from __future__ import annotations

from engine.attention.adapters import Spec

_POOLING = {
    "cls": "the classifier reads [CLS] only",
    "avg": "the head averages the patch tokens",
    "map": "an attention-pooling head reads the tokens",
    "embedding": "the [CLS] output is the image embedding",
    "none": "the tokens are returned as they are",
}


def token_view(spec: Spec) -> str:
    """One line of shapes, then one line of how many blocks and what the head reads."""
    H, W = spec.img_size  # noqa: N806 - the notes' symbols
    c = spec.in_chans
    if not spec.is_vit:
        h, w = spec.grid
        return (f"{H}×{W}×{c} → convolution stages → {h}×{w}×{spec.embed_dim} feature map"
                f" ({spec.feature_layer}) → global average pool → {spec.embed_dim} → classes\n"
                "No tokens and no attention: Grad-CAM and EigenCAM read this last feature map.")
    ph, pw = spec.patch
    h, w = spec.grid
    n_patches = h * w
    patch_dim = ph * pw * c
    d = spec.embed_dim
    steps = [f"{H}×{W}×{c}", f"{n_patches} patches of {ph}×{pw}×{c}={patch_dim}"]
    if patch_dim != d:
        steps.append(f"linear {patch_dim}→{d}")
    n = spec.num_tokens
    prefix = "".join(f"+[{p}]" for p in spec.prefix_names)
    steps.append(f"{prefix} = {n}×{d}" if prefix else f"{n}×{d} (no [CLS])")
    steps.append(f"{spec.num_heads} heads × {spec.head_dim}")
    steps.append(f"{n}×{d} per block")
    line2 = (f"{spec.depth} blocks; {h}×{w} patch grid; each attention map is {n}×{n} per head; "
             f"{_POOLING.get(spec.pooling, spec.pooling)}.")
    return " → ".join(steps) + "\n" + line2
