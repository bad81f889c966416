"""What the collection views read from the search index: each ok photo's path, content hash,
size, mtime and vector (read-only; the index itself is engine/search/db.py's)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.errors import PatchworkError
from engine.search import db


@dataclass(frozen=True)
class Photos:
    paths: list[str]
    hashes: list[str]  # blake2b of the file's bytes: identical content, identical hash
    sizes: np.ndarray  # N int64 bytes
    mtimes: np.ndarray  # N float64 seconds
    vectors: np.ndarray  # N x D float32, unit length (normalised here)

    def __len__(self) -> int:
        return len(self.paths)


def folder_root(folder: str) -> str:
    """The folder as the index stores it (absolute, resolved), or a one-line error."""
    root = str(Path(folder).expanduser().resolve())
    if not os.path.isdir(root):
        raise PatchworkError(f"{folder}: not a folder")
    return root


def load_photos(con, model_id: str, root: str) -> Photos:
    tbl = db.existing_table(con, model_id)
    if tbl is None:
        return Photos([], [], np.zeros(0, np.int64), np.zeros(0), np.zeros((0, 0), np.float32))
    dim = con.execute("SELECT dim FROM models WHERE model_id=?", (model_id,)).fetchone()[0]
    rows = con.execute(f"SELECT f.path, f.hash, f.size, f.mtime_ns, e.vec FROM files f JOIN {tbl} e "
                       "ON e.hash=f.hash WHERE f.status='ok' AND f.root=? ORDER BY f.path",
                       (db.stored(root),)).fetchall()
    if not rows:
        return Photos([], [], np.zeros(0, np.int64), np.zeros(0), np.zeros((0, dim), np.float32))
    vectors = np.frombuffer(b"".join(r[4] for r in rows), dtype=np.float32).reshape(len(rows), dim)
    # unit length, whatever the embedder stores: dot products below are cosines for every model
    vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    return Photos([db.loaded(r[0]) for r in rows], [r[1] for r in rows],
                  np.array([r[2] for r in rows], np.int64), np.array([r[3] / 1e9 for r in rows]), vectors)


def require_photos(photos: Photos, root: str, model_name: str) -> None:
    if len(photos) == 0:
        raise PatchworkError(f"no photos are indexed under {root} for {model_name}; index the folder first")
