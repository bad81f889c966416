"""Colour maps and the overlay of a map on its image, in numpy (no torch, no Qt).

The GUI draws the same look with QPainter (same lookup tables, same opacity blend); the
CLI and tests use `overlay()` to write PNGs. The perceptual maps are sampled at 17 points
from their published definitions (matplotlib's viridis/inferno/magma, Google's turbo) and
linearly interpolated to 256 entries: indistinguishable on screen.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
from PIL import Image

_ANCHORS = {
    "inferno": "0000040a0723200c493c0964560f6d70196e89226aa22b61bb3654d04544e35932f1711ef98c09fcaa0ff9c932f2e865fcffa4",
    "viridis": "440154481769472c7a423f853b518b33628d2c718e26818e21908c1f9f8827ad803dbc735cc86281d34caadc31d5e219fde725",
    "magma": "0000040907211c104635106a50127b691c818225819b2e7fb63679cf406fe55063f4695cfb8761fea571fec287fde0a1fcfdbf",
    "turbo": "30123b3f3fa1466ae24293fe28bbeb18dcc230f1996bfd63a2fc3ccbec34ecd03afdad34fb8021eb520ed13005ab16017a0403",
    "jet": "00007f0000bf0000ff003fff007fff00bfff00ffff3fffbf7fff7fbfff3fffff00ffbf00ff7f00ff3f00ff0000bf00007f0000",
    "gray": "000000ffffff",
}
COLORMAPS = tuple(_ANCHORS)


@lru_cache(maxsize=None)
def lut(name: str) -> np.ndarray:
    """(256, 3) uint8 lookup table of the colour map `name`."""
    try:
        hexes = _ANCHORS[name]
    except KeyError:
        raise ValueError(f"unknown colour map {name!r}; choose one of {', '.join(COLORMAPS)}") from None
    anchors = np.array([[int(hexes[i + j:i + j + 2], 16) for j in (0, 2, 4)] for i in range(0, len(hexes), 6)],
                       dtype=np.float64)  # (K, 3)
    xs = np.linspace(0.0, 1.0, len(anchors))
    t = np.linspace(0.0, 1.0, 256)
    table = np.stack([np.interp(t, xs, anchors[:, c]) for c in range(3)], axis=1)  # (256, 3)
    table = np.round(table).astype(np.uint8)
    table.setflags(write=False)
    return table


def to_uint8(m: np.ndarray) -> np.ndarray:
    """A [0, 1] map -> uint8 0..255 (what both the GUI and the PNG writer colour)."""
    return np.round(np.clip(m, 0.0, 1.0) * 255).astype(np.uint8)


def upsample(m: np.ndarray, size: tuple[int, int], smooth: bool = True) -> np.ndarray:
    """(h, w) map -> (H, W) float32 map, `size` = (W, H); bilinear or one block per patch."""
    img = Image.fromarray(np.asarray(m, dtype=np.float32), mode="F")
    img = img.resize(size, Image.Resampling.BILINEAR if smooth else Image.Resampling.NEAREST)
    return np.asarray(img, dtype=np.float32)


def colourise(m: np.ndarray, cmap: str = "inferno") -> np.ndarray:
    """(H, W) map in [0, 1] -> (H, W, 3) uint8 colours."""
    return lut(cmap)[to_uint8(m)]


def overlay(image: np.ndarray, m: np.ndarray, opacity: float = 0.6, cmap: str = "inferno",
            smooth: bool = True) -> np.ndarray:
    """The map over the image: (1 - opacity)·image + opacity·colour(map), (H, W, 3) uint8."""
    h, w = image.shape[:2]
    heat = colourise(upsample(m, (w, h), smooth), cmap).astype(np.float32)  # (H, W, 3)
    base = image.astype(np.float32) if image.ndim == 3 else np.repeat(image[..., None], 3, 2).astype(np.float32)
    out = (1.0 - opacity) * base + opacity * heat
    return np.clip(np.round(out), 0, 255).astype(np.uint8)
