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
    # Exactly torchvision's Resize(short side) + CenterCrop on a PIL image, which timm's and
    # open_clip's eval transforms and torchvision's weight transforms all use: the long side is
    # truncated, the crop offset rounded (tests/engine/test_preprocess_parity.py checks pixels).
    w, h = img.size
    if w <= h:
        size = (pp.resize, int(pp.resize * h / w))
    else:
        size = (int(pp.resize * w / h), pp.resize)
    if size != (w, h):
        img = img.resize(size, _RESAMPLE[pp.interpolation])
    w, h = img.size
    if w < pp.input_size or h < pp.input_size:  # resize < input_size: pad as CenterCrop does
        padded = Image.new(img.mode, (max(w, pp.input_size), max(h, pp.input_size)))
        padded.paste(img, ((padded.width - w) // 2, (padded.height - h) // 2))
        img, (w, h) = padded, padded.size
    left, top = int(round((w - pp.input_size) / 2.0)), int(round((h - pp.input_size) / 2.0))
    img = img.crop((left, top, left + pp.input_size, top + pp.input_size))
    x = np.asarray(img, dtype=np.float32) / 255.0  # S x S (x C)
    if x.ndim == 2:
        x = x[:, :, None]  # S x S x 1
    channels = x.shape[2]
    mean = np.asarray(pp.mean[:channels], dtype=np.float32)
    std = np.asarray(pp.std[:channels], dtype=np.float32)
    x = (x - mean) / std
    return np.ascontiguousarray(x.transpose(2, 0, 1))  # C x S x S
