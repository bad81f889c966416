"""Indexing a photo folder: incremental, crash-safe, decoding in a worker pool.

Unchanged files (same size and mtime) are skipped; a moved or renamed file reuses its
vector by content hash; deleted files are pruned; bad files are recorded with their
reason and never stop the job. JPEGs are decoded in draft mode at the model's input size.
"""
from __future__ import annotations

import os
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from hashlib import blake2b
from pathlib import Path

import numpy as np

from engine.errors import BadImageError, PatchworkError
from engine.images import SUFFIXES, open_image
from engine.jobs import Partial, Progress
from engine.preprocess import to_input
from engine.search import db, device_decode
from engine.search.embedders import DEFAULT_SEARCH_MODEL, Embedder
from engine.stopping import Interrupted, stop_inside


@dataclass(frozen=True)
class IndexResult:
    root: str
    model_id: str
    total: int  # image files found
    embedded: int  # decoded and run through the model this time
    reused: int  # new paths whose content was already indexed (moved, renamed, copied)
    unchanged: int
    removed: int  # rows of deleted files pruned
    bad: tuple[tuple[str, str], ...]  # (path, reason) of every file that could not be indexed
    seconds: float
    folders: tuple[str, ...] = ()  # the folders walked (the GUI watches them for changes)
    notices: tuple[str, ...] = ()  # e.g. a damaged index set aside and rebuilt (one line each)


#: Seconds of embedding between the job's yields: a slow CPU embeds a batch in smaller chunks, so
#: interactive requests wait at most about this long. Stop does not wait for it: the model call
#: itself is interruptible (stop_inside). 0.25 s cost CLIP ViT-B/32 a quarter of its throughput
#: (chunks of 4 on 2 cores: 9.5 vs 12.4 images/s); 1.0 s matches unchunked (11.9 vs 11.9).
CHUNK_S = 1.0
#: Photos to embed that pay for exporting a model's image tower to ONNX Runtime (once per weights
#: file, 5-30 s) before using it: ~0.1 s saved a photo on 2 cores. Below this a folder is embedded
#: by PyTorch, unless the export is already cached.
ONNX_MIN_PHOTOS = 100


def _chunks(items: list, size: int):
    for i in range(0, len(items), size):
        yield items[i:i + size]


@dataclass(frozen=True)
class _Item:
    path: str
    size: int
    mtime_ns: int
    hash: str | None = None
    array: np.ndarray | None = None
    reason: str | None = None
    raw: bytes | None = None  # JPEG bytes left for the device to decode (GPU indexing)


def scan(root: str, folders: list[str] | None = None) -> list[tuple[str, int, int]]:
    """(path, size, mtime_ns) of every image-suffixed file under root; hidden folders skipped.

    `folders`, when given, receives every folder walked.
    """
    out = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        if folders is not None:
            folders.append(folder)
        for name in sorted(files):
            if name.startswith(".") or Path(name).suffix.lower() not in SUFFIXES:
                continue
            path = os.path.join(folder, name)
            try:
                st = os.stat(path)
            except OSError:
                continue
            out.append((path, st.st_size, st.st_mtime_ns))
    return out


def _prepare(path: str, size: int, mtime_ns: int, pp, known_hashes: frozenset, raw_jpegs: bool = False) -> _Item:
    """Worker thread: read, hash, and (unless the content is known) decode + preprocess; with
    `raw_jpegs`, JPEGs the device decoder takes are left as bytes for it."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        return _Item(path, size, mtime_ns, reason=f"unreadable ({exc.strerror or exc})")
    digest = blake2b(data, digest_size=16).hexdigest()
    if digest in known_hashes:
        return _Item(path, size, mtime_ns, digest)
    if raw_jpegs and device_decode.device_jpeg(data):
        return _Item(path, size, mtime_ns, digest, raw=data)
    return _decoded(path, size, mtime_ns, digest, data, pp)


def _decoded(path: str, size: int, mtime_ns: int, digest: str, data: bytes, pp) -> _Item:
    try:
        img = open_image(path, draft=(pp.resize, pp.resize), data=data)
        return _Item(path, size, mtime_ns, digest, to_input(img, pp))
    except BadImageError as exc:
        return _Item(path, size, mtime_ns, digest, reason=exc.reason)


def index_job(ctx, folder: str, model_id: str = DEFAULT_SEARCH_MODEL, db_path: str | None = None,
              batch_size: int = 16, workers: int | None = None, device_decode: bool | None = None):
    """`device_decode`: JPEGs decoded on the model's device in batches (default: on a CUDA device)."""
    t0 = time.perf_counter()
    root = str(Path(folder).expanduser().resolve())
    if not os.path.isdir(root):
        raise PatchworkError(f"{folder}: not a folder")
    with folder_lock(db_path, root) as lock:
        while not lock.acquire():  # another indexer (thread, process, app instance) has this folder
            yield Progress(None, "waiting: another indexer is working on this folder")
            time.sleep(0.2)
        return (yield from _index_locked(ctx, root, model_id, db_path, batch_size, workers, t0, device_decode))


def _index_locked(ctx, root: str, model_id: str, db_path: str | None, batch_size: int, workers: int | None,
                  t0: float, on_device: bool | None = None):
    yield Progress(None, "scanning folder")
    folders: list[str] = []
    files = scan(root, folders)
    yield Progress(None, "loading model")
    embedder = Embedder(ctx, model_id)
    notices: list[str] = []
    con = db.connect(db_path, notices)
    for notice in notices:
        yield Partial({"notice": notice})
    pool = ThreadPoolExecutor(max_workers=workers or max(1, min(8, os.cpu_count() or 1)),
                              thread_name_prefix="patchwork-decode")
    try:
        tbl = db.emb_table(con, model_id, embedder.image_dim())
        known = db.known_files(con, root)
        have = {h for (h,) in con.execute(f"SELECT hash FROM {tbl}")}
        todo, unchanged = [], 0
        for path, size, mtime in files:
            k = known.get(path)
            if k and k[0] == size and k[1] == mtime and (k[3] == "bad" or k[2] in have):
                unchanged += 1
            else:
                todo.append((path, size, mtime))
        total = len(todo)
        if todo:
            yield Progress(None, "preparing the image model")
            reason = embedder.use_onnx_images(ctx, export=total >= ONNX_MIN_PHOTOS)
            if reason:
                notices.append(reason)
                yield Partial({"notice": reason})
            if total >= ONNX_MIN_PHOTOS and str(ctx.device) == "cpu":
                embedder.export_onnx_text()  # for torch-free text queries (engine/search/quick.py)
        yield Progress(0.0 if total else 1.0, f"{total} to index · {unchanged} unchanged", 0, total)

        frozen = frozenset(have)
        pp = embedder.preprocess
        if on_device is None:
            on_device = str(ctx.device).startswith("cuda") and embedder.tower is None
        pending: deque = deque()
        it = iter(todo)
        window = batch_size * 3  # bounded read-ahead keeps memory flat on huge folders

        def refill():
            for path, size, mtime in it:
                pending.append(pool.submit(_prepare, path, size, mtime, pp, frozen, on_device))
                if len(pending) >= window:
                    break

        refill()
        cancelled = (lambda: ctx.cancelled) if hasattr(ctx, "cancelled") else None
        per_chunk = min(batch_size, 4)  # images embedded between Stop checkpoints, sized to CHUNK_S as it goes
        done = embedded = reused = 0
        t_start = time.perf_counter()
        while pending:
            batch = [pending.popleft().result() for _ in range(min(batch_size, len(pending)))]
            refill()
            if any(item.raw is not None for item in batch):
                batch = _decode_on_device(batch, embedder, pp)
            new = {}  # hash -> array, deduplicated within the batch
            for item in batch:
                if item.reason is None and item.array is not None and item.hash not in have:
                    new.setdefault(item.hash, item.array)
            vectors = []
            if new:
                parts = []
                for chunk in _chunks(list(new.values()), per_chunk):
                    t_chunk = time.perf_counter()
                    try:  # a model call that outlasts Stop is abandoned: this batch is simply not written
                        with stop_inside(cancelled):
                            parts.append(embedder.encode_images(_stack(chunk)))
                    except Interrupted:
                        yield None  # the engine closes the job here
                        raise
                    per_image = (time.perf_counter() - t_chunk) / len(chunk)
                    per_chunk = max(1, min(batch_size, int(CHUNK_S / max(per_image, 1e-6))))
                    yield None  # a Stop checkpoint: a batch cut short is not written, so nothing is half-done
                vectors = list(zip(new.keys(), np.concatenate(parts)))
            now = time.time()
            rows = []
            for item in batch:
                ok = item.reason is None
                rows.append((item.path, root, item.size, item.mtime_ns, item.hash, "ok" if ok else "bad",
                             item.reason, now))
                if ok and item.array is None:
                    reused += 1
            db.write_batch(con, tbl, rows, vectors)
            have.update(new)
            embedded += len(new)
            done += len(batch)
            rate = done / max(1e-6, time.perf_counter() - t_start)
            bad_now = [(i.path, i.reason) for i in batch if i.reason]
            if bad_now:
                yield Partial({"bad": bad_now})
            yield Progress(done / total, f"{done}/{total} files · {rate:.1f} files/s", done, total)
        removed = db.prune(con, root, {p for p, _, _ in files})
        return IndexResult(root, model_id, len(files), embedded, reused, unchanged, removed,
                           tuple(db.bad_files(con, root)), time.perf_counter() - t0, tuple(folders), tuple(notices))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        con.close()


def _decode_on_device(batch: list[_Item], embedder, pp) -> list[_Item]:
    """The batch's JPEG bytes decoded and preprocessed on the model's device in one call; what the
    device refused is decoded on the CPU (which names the reason if the file is bad)."""
    raws = [i for i, item in enumerate(batch) if item.raw is not None]
    dtype = embedder.input_dtype()
    inputs = device_decode.prepare_batch([batch[i].raw for i in raws], embedder.device, pp, dtype)
    out = list(batch)
    for i, x in zip(raws, inputs):
        item = batch[i]
        if x is not None:
            out[i] = replace(item, array=x, raw=None)
        else:
            out[i] = _decoded(item.path, item.size, item.mtime_ns, item.hash, item.raw, pp)
    return out


def _stack(chunk: list):
    """numpy rows stack in numpy; a chunk with device tensors stacks on the device."""
    if all(isinstance(x, np.ndarray) for x in chunk):
        return np.stack(chunk)
    import torch

    device = next(x.device for x in chunk if not isinstance(x, np.ndarray))
    dtype = next(x.dtype for x in chunk if not isinstance(x, np.ndarray))
    return torch.stack([torch.as_tensor(x).to(device=device, dtype=dtype) for x in chunk])


class _FolderLock:
    """An exclusive, non-blocking flock on one file per (index, folder). The second indexer of
    a folder waits for the first, then finds its files unchanged: nothing is embedded twice.
    The kernel drops the lock when its holder dies, even by kill -9."""

    def __init__(self, path: Path):
        self.path = path
        self._file = None

    def acquire(self) -> bool:
        try:
            import fcntl
        except ImportError:  # Windows: no flock; one indexer per folder is then up to the user
            return True
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "a+b")
        try:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing drops the flock
            self._file = None


@contextmanager
def folder_lock(db_path: str | None, root: str):
    index = Path(db_path) if db_path else db.default_db_path()
    key = blake2b(os.fsencode(root), digest_size=8).hexdigest()
    lock = _FolderLock(index.with_name(index.name + ".locks") / f"{key}.lock")
    try:
        yield lock
    finally:
        lock.release()


@dataclass(frozen=True)
class FolderStatus:
    root: str
    model_id: str
    indexed: int  # photos searchable with this model
    bad: tuple[tuple[str, str], ...]


def folder_status_job(ctx, folder: str, model_id: str = DEFAULT_SEARCH_MODEL, db_path: str | None = None):
    """What the index already holds for `folder` (no model load, no scan): for the panel on start."""
    root = str(Path(folder).expanduser().resolve())
    con = db.connect(db_path)
    try:
        tbl = db.existing_table(con, model_id)
        indexed = 0
        if tbl is not None:
            indexed = con.execute(f"SELECT count(*) FROM files f JOIN {tbl} e ON e.hash=f.hash "
                                  "WHERE f.root=? AND f.status='ok'", (db.stored(root),)).fetchone()[0]
        return FolderStatus(root, model_id, indexed, tuple(db.bad_files(con, root)))
    finally:
        con.close()
