"""Run a model once on the capturing path and keep what every map needs, as numpy.

`capture` is one forward without gradients: scores, every block's attention, and the
tokens entering every block's attention (a CNN: its last feature map). `gradients` is one
forward + backward for one target (a class score, or a CLIP text similarity): the
gradient of that target with respect to the same tensors.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from engine.attention.adapters import Adapter, Spec
from engine.attention.capture import capturing


@dataclass
class Captured:
    spec: Spec
    scores: np.ndarray  # (K,) class scores, or (D,) an embedding
    attn: np.ndarray | None  # (L, H, N, N) for a ViT; None for a CNN
    acts: np.ndarray  # (L, h, w, D) patch tokens entering each block's attention; (1, h, w, C) for a CNN
    grads: dict = field(default_factory=dict)  # target -> (attn grads like attn | None, act grads like acts)


def _patch_grid(tokens: torch.Tensor, spec: Spec) -> np.ndarray:
    """(N, D) tokens of one image -> (h, w, D) patch tokens: prefix ([CLS], ...) dropped."""
    h, w = spec.grid
    patches = tokens[spec.prefix:]  # (h·w, D)
    return patches.reshape(h, w, -1).float().cpu().numpy()  # row-major, as PatchEmbed flattened them


def capture(adapter: Adapter, x: torch.Tensor) -> Captured:
    """x: (1, C, S, S) preprocessed input on the model's device."""
    spec = adapter.spec
    with torch.no_grad():
        if not spec.is_vit:
            feats = adapter.features(x)  # (1, C, h, w)
            scores = adapter.head(feats)
            acts = feats[0].permute(1, 2, 0).float().cpu().numpy()[None]  # (1, h, w, C)
            return Captured(spec, scores[0].float().cpu().numpy(), None, acts)
        with capturing(adapter.attention_modules()) as rec:
            scores = adapter.scores(x)
    attn = torch.stack([a[0] for a in rec.attn]).float().cpu().numpy()  # (L, H, N, N)
    acts = np.stack([_patch_grid(t[0], spec) for t in rec.inputs])  # (L, h, w, D)
    return Captured(spec, scores[0].float().cpu().numpy(), attn, acts)


def gradients(adapter: Adapter, x: torch.Tensor, target) -> tuple[np.ndarray | None, np.ndarray]:
    """Gradients of target(scores (1, K)) -> scalar, w.r.t. every recorded attention and activation."""
    spec = adapter.spec
    x = x.detach().clone().requires_grad_(True)  # a graph even when the weights are frozen
    with torch.enable_grad():
        if not spec.is_vit:
            feats = adapter.features(x)  # (1, C, h, w)
            (g,) = torch.autograd.grad(target(adapter.head(feats)), [feats])
            return None, g[0].permute(1, 2, 0).float().cpu().numpy()[None]  # (1, h, w, C)
        with capturing(adapter.attention_modules(), keep_graph=True) as rec:
            value = target(adapter.scores(x))
        grads = torch.autograd.grad(value, rec.attn + rec.inputs, allow_unused=True)
    n = len(rec.attn)
    attn_g = torch.stack([_zeros_if_none(g, a)[0] for g, a in zip(grads[:n], rec.attn)])  # (L, H, N, N)
    act_g = np.stack([_patch_grid(_zeros_if_none(g, t)[0], spec) for g, t in zip(grads[n:], rec.inputs)])
    return attn_g.float().cpu().numpy(), act_g  # (L, H, N, N), (L, h, w, D)


def _zeros_if_none(g, like):
    return torch.zeros_like(like) if g is None else g
