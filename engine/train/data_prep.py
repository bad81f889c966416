"""Dataset preparation the training recipes share: reading Fashion-MNIST or decoding a folder
inside a job (with progress), images to (N, C, H, W), per-channel statistics, run-id slugs.

One place, so that every recipe reads the same dataset names and normalises the same way.
"""
from __future__ import annotations

import re

import numpy as np

from engine.jobs import Progress

FASHION_MNIST_NAMES = ("fashion-mnist", "fashion_mnist", "fmnist")


def read_fashion_mnist(download: bool):
    """Generator (use `yield from`): a progress line, then returns the (train, test) splits."""
    from engine.data import fashion_mnist

    yield Progress(None, "reading Fashion-MNIST")
    train = fashion_mnist.load_fashion_mnist("train", download=download)
    test = fashion_mnist.load_fashion_mnist("test")
    return train, test


def decode_with_progress(scan, size: int, grayscale: bool, label: str = "decoding images"):
    """Generator (use `yield from`): engine.data.folders.decode_images as job progress; returns its data."""
    from engine.data.folders import decode_images

    gen = decode_images(scan, size, grayscale)
    while True:
        try:
            done, total = next(gen)
        except StopIteration as stop:
            return stop.value
        yield Progress(done / total, f"{label} {done}/{total}", done, total)


def to_nchw(images: np.ndarray) -> np.ndarray:
    """(N, H, W) gray or (N, H, W, 3) RGB uint8 -> (N, C, H, W)."""
    return images[:, None] if images.ndim == 3 else images.transpose(0, 3, 1, 2)


def channel_stats(pixels: np.ndarray, axis: tuple) -> tuple[tuple, tuple]:
    """Per-channel (mean, std) of [0, 1] pixels over `axis`, rounded for the card; std floored at 1e-3."""
    mean = tuple(round(float(m), 4) for m in pixels.mean(axis=axis))
    std = tuple(round(max(float(s), 1e-3), 4) for s in pixels.std(axis=axis))
    return mean, std


def slug(text: str) -> str:
    """A run name as the lower-case, dash-separated part of a catalogue id."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "run"
