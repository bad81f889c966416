"""The photo map's layout, cached per index, folder, model and method in the cache folder.

Positions are stored by content hash, so a renamed photo keeps its place, and a map of a
folder that gained photos reuses what it had: PCA projects the new photos onto the stored
axes; t-SNE/UMAP start from the stored layout (new photos beside their nearest neighbour).
Plain .npz arrays (no pickles), written atomically.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from hashlib import blake2b
from pathlib import Path

import numpy as np

from engine.paths import cache_dir, ensure


@dataclass(frozen=True)
class CachedLayout:
    hashes: np.ndarray  # M content hashes (str)
    xy: np.ndarray  # M x 2 raw layout coordinates
    mean: np.ndarray  # D: PCA's centre (empty for t-SNE/UMAP)
    comps: np.ndarray  # 2 x D: PCA's axes (empty for t-SNE/UMAP)
    centres: np.ndarray  # k x D: k-means centres


def cache_file(db_path: str, root: str, model_id: str, method: str) -> Path:
    key = blake2b(f"{db_path}\0{root}\0{model_id}\0{method}".encode("utf-8", "surrogateescape"),
                  digest_size=12).hexdigest()
    return ensure(cache_dir() / "maps") / f"{method}-{key}.npz"


def load(path: Path) -> CachedLayout | None:
    """The stored layout, or None when there is none or it cannot be read (it is rebuilt)."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            layout = CachedLayout(z["hashes"], z["xy"], z["mean"], z["comps"], z["centres"])
    except (OSError, ValueError, KeyError):
        return None
    if layout.xy.shape != (len(layout.hashes), 2):
        return None
    return layout


def save(path: Path, layout: CachedLayout) -> None:
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    with open(tmp, "wb") as f:
        np.savez(f, hashes=layout.hashes.astype(str), xy=layout.xy, mean=layout.mean, comps=layout.comps,
                 centres=layout.centres)
    os.replace(tmp, path)
