"""Queries: text, an image, or weighted +/- combinations like `2:golden retriever + ./pool.jpg - fruit`.

Each term is embedded (text by the text tower, an existing image file by the image
tower), weighted, signed, summed and normalised; photos are ranked by cosine
similarity with a brute-force matrix product (exact; ~ms per 100k vectors).
"""
from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from engine.errors import PatchworkError
from engine.images import is_image_path, open_image
from engine.preprocess import to_input
from engine.search import db
from engine.search.embedders import DEFAULT_SEARCH_MODEL, Embedder
from engine.search.relevance import DEFAULT_CUTOFF, reference_pool, reference_vectors, relevance


@dataclass(frozen=True)
class Term:
    weight: float  # signed
    kind: str  # "text" | "image"
    value: str


@dataclass(frozen=True)
class Hit:
    path: str
    score: float  # relevance in [0, 1], comparable across queries and models (engine/search/relevance.py)
    similarity: float | None = None  # the raw dot product the model gives


@dataclass(frozen=True)
class SearchResult:
    query: str
    terms: tuple[Term, ...]
    hits: tuple[Hit, ...]
    searched: int  # how many photos were compared
    seconds: float
    cutoff: float = 0.0  # the relevance a photo needs to count as a good match
    best: Hit | None = None  # the most relevant photo, even when it is below the cut-off

    @property
    def no_match(self) -> bool:
        """No photo clears the cut-off: tell the user rather than show the least bad photos as answers."""
        return self.best is None or self.best.score < self.cutoff


_SPLIT = re.compile(r"\s+([+-])\s+")
_WEIGHT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*:\s*(.+)$")


def parse_query(text: str, base_dir: str | None = None) -> list[Term]:
    """Split on ' + ' / ' - ' (spaces around the sign), read an optional 'w:' weight per term.

    A term that names an existing image file (absolute, ~, or relative to base_dir)
    is an image term; anything else is text.
    """
    text = text.strip()
    if not text:
        raise PatchworkError("empty query")
    parts = _SPLIT.split(text)
    signs = ["+"] + parts[1::2]
    terms = []
    for sign, raw in zip(signs, parts[0::2]):
        weight = 1.0
        m = _WEIGHT.match(raw)
        if m:
            weight, raw = float(m.group(1)), m.group(2)
        raw = raw.strip()
        if not raw:
            raise PatchworkError(f"empty term in query {text!r}")
        path = os.path.expanduser(raw)
        if base_dir and not os.path.isabs(path):
            candidate = os.path.join(base_dir, path)
            path = candidate if os.path.isfile(candidate) else path
        kind = "image" if is_image_path(path) and os.path.isfile(path) else "text"
        terms.append(Term(weight if sign == "+" else -weight, kind, os.path.abspath(path) if kind == "image" else raw))
    return terms


def query_vector(embedder: Embedder, terms: list[Term]) -> np.ndarray:
    vec = np.zeros(0, np.float32)
    texts = [t for t in terms if t.kind == "text"]
    parts = []
    if texts:
        emb = embedder.encode_texts([t.value for t in texts])
        parts += [t.weight * e for t, e in zip(texts, emb)]
    for t in terms:
        if t.kind == "image":
            img = open_image(t.value, draft=(embedder.preprocess.resize,) * 2)
            vec = embedder.encode_images(to_input(img, embedder.preprocess)[None])[0]
            parts.append(t.weight * embedder.normalise(vec))
    vec = np.sum(parts, axis=0).astype(np.float32)
    if float(np.linalg.norm(vec)) < 1e-8:
        raise PatchworkError("the query's terms cancel out; change a weight or a sign")
    return embedder.normalise(vec)


def rank(matrix: np.ndarray, vec: np.ndarray, top_k: int, min_score: float | None = None, half=None):
    """(indices, scores) of the top_k rows by dot product, best first; exact.

    `half`, a 16-bit torch copy of `matrix` (to_half), makes big scans fast: a half-precision
    matrix-vector product (half the memory traffic) picks top_k + a margin of candidates,
    which are then rescored exactly in float32. A true top-k row is missed only if fp16
    rounding (~1e-3) exceeds the score gap across the whole margin.
    """
    n = matrix.shape[0]
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    k = min(top_k, n)
    if half is not None and n > 4 * (k + RERANK_MARGIN):
        import torch

        approx = torch.mv(half, torch.from_numpy(vec.astype(np.float32)).to(half.dtype))
        cand = torch.topk(approx, k + RERANK_MARGIN, sorted=False).indices.numpy()
        exact = matrix[cand] @ vec
        order = np.argsort(-exact, kind="stable")[:k]
        idx, scores = cand[order], exact[order]
    else:
        scores_all = matrix @ vec
        idx = np.argpartition(-scores_all, k - 1)[:k]
        idx = idx[np.argsort(-scores_all[idx], kind="stable")]
        scores = scores_all[idx]
    if min_score is not None:
        keep = scores >= min_score
        idx, scores = idx[keep], scores[keep]
    return idx, scores.astype(np.float32)


RERANK_MARGIN = 64


class VectorCache:
    """The folder's vectors in memory (float32 for exact scores, 16 bits for fast scans), keyed by
    (index file, model, folder). While indexing adds rows, a query reads only the rows written
    since the last one (their `seen` is newer) and appends them into spare capacity; anything
    else that changed the files table (a file removed or re-indexed) reloads it all."""

    def __init__(self):
        self._key = None
        self._stamp = None  # (rows in files, newest seen) when the vectors were read
        self.paths: list[str] = []
        self._rows = _Growing()
        self._half = _Growing()
        self.matrix = np.zeros((0, 0), np.float32)
        self.half = None

    def get(self, con, model_id: str, root: str | None, db_path: str | None = None):
        key = (os.path.abspath(db_path) if db_path else str(db.default_db_path()), model_id, root)
        count, newest = con.execute("SELECT count(*), max(seen) FROM files").fetchone()
        if key == self._key and (count, newest) == self._stamp:
            return self.paths, self.matrix
        if key != self._key or not self._append_new(con, model_id, root, count):
            paths, matrix = db.load_vectors(con, model_id, root)
            self.paths, self.matrix = paths, self._rows.reset(matrix)
            half = to_half(matrix)
            self.half = None if half is None else self._half.reset(half)
        self._key, self._stamp = key, (count, newest)
        return self.paths, self.matrix

    def _append_new(self, con, model_id: str, root: str | None, count: int) -> bool:
        """Add the rows written since the last read; False where rows were also removed or replaced."""
        old_count, old_newest = self._stamp
        if old_newest is None:
            return False
        written = con.execute("SELECT count(*) FROM files WHERE seen > ?", (old_newest,)).fetchone()[0]
        if count != old_count + written:
            return False
        paths, mat = db.load_vectors(con, model_id, root, since=old_newest)
        if paths:
            self.paths = self.paths + paths
            self.matrix = self._rows.append(mat)
            if self.half is None:
                half = to_half(self.matrix)
                self.half = None if half is None else self._half.reset(half)
            else:
                import torch

                self.half = self._half.append(torch.from_numpy(mat).to(self.half.dtype))
        return True


class _Growing:
    """Rows (numpy or torch) in a buffer with spare capacity: appending an indexing batch costs
    the new rows, not a copy of the whole matrix (the buffer doubles when full)."""

    def __init__(self):
        self._buf = None
        self._n = 0

    def reset(self, rows):
        self._buf, self._n = rows, rows.shape[0]
        return rows

    def append(self, more):
        n, k = self._n, more.shape[0]
        if self._buf is None or self._buf.ndim != 2 or self._buf.shape[1] != more.shape[1]:
            self._buf, n = more[:0], 0
        if self._buf.shape[0] < n + k:
            shape = (max(2 * n, n + k, 1024), more.shape[1])
            if isinstance(more, np.ndarray):
                grown = np.empty(shape, more.dtype)
            else:
                import torch

                grown = torch.empty(shape, dtype=more.dtype)
            grown[:n] = self._buf[:n]
            self._buf = grown
        self._buf[n:n + k] = more
        self._n = n + k
        return self._buf[:self._n]


def to_half(matrix: np.ndarray):
    """A 16-bit torch copy for fast scans, or None where it would not pay off."""
    if matrix.shape[0] < 20_000:
        return None
    import torch

    return torch.from_numpy(np.ascontiguousarray(matrix)).to(scan_dtype()).contiguous()


@lru_cache(maxsize=1)
def scan_dtype():
    """float16 or bfloat16, whichever this CPU multiplies faster (measured once, ~20 ms): CPUs
    differ (at 100k x 512, fp16 4.0 ms on an AMD EPYC; on an Intel Xeon fp16 5.9, bf16 4.8 ms).
    Both accumulate in float32, and the candidates are rescored exactly anyway."""
    import torch

    rows = torch.randn(32_768, 512)
    best, fastest = torch.float16, float("inf")
    for dtype in (torch.float16, torch.bfloat16):
        m, v = rows.to(dtype), rows[0].to(dtype)
        torch.mv(m, v)
        t0 = time.perf_counter()
        for _ in range(3):
            torch.mv(m, v)
        took = time.perf_counter() - t0
        if took < fastest:
            best, fastest = dtype, took
    return best


_cache = VectorCache()


def search_job(ctx, query: str, folder: str | None = None, model_id: str = DEFAULT_SEARCH_MODEL,
               top_k: int = 100, min_score: float | None = None, db_path: str | None = None,
               cutoff: float = DEFAULT_CUTOFF):
    """The top_k photos by relevance (hits below min_score dropped); `cutoff` decides no_match."""
    t0 = time.perf_counter()
    root = os.path.abspath(os.path.expanduser(folder)) if folder else None
    terms = parse_query(query, base_dir=root)
    embedder = Embedder(ctx, model_id)
    return search_with(embedder, query, terms, root, top_k, min_score, db_path, cutoff, t0, _cache)


def search_with(embedder, query: str, terms: list[Term], root: str | None, top_k: int, min_score: float | None,
                db_path: str | None, cutoff: float, t0: float, cache: "VectorCache | None" = None) -> SearchResult:
    """The search itself, for any embedder with encode_texts/normalise (the engine's Embedder, or
    engine.search.quick's torch-free text side); `cache` keeps vectors in memory between queries."""
    vec = query_vector(embedder, terms)
    con = db.connect(db_path)
    try:
        if cache is not None:
            paths, matrix = cache.get(con, embedder.model_id, root, db_path)
        else:
            paths, matrix = db.load_vectors(con, embedder.model_id, root)
    finally:
        con.close()
    if not paths:
        where = f" under {root}" if root else ""
        raise PatchworkError(f"no photos are indexed{where} for {embedder.entry.name}; index the folder first")
    hits = ranked_hits(embedder, terms, paths, matrix, vec, top_k, half=cache.half if cache is not None else None)
    best = hits[0] if hits else None
    if min_score is not None:
        hits = tuple(h for h in hits if h.score >= min_score)
    return SearchResult(query, tuple(terms), hits, len(paths), time.perf_counter() - t0, cutoff, best)


def ranked_hits(embedder: Embedder, terms: list[Term], paths: list[str], matrix: np.ndarray, vec: np.ndarray,
                top_k: int, half=None) -> tuple[Hit, ...]:
    """The top_k photos by similarity, with their relevance.

    A query with no text term (a photo, "more like this") has no text references to rank
    against: its relevance is the cosine similarity, clipped to [0, 1] (1 for the photo itself);
    for label-space models the similarity relative to the best photo's.
    """
    idx, sims = rank(matrix, vec, top_k, half=half)
    if any(t.kind == "text" for t in terms):
        refs = reference_vectors(embedder.model_id, embedder.encode_texts)
        rel = relevance(sims, *reference_pool(matrix, refs))
    else:
        scale = 1.0 if embedder.unit_vectors or not len(sims) else max(float(sims[0]), 1e-12)
        rel = np.clip(sims / scale, 0.0, 1.0)
    return tuple(Hit(paths[i], float(r), float(s)) for i, r, s in zip(idx, rel, sims))
