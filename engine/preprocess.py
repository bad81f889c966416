"""Model input from a decoded image, in numpy, so worker threads can prepare batches."""
from __future__ import annotations

import numpy as np
from PIL import Image

_RESAMPLE = {"bicubic": Image.Resampling.BICUBIC, "bilinear": Image.Resampling.BILINEAR,
             "nearest": Image.Resampling.NEAREST}


def to_input(img: Image.Image, pp) -> np.ndarray:
    """RGB PIL image -> (C, S, S) float32: resize the short side, centre-crop, normalise.

    C is 1 for grayscale models (pp.grayscale), else 3.
    """
    if pp.grayscale:
        img = img.convert("L")
    w, h = img.size
    scale = pp.resize / min(w, h)
    img = img.resize((max(pp.input_size, round(w * scale)), max(pp.input_size, round(h * scale))),
                     _RESAMPLE[pp.interpolation])
    w, h = img.size
    left, top = (w - pp.input_size) // 2, (h - pp.input_size) // 2
    img = img.crop((left, top, left + pp.input_size, top + pp.input_size))
    x = np.asarray(img, dtype=np.float32) / 255.0  # S x S (x C)
    if x.ndim == 2:
        x = x[:, :, None]  # S x S x 1
    channels = x.shape[2]
    mean = np.asarray(pp.mean[:channels], dtype=np.float32)
    std = np.asarray(pp.std[:channels], dtype=np.float32)
    x = (x - mean) / std
    return np.ascontiguousarray(x.transpose(2, 0, 1))  # C x S x S
