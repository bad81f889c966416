"""The photo map's mathematics: vectors to 2-D (PCA, t-SNE, UMAP) and k-means clusters.

Every step is a generator that yields Progress at least once a second and returns its value,
so a job can `yield from` it and be stopped between steps. PCA and k-means are plain numpy
(exact, deterministic); t-SNE (scikit-learn) and UMAP (umap-learn, optional) are single
blocking calls, so they run in a child process that Stop can end at once.
"""
from __future__ import annotations

import importlib.util
import multiprocessing
import os
import tempfile
import time

import numpy as np

from engine.errors import PatchworkError
from engine.jobs import Progress

METHODS = ("pca", "tsne", "umap")
CHUNK = 16_384  # rows per step: one step of PCA or k-means takes well under a second
MAX_CLUSTERS = 16


def available_methods() -> tuple[str, ...]:
    """PCA always; t-SNE with scikit-learn, UMAP with umap-learn (the `map` extra)."""
    found = ["pca"]
    if importlib.util.find_spec("sklearn") is not None:
        found.append("tsne")
    if importlib.util.find_spec("umap") is not None:
        found.append("umap")
    return tuple(found)


def check_method(method: str) -> None:
    if method not in METHODS:
        raise PatchworkError(f"unknown map method {method!r}; use one of {', '.join(METHODS)}")
    if method not in available_methods():
        need = "scikit-learn" if method == "tsne" else 'umap-learn (pip install "patchwork[map]")'
        raise PatchworkError(f"the {method} map needs {need}, which is not installed; use --method pca")


# ---------------------------------------------------------------------------------------- PCA
def pca_basis(x: np.ndarray):
    """(mean D, components 2 x D): the top two principal axes of the rows of `x`.

    The D x D covariance is accumulated in chunks (progress between them), then its SVD gives
    the axes; each axis's sign is fixed so its largest loading is positive, which makes the
    layout deterministic and stable when the same photos are laid out again.
    """
    n, d = x.shape
    mean = x.mean(axis=0, dtype=np.float64)
    cov = np.zeros((d, d), np.float64)
    for start in range(0, n, CHUNK):
        block = x[start:start + CHUNK].astype(np.float64) - mean
        cov += block.T @ block
        yield Progress(0.5 * min(1.0, (start + CHUNK) / n), "principal axes", min(n, start + CHUNK), n)
    u, _s, _vt = np.linalg.svd(cov / max(1, n - 1))
    comps = u[:, :2].T.copy()  # 2 x D
    if comps.shape[0] < 2:  # one-dimensional vectors: the second axis is zero
        comps = np.vstack([comps, np.zeros((2 - comps.shape[0], d))])
    signs = np.sign(comps[np.arange(2), np.abs(comps).argmax(axis=1)])
    comps *= np.where(signs == 0, 1.0, signs)[:, None]
    return mean.astype(np.float32), comps.astype(np.float32)


def pca_project(x: np.ndarray, mean: np.ndarray, comps: np.ndarray) -> np.ndarray:
    """N x 2 positions of the rows of `x` on the axes (photos added later land on the same axes)."""
    return ((x - mean) @ comps.T).astype(np.float32)


# ---------------------------------------------------------------------------------------- k-means
def cluster_count(n: int) -> int:
    """sqrt(n/2) clusters, 1..MAX_CLUSTERS: enough regions to name, few enough to tell apart by colour."""
    return int(np.clip(round(np.sqrt(n / 2)), 1, MAX_CLUSTERS)) if n else 0


def _assign(x: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Nearest centre by squared distance (|c|^2 - 2 x.c; |x|^2 is the same for every centre)."""
    return np.argmin((centres * centres).sum(1)[None, :] - 2.0 * (x @ centres.T), axis=1)


def _kmeans_pp(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding: each next centre drawn in proportion to its squared distance."""
    centres = [x[rng.integers(len(x))]]
    d2 = ((x - centres[0]) ** 2).sum(1)
    for _ in range(1, k):
        total = d2.sum()
        i = rng.integers(len(x)) if total <= 0 else rng.choice(len(x), p=d2 / total)
        centres.append(x[i])
        d2 = np.minimum(d2, ((x - x[i]) ** 2).sum(1))
    return np.stack(centres).astype(np.float32)


def kmeans(x: np.ndarray, k: int, seed: int = 0, iters: int = 30, init: np.ndarray | None = None):
    """(labels N, centres k x D) by Lloyd's algorithm in embedding space; `init` warm-starts it
    (photos added to a map keep their clusters). Same input and seed, same answer."""
    n = len(x)
    k = max(1, min(k, n))
    rng = np.random.default_rng(seed)
    centres = init.astype(np.float32).copy() if init is not None and len(init) == k else _kmeans_pp(x, k, rng)
    labels = np.full(n, -1)
    last = time.monotonic()
    for it in range(iters):
        new = np.concatenate([_assign(x[s:s + CHUNK], centres) for s in range(0, n, CHUNK)]) if n else labels
        if np.array_equal(new, labels):
            break
        labels = new
        for c in range(k):
            members = x[labels == c]
            if len(members):
                centres[c] = members.mean(0)
            else:  # an empty cluster takes the point farthest from its centre
                far = ((x - centres[labels]) ** 2).sum(1).argmax()
                centres[c] = x[far]
        if time.monotonic() - last > 0.5:
            last = time.monotonic()
            yield Progress(min(0.99, (it + 1) / iters), f"clusters: iteration {it + 1}")
    return labels.astype(np.int32), centres


# ---------------------------------------------------------------------------------------- t-SNE / UMAP
def _nonlinear_child(method: str, src: str, dst: str, seed: int) -> None:
    """Child process: read vectors (+ an optional init) from .npy files, write the N x 2 layout."""
    x = np.load(src, allow_pickle=False)
    init_path = src + ".init.npy"
    init = np.load(init_path, allow_pickle=False) if os.path.exists(init_path) else None
    n = len(x)
    if method == "tsne":
        from sklearn.manifold import TSNE

        perplexity = float(min(30.0, max(2.0, (n - 1) / 3)))
        xy = TSNE(2, perplexity=perplexity, init=init if init is not None else "pca",
                  random_state=seed).fit_transform(x)
    else:
        import umap

        xy = umap.UMAP(n_neighbors=int(min(15, n - 1)), metric="cosine", random_state=seed,
                       init=init if init is not None else "spectral").fit_transform(x)
    np.save(dst, np.asarray(xy, np.float32))


def nonlinear_layout(method: str, x: np.ndarray, init: np.ndarray | None = None, seed: int = 0):
    """N x 2 by t-SNE or UMAP in a child process (spawned: safe beside the engine's threads).

    Vectors are first reduced to 50 dimensions by PCA (the usual step before t-SNE: faster,
    and noise in the small axes is dropped). Stop terminates the child at once.
    """
    n = len(x)
    if n < 5:  # too few points for a neighbourhood graph: PCA says as much
        mean, comps = yield from pca_basis(x)
        return pca_project(x, mean, comps)
    x50 = _reduce(x, 50)
    with tempfile.TemporaryDirectory(prefix="patchwork-map-") as tmp:
        src, dst = os.path.join(tmp, "x.npy"), os.path.join(tmp, "xy.npy")
        np.save(src, x50)
        if init is not None:
            np.save(src + ".init.npy", _tsne_scale(init) if method == "tsne" else init.astype(np.float32))
        proc = multiprocessing.get_context("spawn").Process(target=_nonlinear_child, args=(method, src, dst, seed),
                                                            daemon=True, name=f"patchwork-{method}")
        proc.start()
        t0 = time.monotonic()
        try:
            while proc.is_alive():
                proc.join(0.25)
                yield Progress(None, f"{'t-SNE' if method == 'tsne' else 'UMAP'} of {n:,} photos: "
                                     f"{time.monotonic() - t0:.0f} s")
        finally:
            if proc.is_alive():  # stopped: end the child now rather than let it finish unseen
                proc.terminate()
                proc.join(5)
        if proc.exitcode != 0 or not os.path.exists(dst):
            raise PatchworkError(f"the {method} layout failed (exit code {proc.exitcode}); try --method pca")
        return np.load(dst, allow_pickle=False)


def _reduce(x: np.ndarray, dims: int) -> np.ndarray:
    if x.shape[1] <= dims:
        return np.ascontiguousarray(x, np.float32)
    centred = x - x.mean(0)
    _u, _s, vt = np.linalg.svd(centred[: min(len(x), 20_000)], full_matrices=False)
    return (centred @ vt[:dims].T).astype(np.float32)


def _tsne_scale(init: np.ndarray) -> np.ndarray:
    """scikit-learn's own rule for an initial layout: first axis std 1e-4 (else t-SNE's early
    exaggeration cannot move the points)."""
    init = init.astype(np.float32) - init.mean(0)
    std = float(init[:, 0].std()) or 1.0
    return init / std * 1e-4


def normalised(xy: np.ndarray) -> np.ndarray:
    """Centred and scaled into [-1, 1] (one scale for both axes, so distances keep their meaning)."""
    if len(xy) == 0:
        return xy.astype(np.float32)
    centred = xy - (xy.max(0) + xy.min(0)) / 2
    extent = float(np.abs(centred).max()) or 1.0
    return (centred / extent).astype(np.float32)
