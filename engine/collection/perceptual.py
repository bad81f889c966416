"""Perceptual hashes: 64-bit dHash (signs of horizontal gradients on a 9 x 8 thumbnail) and
64-bit pHash (signs of the 8 x 8 lowest DCT frequencies of a 32 x 32 thumbnail vs their median).

Both survive resizing, re-encoding and brightness changes; a mirrored copy is caught by also
hashing each photo's mirror image, and a cropped copy by also hashing five 90 % crops (four
corners and the centre): a photo cropped by up to ~10 % hashes like one of its original's crops.
Hashes are cached by content hash (bytes identical, hash identical), so a folder is decoded
once, however often its duplicates are looked for.
"""
from __future__ import annotations

import os
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from PIL import Image

from engine.errors import BadImageError
from engine.images import open_image
from engine.jobs import Progress
from engine.paths import cache_dir, ensure

BITS = 128  # dHash + pHash
_N = 32
#: The orthonormal DCT-II matrix: D @ A @ D.T is the 2-D DCT of a 32 x 32 block.
_DCT = np.sqrt(2.0 / _N) * np.cos(np.pi * (2 * np.arange(_N)[None, :] + 1) * np.arange(_N)[:, None] / (2 * _N))
_DCT[0] /= np.sqrt(2.0)
_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], np.uint8)


@dataclass(frozen=True)
class Hashed:
    bits: np.ndarray | None  # VIEWS x 2 x 16 uint8: 128 bits of the photo and its crops, as-is and mirrored
    width: int  # full size, EXIF orientation applied (for the keeper)
    height: int


def _dhash(gray: Image.Image) -> np.ndarray:
    px = np.asarray(gray.resize((9, 8), Image.Resampling.BOX), np.int16)
    return (px[:, 1:] > px[:, :-1]).ravel()


def _phash(gray: Image.Image) -> np.ndarray:
    px = np.asarray(gray.resize((_N, _N), Image.Resampling.BOX), np.float64)
    low = (_DCT @ px @ _DCT.T)[:8, :8].ravel()
    return low > np.median(low[1:])  # the DC term (overall brightness) is left out of the median


CROP = 0.9
VIEWS = 6  # the whole photo, its four 90 % corner crops, its 90 % centre crop


def _views(gray: Image.Image) -> list[Image.Image]:
    w, h = gray.size
    cw, ch = max(1, round(CROP * w)), max(1, round(CROP * h))
    corners = [(0, 0), (w - cw, 0), (0, h - ch), (w - cw, h - ch), ((w - cw) // 2, (h - ch) // 2)]
    return [gray] + [gray.crop((x, y, x + cw, y + ch)) for x, y in corners]


def hash_image(img: Image.Image) -> np.ndarray:
    """VIEWS x 2 x 16 uint8: packed dHash + pHash of each view of `img`, as-is and mirrored."""
    out = []
    for view in _views(img.convert("L")):
        out.append([np.packbits(np.concatenate([_dhash(g), _phash(g)]))
                    for g in (view, view.transpose(Image.Transpose.FLIP_LEFT_RIGHT))])
    return np.array(out, np.uint8)


def full_size(path: str) -> tuple[int, int]:
    """(width, height) from the header, as a viewer shows it (EXIF rotations swap them)."""
    with Image.open(path) as img:
        w, h = img.size
        try:
            turned = img.getexif().get(274) in (5, 6, 7, 8)
        except Exception:  # a damaged EXIF block: the header size stands
            turned = False
    return (h, w) if turned else (w, h)


def hash_file(path: str) -> Hashed:
    try:
        img = open_image(path, draft=(64, 64))
        w, h = full_size(path)
    except (BadImageError, OSError, ValueError):
        return Hashed(None, 0, 0)
    return Hashed(hash_image(img), w, h)


def similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Fraction of the 128 bits that agree: the best of each whole photo against every view of
    the other (crops, as-is and mirrored). Unrelated photos agree on about half their bits.

    a, b: (..., VIEWS, 2, 16) -> (...).
    """
    ab = _POPCOUNT[a[..., :1, :1, :] ^ b].sum(-1, dtype=np.int32).min((-1, -2))
    ba = _POPCOUNT[b[..., :1, :1, :] ^ a].sum(-1, dtype=np.int32).min((-1, -2))
    return 1.0 - np.minimum(ab, ba) / BITS


class HashCache:
    """content hash -> (bits, width, height) in cache/collection/perceptual.sqlite3."""

    def __init__(self):
        path = ensure(cache_dir() / "collection") / f"perceptual-v{VIEWS}.sqlite3"
        self.con = sqlite3.connect(str(path), timeout=30, isolation_level=None, check_same_thread=False)
        self.con.execute("PRAGMA journal_mode=WAL")
        self.con.execute("CREATE TABLE IF NOT EXISTS hashes(hash TEXT PRIMARY KEY, bits BLOB, "
                         "width INTEGER NOT NULL, height INTEGER NOT NULL)")

    def get(self, keys: list[str]) -> dict[str, Hashed]:
        out = {}
        for start in range(0, len(keys), 500):
            part = keys[start:start + 500]
            q = f"SELECT hash, bits, width, height FROM hashes WHERE hash IN ({','.join('?' * len(part))})"
            for key, bits, w, h in self.con.execute(q, part):
                out[key] = Hashed(None if bits is None else np.frombuffer(bits, np.uint8).reshape(-1, 2, 16), w, h)
        return out

    def put(self, items: list[tuple[str, Hashed]]) -> None:
        try:
            self.con.execute("BEGIN IMMEDIATE")
            self.con.executemany("INSERT OR REPLACE INTO hashes VALUES (?,?,?,?)",
                                 [(k, None if v.bits is None else v.bits.tobytes(), v.width, v.height)
                                  for k, v in items])
            self.con.execute("COMMIT")
        except sqlite3.Error:  # a cache that cannot be written costs time next run, nothing else
            if self.con.in_transaction:
                self.con.execute("ROLLBACK")

    def close(self) -> None:
        self.con.close()


def hash_photos(paths: list[str], keys: list[str], batch: int = 32):
    """{content hash: Hashed} for every photo; cached ones read, the rest decoded in a thread pool.
    A generator: Progress after each batch; the pool is shut down on Stop."""
    cache = HashCache()
    pool = ThreadPoolExecutor(max_workers=max(1, min(8, os.cpu_count() or 1)), thread_name_prefix="patchwork-hash")
    try:
        found = cache.get(sorted(set(keys)))
        todo = {}
        for path, key in zip(paths, keys):
            if key not in found:
                todo.setdefault(key, path)
        items = list(todo.items())
        for start in range(0, len(items), batch):
            part = items[start:start + batch]
            hashed = list(pool.map(hash_file, [p for _, p in part]))
            new = [(k, h) for (k, _), h in zip(part, hashed)]
            cache.put(new)
            found.update(new)
            done = min(len(items), start + batch)
            yield Progress(done / len(items), f"perceptual hashes: {done:,}/{len(items):,} photos", done, len(items))
        return found
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        cache.close()
