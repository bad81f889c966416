"""Engine jobs: download a catalogue model's weights on request, or delete them.

While a download runs its state is published with `set_live_state`, so the Models
manager shows "downloading 12.3 / 330.0 MB · 4.5 MB/s"; a failure leaves a "failed"
state with the reason; success and cancel clear it (the files on disk then speak).
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Generator

from engine.catalogue.entry import Source
from engine.catalogue.locate import DOWNLOADING, FAILED, EntryState, set_live_state
from engine.downloads import caches
from engine.downloads.hf import download_hf_file, download_hf_snapshot
from engine.downloads.http import download_file, part_path, relay
from engine.errors import ModelError, PatchworkError
from engine.jobs import Progress

DOWNLOADABLE = ("url", "hf", "hf-snapshot")


def url_dest(source: Source) -> Path:
    """Where a "url" source lives: TORCH_HOME/hub/checkpoints/<filename> (as torch.hub keeps it)."""
    return caches.torch_checkpoints_dir() / (source.filename or source.location.rsplit("/", 1)[1])


def _fetch(source: Source, model_id: str) -> Generator[Progress, None, Path]:
    if source.kind == "url":
        dest = url_dest(source)
        if dest.is_file():
            return dest
        return (yield from download_file(source.location, dest, sha256=source.sha256, size_bytes=source.size_bytes))
    if source.kind == "hf":
        if not source.filename:
            raise ModelError(f"{model_id}: its Hugging Face source names no file")
        return (yield from download_hf_file(source.location, source.filename, source.revision, source.sha256))
    if source.kind == "hf-snapshot":
        patterns = [p for p in (source.filename or "*").split(";") if p.strip()]
        return (yield from download_hf_snapshot(source.location, patterns, source.revision))
    raise ModelError(f"{model_id} is not downloaded (its weights come from: {source.kind}); nothing to fetch")


def download_source(source: Source, model_id: str) -> Generator[Progress, None, Path]:
    """Fetch `source` into the libraries' caches, publishing `model_id`'s live state."""
    set_live_state(EntryState(model_id, DOWNLOADING, "starting…"), model_id)
    failed = False

    def publish(p: Progress) -> Progress:
        set_live_state(EntryState(model_id, DOWNLOADING, p.message, p.fraction), model_id)
        return p

    try:
        return (yield from relay(_fetch(source, model_id), publish))
    except Exception as exc:
        failed = True
        reason = str(exc) if isinstance(exc, PatchworkError) else f"{type(exc).__name__}: {exc}"
        set_live_state(EntryState(model_id, FAILED, reason), model_id)
        raise
    finally:
        if not failed:  # done, or cancelled (GeneratorExit): the files on disk speak
            set_live_state(None, model_id)


def download_model_job(ctx, model_id: str) -> Generator[Progress, None, str]:
    """Request "download_model": fetch a catalogue entry's weights; returns the local path."""
    from engine.catalogue import get

    entry = get(model_id)
    path = yield from download_source(entry.source, model_id)
    return str(path)


# --------------------------------------------------------------------------- delete
def _remove(path: Path, removed: list[Path]) -> None:
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    except FileNotFoundError:
        return
    except OSError as exc:
        raise ModelError(f"cannot delete {path} ({exc.strerror or exc}): is it open elsewhere, or read-only?") from exc
    removed.append(path)


def _referenced(repo_dir: Path, blob: Path) -> bool:
    """Whether any snapshot still points at `blob` (shared by several revisions or files)."""
    for root, _dirs, files in os.walk(repo_dir / "snapshots"):
        for name in files:
            p = Path(root) / name
            if p.is_symlink() and p.resolve() == blob:
                return True
    return False


def _prune_empty(folder: Path, stop: Path) -> None:
    while folder != stop and stop in folder.parents:
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent


def delete_source(source: Source) -> list[Path]:
    """Delete the downloaded files of `source`; returns what was removed."""
    removed: list[Path] = []
    if source.kind == "url":
        dest = url_dest(source)
        _remove(dest, removed)
        _remove(part_path(dest), removed)
    elif source.kind == "hf":
        repo_dir = caches.hf_repo_dir(source.location)
        pointer = caches.hf_cached_file(source.location, source.filename or "", source.revision)
        if pointer is not None:
            blob = pointer.resolve() if pointer.is_symlink() else None
            _remove(pointer, removed)
            if blob is not None and blob.parent == (repo_dir / "blobs").resolve() and not _referenced(repo_dir, blob):
                _remove(blob, removed)
            _prune_empty(pointer.parent, repo_dir / "snapshots")
    elif source.kind == "hf-snapshot":
        _remove(caches.hf_repo_dir(source.location), removed)
    else:
        raise ModelError(f"the weights of this model come from {source.kind!r}, not from a download; "
                         "there is nothing to delete here")
    return removed


def delete_model_job(ctx, model_id: str) -> list[str]:
    """Request "delete_model": delete a catalogue entry's downloaded weights and unload it."""
    from engine.catalogue import get

    entry = get(model_id)
    if entry.source.kind not in DOWNLOADABLE:
        raise ModelError(f"{model_id} is not a downloaded model (its weights come from {entry.source.kind}); "
                         "there is nothing to delete")
    keys = [key for key, _ in ctx.models.loaded() if key.startswith(model_id + "@")]
    for key in keys:
        ctx.models.unload(key)
    if keys:
        ctx.engine._free_accelerator()
    removed = delete_source(entry.source)
    set_live_state(None, model_id)  # forget a failed download's reason too
    return [str(p) for p in removed]
