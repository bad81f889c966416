"""The maths of the attention maps, in numpy, on captured arrays (no model, no torch).

Symbols: L layers (blocks), H heads, N tokens (P prefix tokens such as [CLS], then the
h·w patch tokens in row-major order), C channels of a feature map. An attention matrix
A has one row per query token and one column per key token; every row sums to 1.

* Attention rollout (Abnar & Zuidema 2020, "Quantifying Attention Flow in Transformers"):
  the residual connection is modelled as Â = 0.5·A + 0.5·I, rows renormalised, and the
  layers are multiplied in order: R = Â_L · … · Â_2 · Â_1. Row t of R says how much of
  each input token flows into token t at the top.
* Discard ratio (jacobgil/vit-explain): before mixing in I, the lowest `discard_ratio`
  share of a layer's fused attention entries are set to zero to suppress diffuse noise;
  entry [CLS→CLS] is always kept, as in vit-explain.
* Gradient rollout (Chefer, Gur & Wolf 2021, "Generic Attention-model Explainability",
  eq. 5–6): each layer's heads are fused by Ā = E_h[(∇A ⊙ A)⁺] for the chosen class, and
  accumulated as R ← R + Ā·R from R = I, which keeps only what pushes that class up.
* Grad-CAM (Selvaraju et al. 2017): channel weights are the spatial mean of the class
  score's gradient; the map is ReLU(Σ_c w_c·A_c) over a spatial grid of activations.
* EigenCAM (Muhammad & Yeasin 2020): the activations projected on their first principal
  component; no class, no gradient.
"""
from __future__ import annotations

import numpy as np

FUSIONS = ("mean", "max", "min")


def fuse_heads(attn: np.ndarray, fusion: str = "mean") -> np.ndarray:
    """(H, N, N) per-head attention -> (N, N). max/min keep rows that no longer sum to 1."""
    if fusion == "mean":
        return attn.mean(axis=0)
    if fusion == "max":
        return attn.max(axis=0)
    if fusion == "min":
        return attn.min(axis=0)
    raise ValueError(f"unknown head fusion {fusion!r}; choose one of {', '.join(FUSIONS)}")


def discard_lowest(a: np.ndarray, ratio: float) -> np.ndarray:
    """A copy of the (N, N) matrix with its lowest `ratio` share of entries set to 0 ([0, 0] kept)."""
    if not 0.0 <= ratio < 1.0:
        raise ValueError(f"discard ratio must be in [0, 1), got {ratio}")
    out = np.array(a, dtype=np.float64, copy=True)
    k = int(out.size * ratio)
    if k == 0:
        return out
    flat = out.reshape(-1)  # (N·N,), a view
    lowest = np.argpartition(flat, k - 1)[:k]
    lowest = lowest[lowest != 0]  # never drop [CLS -> CLS]
    flat[lowest] = 0.0
    return out


def add_residual(a: np.ndarray) -> np.ndarray:
    """Â = 0.5·A + 0.5·I with rows renormalised to sum to 1 (Abnar & Zuidema, eq. for Â)."""
    n = a.shape[-1]
    mixed = 0.5 * a + 0.5 * np.eye(n)
    return mixed / mixed.sum(axis=-1, keepdims=True)


def rollout(attns, discard_ratio: float = 0.0, fusion: str = "mean") -> np.ndarray:
    """(L, H, N, N) attention of every layer -> (N, N) rollout R = Â_L ··· Â_1, in float64."""
    attns = list(attns)
    n = attns[0].shape[-1]
    result = np.eye(n)
    for attn in attns:
        a = fuse_heads(np.asarray(attn, dtype=np.float64), fusion)
        if discard_ratio > 0:
            a = discard_lowest(a, discard_ratio)
        result = add_residual(a) @ result
    return result


def grad_rollout(attns, grads, discard_ratio: float = 0.0) -> np.ndarray:
    """Class-specific rollout (Chefer et al. 2021): (L, H, N, N) attention and its gradient
    -> (N, N) relevance R, with R ← R + Ā·R and Ā = mean over heads of (∇A ⊙ A) clamped at 0."""
    attns, grads = list(attns), list(grads)
    if len(attns) != len(grads):
        raise ValueError("one gradient per attention layer is needed")
    n = attns[0].shape[-1]
    result = np.eye(n)
    for attn, grad in zip(attns, grads):
        a = np.clip(np.asarray(grad, np.float64) * np.asarray(attn, np.float64), 0.0, None).mean(axis=0)  # (N, N)
        if discard_ratio > 0:
            a = discard_lowest(a, discard_ratio)
        result = result + a @ result
    return result


def token_row_map(matrix: np.ndarray, grid: tuple[int, int], prefix: int, query: int | None = None) -> np.ndarray:
    """One query token's row of an (N, N) matrix, patch columns only, as an (h, w) grid.

    query None: the [CLS] row when the model has one (prefix > 0); without prefix tokens,
    the mean over all query rows (how much attention each patch receives).
    """
    h, w = grid
    if query is None:
        row = matrix[0] if prefix > 0 else matrix.mean(axis=0)
    else:
        row = matrix[query]
    patches = row[prefix:]  # (h·w,): drop attention to [CLS] and the other prefix tokens
    if patches.shape[0] != h * w:
        raise ValueError(f"{patches.shape[0]} patch tokens do not fill a {h}×{w} grid")
    return patches.reshape(h, w)  # row-major, as the patch embedding flattened them


def grad_cam(acts: np.ndarray, grads: np.ndarray) -> np.ndarray:
    """(h, w, C) activations and the class score's gradient -> (h, w) ReLU(Σ_c w_c·A_c)."""
    weights = grads.reshape(-1, grads.shape[-1]).mean(axis=0)  # (C,): global-average-pooled gradient
    cam = acts.astype(np.float64) @ weights  # (h, w)
    return np.maximum(cam, 0.0)


def eigen_cam(acts: np.ndarray) -> np.ndarray:
    """(h, w, C) activations -> (h, w) projection on the first principal component, ReLU'd.

    An SVD's sign is arbitrary; it is chosen so the map agrees with where the activations
    are strongest (positive correlation with each position's activation norm), otherwise
    the map can come out inverted (background bright).
    """
    h, w, c = acts.shape
    flat = acts.reshape(h * w, c).astype(np.float64)  # (h·w, C)
    centred = flat - flat.mean(axis=0, keepdims=True)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    proj = centred @ vt[0]  # (h·w,)
    norms = np.linalg.norm(flat, axis=1)
    if np.dot(proj - proj.mean(), norms - norms.mean()) < 0:
        proj = -proj
    return np.maximum(proj, 0.0).reshape(h, w)


def normalise(m: np.ndarray) -> tuple[np.ndarray, float]:
    """(map / max, max) as float32; an all-zero map stays zero. 0 keeps meaning 0."""
    top = float(np.max(m)) if m.size else 0.0
    if top <= 0 or not np.isfinite(top):
        return np.zeros_like(m, dtype=np.float32), top
    return (np.clip(m, 0, None) / top).astype(np.float32), top
