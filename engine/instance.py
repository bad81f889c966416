"""One app instance per data folder, or a clear word when there are two.

The first instance holds an flock on <data>/instance.lock (dropped by the kernel when it exits,
even by kill -9) with its process id inside. A second instance on the same folder still works:
indexing is safe (a per-folder lock, engine/search/index.py) and each training run has its own
folder; but settings and the model list are shared, so it is told, with the other's pid.
"""
from __future__ import annotations

import os
from pathlib import Path

from engine.paths import data_dir


class InstanceClaim:
    def __init__(self, path: Path):
        self.path = path
        self._file = None

    def take(self) -> str | None:
        """Hold the data folder; None, or the message for a second instance."""
        try:
            import fcntl
        except ImportError:  # Windows: no flock; no warning
            return None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        f = open(self.path, "a+")
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            other = f.read().strip() or "unknown"
            f.close()
            return (f"Patchwork is already open on this data folder ({self.path.parent}, process {other}). "
                    "Both can run: indexing waits for the other instance and each training run has its own "
                    "folder, but settings and downloads are shared. Set PATCHWORK_HOME to give this one its own.")
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
        self._file = f
        return None

    def release(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def claim_data_folder() -> tuple[InstanceClaim, str | None]:
    claim = InstanceClaim(data_dir() / "instance.lock")
    return claim, claim.take()
