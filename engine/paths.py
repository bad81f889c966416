"""Where Patchwork keeps its files (platformdirs), overridable with PATCHWORK_HOME.

Model weights downloaded by libraries stay in those libraries' own caches
(HF_HOME, TORCH_HOME), so anything the user already has is reused.
"""
from __future__ import annotations

import os
from pathlib import Path


def _base(kind: str) -> Path:
    home = os.environ.get("PATCHWORK_HOME")
    if home:
        return Path(home) / kind
    import platformdirs

    fn = {"data": platformdirs.user_data_dir, "cache": platformdirs.user_cache_dir,
          "config": platformdirs.user_config_dir}[kind]
    return Path(fn("Patchwork", appauthor=False))


def data_dir() -> Path:
    """Indexes (SQLite), generated images, imported models."""
    return _base("data")


def runs_dir() -> Path:
    """Training runs: checkpoints, cards, metrics."""
    return _base("data") / "runs"


def cache_dir() -> Path:
    """Thumbnails and other things that can be rebuilt."""
    return _base("cache")


def config_dir() -> Path:
    """Settings (patchwork.ini)."""
    return _base("config")


def ensure(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def printable_path(path: str) -> str:
    """A path for a terminal: bytes that are not UTF-8 as \\xNN escapes (print never raises)."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def shown_path(path: str) -> str:
    """A path for a widget: bytes that are not UTF-8 as U+FFFD (Qt would drop them silently)."""
    return os.fsencode(path).decode("utf-8", "replace")
