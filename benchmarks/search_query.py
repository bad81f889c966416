"""Query latency of photo search on synthetic 512-d vectors (100,000 and 1,000,000 photos).

Ours: engine.search.query.rank with its float16 scan + exact float32 rescoring of the
candidates. Reference in the same process: the plain exact scan (float32 NumPy
matrix-vector product + argpartition), which is what a straightforward implementation does.
Goals: <= 5 ms at 100k and <= 70 ms at 1M (top 100), with the exact same results.

    python benchmarks/search_query.py [--sizes 100000 1000000] [--top 100] [--queries 20]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from engine.search.query import rank, to_half  # noqa: E402

GOALS_MS = {100_000: 5.0, 1_000_000: 70.0}


def median_ms(fn, queries) -> float:
    fn(queries[0])  # warm-up
    times = []
    for q in queries:
        t0 = time.perf_counter()
        fn(q)
        times.append(time.perf_counter() - t0)
    return 1000 * float(np.median(times))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--top", type=int, default=100)
    ap.add_argument("--queries", type=int, default=20)
    args = ap.parse_args()
    import torch

    print(f"torch threads: {torch.get_num_threads()}")
    rng = np.random.default_rng(0)
    for n in args.sizes:
        mat = rng.standard_normal((n, args.dim), dtype=np.float32)
        mat /= np.linalg.norm(mat, axis=1, keepdims=True)
        # queries near existing vectors, like a real query close to some photos
        queries = [mat[i] + 0.5 * rng.standard_normal(args.dim, dtype=np.float32) for i in range(args.queries)]
        queries = [(q / np.linalg.norm(q)).astype(np.float32) for q in queries]
        half = to_half(mat)
        same = all(list(rank(mat, q, args.top, half=half)[0]) == list(rank(mat, q, args.top)[0]) for q in queries)
        ours = median_ms(lambda q: rank(mat, q, args.top, half=half), queries)
        ref = median_ms(lambda q: rank(mat, q, args.top), queries)
        goal = GOALS_MS.get(n)
        verdict = "" if goal is None else f" (goal <= {goal:g} ms: {'met' if ours <= goal else 'NOT met'})"
        print(f"{n:>9,} x {args.dim}: ours {ours:6.1f} ms, exact fp32 scan {ref:6.1f} ms, "
              f"speed-up x{ref / ours:.1f}, identical top-{args.top}: {same}{verdict}")
        mat = half = None  # free this size's matrices before the next one


if __name__ == "__main__":
    main()
