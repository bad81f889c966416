"""Where an entry's weights are on this machine, if anywhere; and its state.

Pure path checks (no network, no torch), so the GUI's Models manager can list states
quickly and opening the app offline sends nothing.
"""
from __future__ import annotations

import importlib
import importlib.util
import threading
from dataclasses import dataclass
from pathlib import Path

from engine import lazy
from engine.catalogue.entry import ModelEntry
from engine.downloads import caches
from engine.resources import RESOURCES

READY, NEEDS_DOWNLOAD, DOWNLOADING, FAILED, USER_FILE, MISSING_EXTRA = (
    "ready", "needs download", "downloading", "failed", "user file", "needs extra")

@dataclass(frozen=True)
class EntryState:
    id: str
    state: str
    detail: str = ""  # failure reason, download progress text, missing extra...
    fraction: float | None = None
    path: str | None = None

# Live download states, written by download jobs on the engine thread.
_live: dict[str, EntryState] = {}
_lock = threading.Lock()

def set_live_state(state: EntryState | None, model_id: str) -> None:
    with _lock:
        if state is None:
            _live.pop(model_id, None)
        else:
            _live[model_id] = state

def local_path(entry: ModelEntry) -> Path | None:
    """The local weights file (or snapshot folder) of `entry`, or None if not on disk."""
    src = entry.source
    if src.kind == "package":
        try:
            path = Path(lazy.attribute(src.location)())
        except ImportError:
            return None
        return path if path.exists() else None
    if src.kind == "resources":
        path = RESOURCES / src.location
        return path if path.exists() else None
    if src.kind == "url":
        path = caches.torch_checkpoints_dir() / (src.filename or src.location.rsplit("/", 1)[1])
        return path if path.is_file() else None
    if src.kind == "hf":
        return caches.hf_cached_file(src.location, src.filename or "", src.revision)
    if src.kind == "hf-snapshot":
        return caches.hf_cached_snapshot(src.location, src.revision)
    if src.kind in ("user", "run"):
        path = Path(src.location)
        return path if path.exists() else None
    raise ValueError(f"unknown source kind {src.kind!r}")

def extra_missing(entry: ModelEntry) -> bool:
    if not entry.requires:
        return False
    return importlib.util.find_spec(entry.requires) is None

def state_of(entry: ModelEntry) -> EntryState:
    with _lock:
        live = _live.get(entry.id)
    if live is not None and live.state == DOWNLOADING:
        return live
    if extra_missing(entry):
        return EntryState(entry.id, MISSING_EXTRA, f"install the optional extra: pip install -e \".[{entry.requires}]\"")
    path = local_path(entry)
    if path is not None:
        kind = USER_FILE if entry.source.kind == "user" else READY
        return EntryState(entry.id, kind, "", None, str(path))
    if live is not None:  # a failed download
        return live
    if entry.source.kind in ("url", "hf", "hf-snapshot"):
        return EntryState(entry.id, NEEDS_DOWNLOAD)
    return EntryState(entry.id, FAILED, f"weights file missing: {entry.source.location}")

