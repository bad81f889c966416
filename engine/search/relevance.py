"""Relevance: one score that means the same for every query and every embedder, and "no good match".

Raw similarities are not comparable: a CLIP cosine of 0.28 can be a perfect match for one query
and noise for another, and each model has its own scale. So the collection is also scored
against a fixed bank of reference descriptions (ImageNet's 1000 classes and the WordNet groups
above them, embedded once per model and cached as .npy): on a sample of its photos, how many of
a photo's 100 best-fitting references fit it better than the query fits this one? None:
relevance 1.0; it falls with the log of that count (1 -> 0.85, 5 -> 0.61, 14 -> 0.42, all 100 -> 0). It is a monotone
map of the similarity for each query, so the ranking stays the model's own, and a photo below
the cut-off is one that many everyday descriptions would fit better. When no photo clears the
cut-off the answer is "no good match".
"""
from __future__ import annotations

import hashlib
import math

import numpy as np

from engine import npy_cache
from engine.paths import cache_dir, ensure

DEFAULT_CUTOFF = 0.4  # chosen in benchmarks/search_quality.py: answered vs unanswerable queries
SAMPLE = 256  # photos of the collection the references are scored on
TOP = 100  # each sampled photo's best-fitting references that count (the rest fit it poorly anyway)


def reference_texts() -> tuple[str, ...]:
    """Everyday concepts to rank a query against: the classes' and hypernyms' first names."""
    from engine.search.labelspace import hierarchy, prompt
    from engine.resources import labels

    names = [d.split(",")[0].strip() for d in labels("imagenet1k")]
    names += [n[1][0] for n in hierarchy()["nodes"]]
    return tuple(prompt(n) for n in dict.fromkeys(names))


def reference_vectors(model_id: str, encode_texts) -> np.ndarray:
    """The reference bank through a model's text side (R x D), cached on disk per model."""
    texts = reference_texts()
    key = hashlib.sha256(("\n".join(texts) + model_id).encode()).hexdigest()[:16]
    path = ensure(cache_dir() / "relevance") / f"{key}.npy"
    ref = npy_cache.load(path, len(texts))
    if ref is not None:
        return ref
    ref = np.concatenate([encode_texts(list(texts[i:i + 64])) for i in range(0, len(texts), 64)]).astype(np.float32)
    npy_cache.save(path, ref)
    return ref


def reference_pool(matrix: np.ndarray, references: np.ndarray, top: int = TOP):
    """Sorted similarities of each sampled photo's `top` best-fitting references (S x top, flat),
    the number of photos sampled, and `top`."""
    take = np.unique(np.linspace(0, matrix.shape[0] - 1, min(matrix.shape[0], SAMPLE)).astype(np.int64))
    sims = matrix[take] @ references.T
    top = min(top, sims.shape[1])
    best = np.partition(sims, sims.shape[1] - top, axis=1)[:, -top:]
    return np.sort(best.ravel()), len(take), top


def relevance(scores: np.ndarray, pool: np.ndarray, n_photos: int, top: int) -> np.ndarray:
    """Query similarities (k,) -> relevance in [0, 1]: how many of a sampled photo's `top` best
    references fit it better than the query fits this photo (mean over photos), on a log scale."""
    better = (pool.size - np.searchsorted(pool, scores + 1e-6, side="right")) / max(n_photos, 1)
    return np.clip(1 - np.log1p(better) / math.log1p(top), 0.0, 1.0).astype(np.float32)
