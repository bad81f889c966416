"""Near-duplicate groups: the same photo at another size, re-encoded, slightly cropped or
edited, mirrored, or a burst shot.

Two photos are near-duplicates when their similarity reaches the threshold, where similarity
is a weighted mean (HASH_WEIGHT) of two views that fail differently:
- the embedding cosine (the search index's vectors): survives crops and edits, but two
  different photos of the same kind of thing are close too;
- the perceptual-hash agreement (perceptual.py): the layout of light and dark, which two
  different photos of the same thing do not share.
Pairs are joined into groups by union-find; each group suggests a keeper (most pixels, then
the largest file, i.e. the least compressed, then the oldest: the likely original).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.collection.perceptual import BITS
from engine.jobs import Progress

#: Chosen on benchmarks/duplicates_quality.py (planted duplicates of the offline sample photos):
#: the hash separates duplicates far better than ConSE's vectors, which call two different
#: photos of one ImageNet class alike; see the README for the sweep.
DEFAULT_THRESHOLD = 0.8
HASH_WEIGHT = 0.7


@dataclass(frozen=True)
class Photo:
    path: str
    width: int
    height: int
    bytes: int
    mtime: float  # seconds since the epoch
    similarity: float  # to the group's keeper (the keeper: 1.0)


@dataclass(frozen=True)
class DuplicateGroup:
    photos: tuple[Photo, ...]  # the suggested keeper first, then by similarity to it
    keeper: str  # its path

    @property
    def others(self) -> tuple[Photo, ...]:
        return self.photos[1:]


def combined(cos: np.ndarray, hash_sim: np.ndarray) -> np.ndarray:
    return HASH_WEIGHT * hash_sim + (1.0 - HASH_WEIGHT) * cos


def _signs(bits: np.ndarray) -> np.ndarray:
    """Packed bits (..., 16) -> (..., 128) of +1/-1: two hashes' dot product is 128 - 2 x Hamming."""
    return np.unpackbits(bits, axis=-1).astype(np.float32) * 2 - 1


def similar_pairs(vectors: np.ndarray, bits: np.ndarray, hashable: np.ndarray, threshold: float):
    """(i, j, similarity) of every pair i < j at or above `threshold`; a generator (progress).

    vectors: N x D normalised (one row per distinct content; byte-identical copies are joined
    by the caller); bits: N x VIEWS x 2 x 16 hash bits; hashable: N bool (False: the photo could
    not be decoded, so its hash agreement counts as 0).
    Both similarities are matrix products over blocks of rows against all later rows (hash bits
    as +1/-1 vectors), so memory stays at block x N and the work is BLAS's, however big the folder.
    """
    n, d = vectors.shape
    views = bits.shape[1] * bits.shape[2]
    whole = _signs(bits[:, 0, 0])  # N x 128: each photo as it is
    every = _signs(bits.reshape(n, views, 16)).transpose(1, 0, 2).copy()  # VIEWS*2 x N x 128: its crops, mirrored
    bad = ~np.asarray(hashable, bool)
    block = int(np.clip(4e6 / max(1, n), 8, 2048))
    found_i, found_j, found_s = [], [], []
    for start in range(0, n, block):
        stop = min(n, start + block)
        cos = vectors[start:stop] @ vectors[start:].T  # rows: start..stop, columns: start..n
        dot = np.full(cos.shape, -np.inf, np.float32)
        for v in range(views):  # the best of each whole photo against every view of the other
            np.maximum(dot, whole[start:stop] @ every[v, start:].T, out=dot)
            np.maximum(dot, every[v, start:stop] @ whole[start:].T, out=dot)
        agree = (BITS + dot) / (2 * BITS)
        agree[bad[start:stop]] = 0.0
        agree[:, bad[start:]] = 0.0
        sim = combined(cos, agree)
        sim[np.tril_indices(stop - start)] = -np.inf  # each pair once (i < j), never a photo with itself
        r, c = np.nonzero(sim >= threshold)
        found_i.append(r + start)
        found_j.append(c + start)
        found_s.append(sim[r, c])
        yield Progress(1 - (1 - stop / n) ** 2, f"comparing photos: {stop:,}/{n:,}", stop, n)
    if not found_i:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    return np.concatenate(found_i), np.concatenate(found_j), np.concatenate(found_s)


def union_find_groups(n: int, i: np.ndarray, j: np.ndarray) -> list[list[int]]:
    """Connected components of size >= 2 of the graph with edges (i, j), largest first."""
    parent = list(range(n))

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]  # path halving
            a = parent[a]
        return a

    for a, b in zip(i.tolist(), j.tolist()):
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    members: dict[int, list[int]] = {}
    for a in range(n):
        members.setdefault(find(a), []).append(a)
    groups = [m for m in members.values() if len(m) > 1]
    return sorted(groups, key=lambda m: (-len(m), m[0]))


def keeper_of(members: list[int], width: np.ndarray, height: np.ndarray, sizes: np.ndarray,
              mtimes: np.ndarray, paths: list[str]) -> int:
    """Most pixels, then the largest file (least compressed), then the oldest, then the shortest name."""
    return min(members, key=lambda m: (-int(width[m]) * int(height[m]), -int(sizes[m]), float(mtimes[m]),
                                       len(paths[m]), paths[m]))
