"""Distinct test photos for the indexing benchmarks: random crops, flips, colour gains and
noise of scikit-image's bundled sample photos, saved as large JPEGs (no two files alike, so
no indexer can skip work by content hash)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

SAMPLES = ("astronaut", "coffee", "chelsea", "rocket", "camera", "coins", "moon", "horse", "hubble_deep_field",
           "immunohistochemistry", "page", "text", "clock", "colorwheel")


def _samples() -> list[Image.Image]:
    from skimage import data

    out = []
    for name in SAMPLES:
        try:
            arr = np.asarray(getattr(data, name)())
        except Exception:  # a few samples need a download; skip them
            continue
        if arr.dtype == bool:
            arr = arr.astype(np.uint8) * 255
        if arr.dtype != np.uint8:
            arr = (255 * (arr - arr.min()) / max(1e-9, float(arr.max() - arr.min()))).astype(np.uint8)
        if arr.ndim == 2:
            arr = np.stack([arr] * 3, axis=-1)
        out.append(Image.fromarray(arr[..., :3]).convert("RGB"))
    return out


def make_photos(folder: Path, n: int = 200, size: tuple[int, int] = (1600, 1200), seed: int = 1234) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    samples = _samples()
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        img = samples[i % len(samples)]
        w, h = img.size
        cw, ch = int(w * rng.uniform(0.7, 1.0)), int(h * rng.uniform(0.7, 1.0))
        x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        im = img.crop((x0, y0, x0 + cw, y0 + ch)).resize(size, Image.Resampling.BICUBIC)
        if rng.random() < 0.5:
            im = im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        arr = np.asarray(im, dtype=np.float32) * rng.uniform(0.85, 1.15, size=3)
        arr += rng.normal(0, 4, size=arr.shape)
        path = folder / f"photo_{i:04d}.jpg"
        Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(path, quality=90)
        paths.append(path)
    return paths
