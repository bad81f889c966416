"""Arrays cached on disk as .npy: read back only when whole, written atomically."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def load(path: Path, rows: int | None = None) -> np.ndarray | None:
    """The cached array, or None when missing, unreadable or not `rows` long (a bad file is removed)."""
    if not path.is_file():
        return None
    try:
        array = np.load(path, allow_pickle=False)
        if rows is None or array.shape[0] == rows:
            return array
    except (OSError, ValueError):
        pass
    path.unlink(missing_ok=True)
    return None


def save(path: Path, array: np.ndarray) -> None:
    """Write through a temporary name, so a reader never sees half a file."""
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, array)
    tmp.replace(path)
