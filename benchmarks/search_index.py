"""Indexing speed: Patchwork's indexer vs a straight sequential loop, same model, same photos.

Reference (in the same process, on the same engine thread and device): for each photo,
PIL open -> full decode -> resize/crop/normalise -> model, in batches of the same size,
no worker pool, no draft-mode decoding, no database. Ours: the real index job
(worker-pool decoding, JPEG draft mode at the model's input size, content hashing,
SQLite writes) on a fresh database. Goal: ours >= 1.5x the reference's images/s on 2 cores.

    python benchmarks/search_index.py [--n 200] [--model conse-lite0-minilm] [--folder DIR]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("PATCHWORK_HOME", tempfile.mkdtemp(prefix="pw-bench-"))

import numpy as np  # noqa: E402

from benchmarks.photos import make_photos  # noqa: E402
from engine.core import Engine  # noqa: E402
from engine.search.embedders import DEFAULT_SEARCH_MODEL, Embedder  # noqa: E402


def reference_loop(ctx, paths: list[str], model_id: str, batch_size: int):
    """PIL open -> full decode -> transform -> model, one photo after another."""
    from PIL import Image

    from engine.preprocess import to_input

    embedder = Embedder(ctx, model_id)
    embedder.encode_texts(["photo"])  # same warm state as the index job
    t0 = time.perf_counter()
    batch, out = [], []
    for p in paths:
        with Image.open(p) as im:
            img = im.convert("RGB")  # full-size decode
        batch.append(to_input(img, embedder.preprocess))
        if len(batch) == batch_size:
            out.append(embedder.encode_images(np.stack(batch)))
            batch = []
    if batch:
        out.append(embedder.encode_images(np.stack(batch)))
    return len(paths) / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--model", default=DEFAULT_SEARCH_MODEL)
    ap.add_argument("--folder", help="photos to use (default: N generated 1600x1200 JPEGs)")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    folder = Path(args.folder) if args.folder else Path(tempfile.mkdtemp(prefix="pw-photos-"))
    if not args.folder:
        make_photos(folder, args.n)
    paths = sorted(str(p) for p in folder.rglob("*.jpg"))
    print(f"{len(paths)} photos in {folder}, model {args.model}, {os.cpu_count()} CPUs")

    eng = Engine(device="cpu")
    eng.start()
    assert eng.wait_ready(60)
    try:
        # warm-up: model load and page cache, outside the timings
        eng.submit(lambda ctx: reference_loop(ctx, paths[:8], args.model, args.batch)).result(300)
        ours, ref = [], []
        for r in range(args.rounds):
            ref.append(eng.submit(lambda ctx: reference_loop(ctx, paths, args.model, args.batch)).result(1800))
            db_path = Path(tempfile.mkdtemp()) / "index.sqlite3"
            res = eng.submit("index_folder", {"folder": str(folder), "model_id": args.model, "db_path": str(db_path),
                                              "batch_size": args.batch}).result(1800)
            assert res.embedded == len(paths), res
            ours.append(res.total / res.seconds)
            print(f"round {r + 1}: ours {ours[-1]:.1f} images/s, sequential loop {ref[-1]:.1f} images/s")
        o, f = float(np.median(ours)), float(np.median(ref))
        print(f"median: ours {o:.1f} images/s vs sequential {f:.1f} images/s: x{o / f:.2f} (goal >= 1.5x: "
              f"{'met' if o / f >= 1.5 else 'NOT met'})")
    finally:
        eng.shutdown()


if __name__ == "__main__":
    main()
