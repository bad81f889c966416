"""Engine requests of the collection views: "collection_map", "collection_duplicates" and
"collection_like" (more like these: the mean of the selected photos' vectors)."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass

import numpy as np

from engine import catalogue
from engine.collection import layout_cache
from engine.collection.duplicates import (DEFAULT_THRESHOLD, DuplicateGroup, Photo, combined, keeper_of,
                                          similar_pairs, union_find_groups)
from engine.collection.map import (check_method, cluster_count, kmeans, nonlinear_layout, normalised, pca_basis,
                                   pca_project)
from engine.collection.perceptual import VIEWS, hash_photos
from engine.collection.perceptual import similarity as hash_similarity
from engine.collection.source import Photos, folder_root, load_photos, require_photos
from engine.errors import PatchworkError
from engine.jobs import Partial, Progress
from engine.search import db
from engine.search.embedders import DEFAULT_SEARCH_MODEL


def _photos(folder: str, model_id: str, db_path: str | None) -> tuple[str, str, Photos]:
    """(root, the index's own path, the folder's indexed photos)."""
    root = folder_root(folder)
    con = db.connect(db_path)
    try:
        photos = load_photos(con, model_id, root)
        where = db.db_path_of(con)
    finally:
        con.close()
    require_photos(photos, root, catalogue.get(model_id).name)
    return root, where, photos


# ------------------------------------------------------------------------------------------ map
@dataclass(frozen=True)
class MapResult:
    root: str
    model_id: str
    method: str
    paths: tuple[str, ...]
    xy: np.ndarray  # N x 2 float32 in [-1, 1]: each photo's place on the map
    cluster: np.ndarray  # N int32: its k-means cluster (in embedding space, not on the map)
    labels: tuple[str, ...]  # one short name per cluster ("" when the embedder has no text side)
    reused: int  # photos whose place came from the cached layout
    seconds: float


def map_job(ctx, folder: str, model_id: str = DEFAULT_SEARCH_MODEL, method: str = "pca",
            clusters: int | None = None, labels: bool = True, db_path: str | None = None, seed: int = 0):
    t0 = time.perf_counter()
    check_method(method)
    if clusters is not None and clusters < 1:
        raise PatchworkError(f"clusters must be at least 1 (got {clusters})")
    root, where, photos = _photos(folder, model_id, db_path)
    # one point per distinct content: byte-identical copies share a vector, so they share a place
    keys, first, inverse = np.unique(np.array(photos.hashes), return_index=True, return_inverse=True)
    x = np.ascontiguousarray(photos.vectors[first])
    yield Progress(None, f"laying out {len(photos):,} photos ({method})")
    path = layout_cache.cache_file(where, root, model_id, method)
    cached = layout_cache.load(path)
    xy, mean, comps, reused = yield from _layout(method, x, keys, cached, seed)
    k = min(clusters or cluster_count(len(x)), len(x))
    warm = cached.centres if cached is not None and cached.centres.shape == (k, x.shape[1]) else None
    cluster, centres = yield from kmeans(x, k, seed=seed, init=warm)
    layout_cache.save(path, layout_cache.CachedLayout(keys, xy, mean, comps, centres))
    names = (yield from _names(ctx, model_id, centres)) if labels else [""] * k
    return MapResult(root, model_id, method, tuple(photos.paths), normalised(xy)[inverse], cluster[inverse],
                     tuple(names), int(reused[inverse].sum()), time.perf_counter() - t0)


def _layout(method: str, x: np.ndarray, keys: np.ndarray, cached, seed: int):
    """(raw N x 2 layout, PCA mean, PCA axes, N bool: place reused) with the cache's help."""
    n = len(x)
    rows = {}
    if cached is not None:
        rows = {key: r for r, key in enumerate(cached.hashes.tolist())}
    known = np.array([key in rows for key in keys.tolist()], bool)
    old = np.array([rows.get(key, 0) for key in keys.tolist()], np.int64)
    empty = np.zeros((0,), np.float32)
    if method == "pca":
        if cached is not None and cached.comps.shape == (2, x.shape[1]) and known.mean() >= 0.5:
            return pca_project(x, cached.mean, cached.comps), cached.mean, cached.comps, known
        mean, comps = yield from pca_basis(x)
        return pca_project(x, mean, comps), mean, comps, np.zeros(n, bool)
    if known.all():
        return cached.xy[old], empty, empty.reshape(0, 0), known
    init = None
    if known.any():  # start from the stored map; a new photo starts beside its nearest known photo
        init = np.zeros((n, 2), np.float32)
        init[known] = cached.xy[old[known]]
        new = np.nonzero(~known)[0]
        nearest = np.argmax(x[new] @ x[known].T, axis=1)
        jitter = np.random.default_rng(seed).normal(0, 1e-3, (len(new), 2)) * cached.xy.std()
        init[new] = cached.xy[old[known]][nearest] + jitter
    xy = yield from nonlinear_layout(method, x, init, seed)
    return xy, empty, empty.reshape(0, 0), np.zeros(n, bool)


def _names(ctx, model_id: str, centres: np.ndarray):
    """Cluster names from the embedder's text side; blank names (and a notice) if it has none."""
    from engine.collection.labels import cluster_names, label_bank
    from engine.search.embedders import Embedder

    yield Progress(None, "naming clusters")
    try:
        embedder = Embedder(ctx, model_id)
        names, bank = yield from label_bank(embedder)
    except (PatchworkError, AttributeError, TypeError) as exc:
        yield Partial({"notice": f"clusters are not named: {exc}"})
        return [""] * len(centres)
    if bank.shape[1] != centres.shape[1]:
        return [""] * len(centres)
    return cluster_names(centres, names, bank)


# ------------------------------------------------------------------------------------------ duplicates
@dataclass(frozen=True)
class DuplicatesResult:
    root: str
    model_id: str
    threshold: float
    groups: tuple[DuplicateGroup, ...]  # largest first
    photos: int  # how many photos were compared
    unreadable: tuple[str, ...]  # photos that could not be decoded for hashing (identical copies still group)
    seconds: float


def duplicates_job(ctx, folder: str, model_id: str = DEFAULT_SEARCH_MODEL, threshold: float = DEFAULT_THRESHOLD,
                   db_path: str | None = None):
    t0 = time.perf_counter()
    if not 0.0 < threshold <= 1.0:
        raise PatchworkError(f"threshold must be in (0, 1] (got {threshold})")
    root, _where, photos = _photos(folder, model_id, db_path)
    hashed = yield from hash_photos(photos.paths, photos.hashes)
    keys, first, inverse = np.unique(np.array(photos.hashes), return_index=True, return_inverse=True)
    info = [hashed[k] for k in keys.tolist()]
    hashable = np.array([h.bits is not None for h in info], bool)
    bits = np.stack([h.bits if h.bits is not None else np.zeros((VIEWS, 2, 16), np.uint8) for h in info])
    x = np.ascontiguousarray(photos.vectors[first])
    i, j, _s = yield from similar_pairs(x, bits, hashable, threshold)
    # edges between photos: each distinct-content pair, plus every copy to its content's first photo
    pi, pj = first[i], first[j]
    copies = np.nonzero(np.arange(len(photos)) != first[inverse])[0]
    edges_i = np.concatenate([pi, first[inverse[copies]]])
    edges_j = np.concatenate([pj, copies])
    width = np.array([info[u].width for u in inverse])
    height = np.array([info[u].height for u in inverse])
    groups = []
    for members in union_find_groups(len(photos), edges_i, edges_j):
        keep = keeper_of(members, width, height, photos.sizes, photos.mtimes, photos.paths)
        u = inverse[members]
        cos = x[u] @ x[inverse[keep]]
        h = np.where(hashable[u] & hashable[inverse[keep]], hash_similarity(bits[u], bits[inverse[keep]]), 0.0)
        sim = np.where(u == inverse[keep], 1.0, combined(cos, h))
        order = sorted(range(len(members)), key=lambda m: (members[m] != keep, -sim[m], photos.paths[members[m]]))
        groups.append(DuplicateGroup(tuple(Photo(photos.paths[members[m]], int(width[members[m]]),
                                                 int(height[members[m]]), int(photos.sizes[members[m]]),
                                                 float(photos.mtimes[members[m]]), round(float(sim[m]), 4))
                                           for m in order), photos.paths[keep]))
    unreadable = tuple(p for p, u in zip(photos.paths, inverse) if not hashable[u])
    return DuplicatesResult(root, model_id, threshold, tuple(groups), len(photos), unreadable,
                            time.perf_counter() - t0)


# ------------------------------------------------------------------------------------------ more like these
@dataclass(frozen=True)
class LikeResult:
    query: str  # "more like these N photos"
    hits: tuple  # engine.search.query.Hit(path, score), best first; score = cosine clipped to [0, 1]
    searched: int
    seconds: float


def like_job(ctx, paths: list[str], folder: str, model_id: str = DEFAULT_SEARCH_MODEL, top_k: int = 1000,
             db_path: str | None = None):
    """Photos ranked by cosine to the mean of the given photos' stored vectors (no model needed)."""
    from engine.search.query import Hit, rank

    t0 = time.perf_counter()
    _root, _where, photos = _photos(folder, model_id, db_path)
    row = {p: r for r, p in enumerate(photos.paths)}
    chosen = [row[os.path.abspath(p)] for p in paths if os.path.abspath(p) in row]
    if not chosen:
        raise PatchworkError("none of the selected photos is in the index; index the folder again")
    vec = photos.vectors[chosen].mean(0)
    norm = float(np.linalg.norm(vec))
    if norm < 1e-8:
        raise PatchworkError("the selected photos' vectors cancel out; select fewer or other photos")
    idx, sims = rank(photos.vectors, (vec / norm).astype(np.float32), top_k)
    hits = tuple(Hit(photos.paths[i], float(np.clip(s, 0.0, 1.0))) for i, s in zip(idx, sims))
    return LikeResult(f"more like these {len(chosen)} photos", hits, len(photos), time.perf_counter() - t0)
