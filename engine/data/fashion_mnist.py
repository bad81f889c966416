"""Fashion-MNIST: 70,000 labelled 28×28 grayscale images of clothes in 10 classes.

Read straight from the idx files (gzip or plain) with numpy. Looked for, in order: an
explicit folder, $PATCHWORK_FASHION_MNIST, the Debian package `dataset-fashion-mnist`
(/usr/share/datasets/fashion-mnist), and Patchwork's data folder, where
engine.data.fashion_mnist_get fetches torchvision's files (only when asked).
"""
from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.errors import PatchworkError
from engine.paths import cache_dir, data_dir
from engine.resources import labels

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
LABELS = "fashion_mnist"  # resources/labels/fashion_mnist.txt
#: Pixel mean and standard deviation of the training split, on the 0..1 scale.
MEAN, STD = 0.2860, 0.3530
IMAGE_SIZE = 28

_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


class DatasetMissingError(PatchworkError):
    """A dataset that is not on this machine."""


@dataclass(frozen=True)
class LabelledImages:
    """images: (N, H, W) or (N, H, W, 3) uint8; labels: (N,) int64 indices into `classes`."""

    images: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...]
    source: str = ""

    def __len__(self) -> int:
        return len(self.labels)


def class_names() -> tuple[str, ...]:
    return labels(LABELS)


def download_dir() -> Path:
    """Where a download puts the files (FashionMNIST/raw below it, torchvision's layout): the
    data folder, since the dataset is the user's to keep, not a cache to clear."""
    return data_dir() / "datasets"


def _old_download_dir() -> Path:
    """Where downloads went before they moved to the data folder; still looked in."""
    return cache_dir() / "datasets"


def candidate_dirs(root: str | os.PathLike | None = None) -> list[Path]:
    dirs = []
    if root is not None:
        dirs += [Path(root), Path(root) / "FashionMNIST" / "raw"]
    env = os.environ.get("PATCHWORK_FASHION_MNIST")
    if env:
        dirs.append(Path(env))
    dirs += [DEBIAN_DIR, download_dir() / "FashionMNIST" / "raw", _old_download_dir() / "FashionMNIST" / "raw"]
    return dirs


def _find(name: str, dirs: list[Path]) -> Path | None:
    for d in dirs:
        for candidate in (d / f"{name}.gz", d / name):
            if candidate.is_file():
                return candidate
    return None


def find_files(root: str | os.PathLike | None = None) -> dict[str, tuple[Path, Path]] | None:
    """{split: (images file, labels file)} if all four files are found, else None."""
    dirs = candidate_dirs(root)
    found = {}
    for split, (img, lab) in _FILES.items():
        pi, pl = _find(img, dirs), _find(lab, dirs)
        if pi is None or pl is None:
            return None
        found[split] = (pi, pl)
    return found


def is_available(root: str | os.PathLike | None = None) -> bool:
    return find_files(root) is not None


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """An idx file (gzip or plain) as a numpy array: the header gives dtype and shape."""
    p = Path(path)
    opener = gzip.open if p.suffix == ".gz" else open
    try:
        with opener(p, "rb") as f:
            data = bytearray(f.read())  # writable, so torch.from_numpy needs no copy
    except (OSError, EOFError) as exc:
        raise PatchworkError(f"{p}: cannot read this idx file ({exc})") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise PatchworkError(f"{p}: not an idx file (bad magic number)")
    dtypes = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if data[2] not in dtypes:
        raise PatchworkError(f"{p}: unknown idx element type 0x{data[2]:02x}")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(dtypes[data[2]])
    offset = 4 + 4 * ndim
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(data) - offset != expected:
        raise PatchworkError(f"{p}: truncated idx file ({len(data) - offset} bytes of data, {expected} expected)")
    return np.frombuffer(data, dtype=dtype, offset=offset).reshape(shape)


def load_fashion_mnist(split: str = "train", root: str | os.PathLike | None = None) -> LabelledImages:
    """The `split` ("train": 60,000 or "test": 10,000) as uint8 (N, 28, 28) images and int64 labels.

    A missing dataset is a DatasetMissingError that says how to get it
    (fashion_mnist_get.ensure_downloaded fetches it first, when asked to).
    """
    if split not in _FILES:
        raise PatchworkError(f"unknown Fashion-MNIST split {split!r}; use 'train' or 'test'")
    files = find_files(root)
    if files is None:
        where = ", ".join(str(d) for d in candidate_dirs(root))
        raise DatasetMissingError(
            "Fashion-MNIST is not on this machine (looked in " + where + "). Install the Debian package "
            "`dataset-fashion-mnist` (sudo apt install dataset-fashion-mnist), or download it: the Train "
            "panel's \"Get Fashion-MNIST\" button, or `python main.py train ... --download`.")
    img_path, lab_path = files[split]
    images = read_idx(img_path)
    targets = read_idx(lab_path).astype(np.int64)
    if images.ndim != 3 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE) or len(images) != len(targets):
        raise PatchworkError(f"{img_path}: unexpected Fashion-MNIST shapes {images.shape} / {targets.shape}")
    if targets.min() < 0 or targets.max() > 9:
        raise PatchworkError(f"{lab_path}: labels outside 0..9")
    return LabelledImages(images, targets, class_names(), str(img_path.parent))
