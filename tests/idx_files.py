"""Small Fashion-MNIST-format files for tests that need the format, not the real images.

`write_fashion_mnist(folder)` writes the four gzip idx files (train and t10k images and
labels) in the layout `engine.data.fashion_mnist` reads; pointing $PATCHWORK_FASHION_MNIST at
the folder makes every loader use them. Images are a clothing-like bright blob on black
(class-dependent shape and brightness), so a model can learn something from them quickly.
"""
from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np


def idx_bytes(array: np.ndarray) -> bytes:
    """The idx encoding of a uint8 array: magic (0, 0, 0x08, ndim), big-endian dims, data."""
    a = np.ascontiguousarray(array, dtype=np.uint8)
    return bytes([0, 0, 0x08, a.ndim]) + struct.pack(f">{a.ndim}I", *a.shape) + a.tobytes()


def synthetic_images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, 28, 28) uint8 images and (n,) labels 0..9: a rectangle whose size and brightness
    depend on the label, with noise."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 10
    rng.shuffle(labels)
    images = np.zeros((n, 28, 28), np.uint8)
    for i, c in enumerate(labels):
        h, w = 8 + int(c) % 5 * 3, 6 + int(c) // 2 * 3
        top, left = (28 - h) // 2, (28 - w) // 2
        images[i, top:top + h, left:left + w] = 120 + 12 * int(c)
    noise = rng.integers(0, 30, images.shape, dtype=np.uint8)
    return np.where(images > 0, images - noise // 2, noise // 6).astype(np.uint8), labels.astype(np.uint8)


def write_fashion_mnist(folder: str | Path, n_train: int = 600, n_test: int = 200, seed: int = 0) -> Path:
    """Write the four gzip idx files into `folder`; returns it."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, n, s in (("train", n_train, seed), ("t10k", n_test, seed + 1)):
        images, labels = synthetic_images(n, s)
        (folder / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(images), mtime=0))
        (folder / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(labels), mtime=0))
    return folder
