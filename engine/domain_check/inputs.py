"""Statistics of an image input against the Fashion-MNIST training set.

Fashion-MNIST is 28×28 grayscale: a light garment centred on an exactly black background.
Three numbers say how far a picture is from that, each measured where the model looks:

* chroma: the mean colour saturation of the picture, max(R, G, B) − min(R, G, B) on 0..1 (a
  64-px copy). Every training image is gray (0 exactly); the bound only tolerates the colour
  noise of a re-encoded gray picture.
* border_mean: the mean brightness of the outer one-pixel frame of the 28×28 gray view the
  model sees (after its resize and centre crop). Training images are black at their edges.
* dark_share: the share of that view's pixels below 0.1: the black background's size.

Bounds are quantiles of the training split (engine/domain_check/calibrate.py), kept in
resources/domains/fashion-mnist.json; a picture out of any bound is outside the domain.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CHROMA_SIDE = 64  # the colour statistic is read from a copy this many pixels a side at most
DARK_LEVEL = 0.1  # "black background": below this brightness on 0..1


@dataclass(frozen=True)
class InputStats:
    chroma: float
    border_mean: float
    dark_share: float


def chroma(img) -> float:
    """Mean colour saturation (0..1) of a PIL image; 0 for any gray picture."""
    if img.mode in ("L", "1", "I", "I;16", "F"):
        return 0.0
    small = img.convert("RGB")
    small.thumbnail((CHROMA_SIDE, CHROMA_SIDE))
    a = np.asarray(small, dtype=np.float32)
    return float((a.max(-1) - a.min(-1)).mean() / 255.0)


def gray_view(img, pp) -> np.ndarray:
    """(S, S) float32 on 0..1: the grayscale picture a model with preprocessing `pp` sees."""
    from engine.preprocess import to_input

    x = to_input(img.convert("L"), pp)[0]  # (S, S), normalised with the first channel's mean/std
    return np.clip(x * pp.std[0] + pp.mean[0], 0.0, 1.0)


def view_stats(view01: np.ndarray, colour: float = 0.0) -> InputStats:
    """Statistics of a (S, S) gray view on 0..1, with the source picture's chroma."""
    v = np.asarray(view01, dtype=np.float32)
    frame = np.concatenate([v[0], v[-1], v[1:-1, 0], v[1:-1, -1]])  # the outer one-pixel frame
    return InputStats(chroma=float(colour), border_mean=float(frame.mean()),
                      dark_share=float((v < DARK_LEVEL).mean()))


def image_stats(img, pp) -> InputStats:
    """Statistics of a decoded PIL image as a model with preprocessing `pp` sees it."""
    return view_stats(gray_view(img, pp), chroma(img))


def batch_stats(images_uint8: np.ndarray) -> dict[str, np.ndarray]:
    """Statistics of (N, 28, 28) uint8 gray images as they are (the training set): vectorised."""
    v = np.asarray(images_uint8, dtype=np.float32) / 255.0
    frame = np.concatenate([v[:, 0], v[:, -1], v[:, 1:-1, 0], v[:, 1:-1, -1]], axis=1)  # (N, 4S - 4)
    return {"chroma": np.zeros(len(v), np.float32), "border_mean": frame.mean(1),
            "dark_share": (v < DARK_LEVEL).reshape(len(v), -1).mean(1)}


def reasons(stats: InputStats, limits: dict[str, float]) -> list[str]:
    """Why `stats` is outside the calibrated `limits` (empty: inside every bound)."""
    out = []
    if "chroma_max" in limits and stats.chroma > limits["chroma_max"]:
        out.append("is in colour")
    if "border_mean_max" in limits and stats.border_mean > limits["border_mean_max"]:
        out.append("has no black background at its edges")
    elif "dark_share_min" in limits and stats.dark_share < limits["dark_share_min"]:
        out.append("has too little black background")
    return out


def energy(logits) -> float:
    """The energy score −logsumexp(logits) (Liu et al. 2020): high when no class stands out."""
    z = np.asarray(logits, dtype=np.float64).reshape(-1)
    m = z.max()
    return float(-(m + np.log(np.exp(z - m).sum())))
