"""Indexing speed: Patchwork's indexer vs a straight sequential loop, same model, same photos.

Reference (in the same process, on the same engine thread and device): for each photo,
PIL open -> full decode -> resize/crop/normalise -> the PyTorch model, in batches of the same
size, no worker pool, no draft-mode decoding, no database. Ours: the real index job
(worker-pool decoding overlapped with the model, JPEG draft mode at the model's input size,
content hashing, SQLite writes) on a fresh database, with each image runtime in turn
(PATCHWORK_IMAGE_RUNTIME: PyTorch, ONNX Runtime fp32, int8 where it passes its check; the
ONNX export is made once before the timings). Rounds interleave them (the machine is shared);
medians. Goal: ours >= 2x the reference's images/s on 2 cores. Also reported: recall@10 of
int8 against fp32 (each photo's 10 nearest photos).

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
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    folder = Path(args.folder) if args.folder else Path(tempfile.mkdtemp(prefix="pw-photos-"))
    if not args.folder:
        make_photos(folder, args.n)
    paths = sorted(str(p) for p in folder.rglob("*.jpg"))
    print(f"{len(paths)} photos in {folder}, model {args.model}, {os.cpu_count()} CPUs")

    eng = Engine(device="cpu")
    eng.start()
    assert eng.wait_ready(60)
    runtimes = ("torch", "fp32", "int8")
    try:
        # warm-up: model load, the one-time ONNX exports and page cache, outside the timings
        eng.submit(lambda ctx: reference_loop(ctx, paths[:8], args.model, args.batch)).result(300)
        for runtime in ("fp32", "int8"):
            os.environ["PATCHWORK_IMAGE_RUNTIME"] = runtime
            assert eng.submit(lambda ctx: Embedder(ctx, args.model).use_onnx_images(ctx)).result(900) is None
        ours, ref, dbs = {r: [] for r in runtimes}, [], {}
        for r in range(args.rounds):
            ref.append(eng.submit(lambda ctx: reference_loop(ctx, paths, args.model, args.batch)).result(1800))
            line = f"round {r + 1}: sequential loop {ref[-1]:.1f}"
            for runtime in runtimes:
                os.environ["PATCHWORK_IMAGE_RUNTIME"] = runtime
                dbs[runtime] = Path(tempfile.mkdtemp()) / "index.sqlite3"
                res = eng.submit("index_folder", {"folder": str(folder), "model_id": args.model,
                                                  "db_path": str(dbs[runtime]), "batch_size": args.batch}).result(1800)
                assert res.embedded == len(paths), res
                ours[runtime].append(res.total / res.seconds)
                line += f", ours {runtime} {ours[runtime][-1]:.1f}"
            print(line + " images/s", flush=True)
        f = float(np.median(ref))
        print(f"median: sequential PyTorch loop {f:.1f} images/s")
        for runtime in runtimes:
            o = float(np.median(ours[runtime]))
            ratio = float(np.median([a / b for a, b in zip(ours[runtime], ref)]))
            print(f"  ours {runtime:5s} {o:.1f} images/s: x{ratio:.2f} (goal >= 2x: {'met' if ratio >= 2 else 'NOT met'})")
        from benchmarks.search_vs_rclip import recall_at_10

        print(f"int8 recall@10 against fp32: {recall_at_10(args.model, dbs['fp32'], dbs['int8'], folder):.3f}; "
              f"ONNX fp32 against PyTorch: {recall_at_10(args.model, dbs['torch'], dbs['fp32'], folder):.3f}")
    finally:
        eng.shutdown()
        os.environ.pop("PATCHWORK_IMAGE_RUNTIME", None)


if __name__ == "__main__":
    main()
