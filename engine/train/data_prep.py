"""Dataset preparation the training recipes share: reading Fashion-MNIST or decoding a folder
inside a job (with progress), images to (N, C, H, W), per-channel statistics, run-id slugs.

One place, so that every recipe reads the same dataset names and normalises the same way.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from engine.jobs import Progress

FASHION_MNIST_NAMES = ("fashion-mnist", "fashion_mnist", "fmnist")


def read_fashion_mnist(download: bool):
    """Generator (use `yield from`): a progress line, then returns the (train, test) splits."""
    from engine.data import fashion_mnist, fashion_mnist_get

    yield Progress(None, "reading Fashion-MNIST")
    if download:
        fashion_mnist_get.ensure_downloaded()
    train = fashion_mnist.load_fashion_mnist("train")
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


class LabelledImages:
    """For recipes that hold labelled images as classes, train_x/train_y, test_x/test_y (and
    mean/std): Fashion-MNIST read into them, and the train_limit / test_limit cut."""

    def read_labelled_fashion_mnist(self, channel_axis: bool = False):
        """Generator (use `yield from`): Fashion-MNIST's (N, 28, 28) images, or (N, 1, 28, 28) with
        `channel_axis`, its labels, classes, mean and std; returns the train split."""
        from engine.data import fashion_mnist

        train, test = yield from read_fashion_mnist(self.download)
        shape = (slice(None), None) if channel_axis else ...
        self.classes = train.classes
        self.train_x, self.train_y = train.images[shape], train.labels
        self.test_x, self.test_y = test.images[shape], test.labels
        self.mean, self.std = (fashion_mnist.MEAN,), (fashion_mnist.STD,)
        return train

    def apply_limits(self) -> None:
        """Keep the first train_limit training and test_limit test samples (0: all)."""
        cfg = self.config
        if cfg.train_limit:
            self.train_x, self.train_y = self.train_x[:cfg.train_limit], self.train_y[:cfg.train_limit]
        if cfg.test_limit:
            self.test_x, self.test_y = self.test_x[:cfg.test_limit], self.test_y[:cfg.test_limit]


def held_out_split(labels: np.ndarray, num_classes: int, fraction: float, seed: int):
    """(train mask, test mask): a `fraction` of every class held out, fixed by the seed (at least
    one image of a class with two or more, never all of it). With nothing held out, both masks
    are all True: the training images are evaluated."""
    rng = np.random.default_rng([seed, 0xC1A55])
    test = np.zeros(len(labels), bool)
    for c in range(num_classes):
        idx = np.flatnonzero(labels == c)
        k = min(len(idx) - 1, max(1, int(round(fraction * len(idx))))) if len(idx) >= 2 else 0
        if fraction > 0:
            test[rng.permutation(idx)[:k]] = True
    if not test.any():
        return np.ones_like(test), np.ones_like(test)
    return ~test, test


def labels_reference(labels_name: str | None, classes, run_dir) -> str:
    """A run's catalogue "labels": a built-in list's name, or for a folder dataset its class
    names written to the run folder (engine.resources.labels joins an absolute path onto
    resources/labels/ as that path)."""
    if labels_name is not None:
        return labels_name
    labels_file = Path(run_dir) / "labels.txt"
    if not labels_file.exists():
        labels_file.write_text("".join(c + "\n" for c in classes), encoding="utf-8")
    return str(labels_file.with_suffix("").resolve())


def slug(text: str) -> str:
    """A run name as the lower-case, dash-separated part of a catalogue id."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "run"
