"""Soak: random kill -9 during indexing and during training, then check nothing was lost.

Not run in CI (minutes). Each round starts `python main.py index ...` or `python main.py train
...` as a separate process and kills it with SIGKILL at a random moment; the next round
continues (indexing is incremental, training resumes with --resume). Reported:
  indexing: SQLite integrity_check after every kill, duplicate paths, files without a vector,
            vectors no file points at, and at the end lost rows (photos not indexed) and bad files;
  training: the run's losses after all the kills and resumes vs the same run uninterrupted
            (largest difference per step), leftover .tmp- folders, and the final status.

    python benchmarks/soak.py [--kills 20] [--photos 600] [--steps 600] [--only index|train]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
TRAIN = {"embed_dim": 32, "depth": 2, "num_heads": 2, "patch_size": 4, "batch_size": 8, "image_size": 16,
         "grayscale": True, "log_every": 1, "eval_every": 0, "checkpoint_every": 4, "drop_path_rate": 0.1}


def make_photos(folder: Path, n: int) -> None:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(folder / f"p{i:04d}.png")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")


def make_shapes(root: Path, per_class: int = 16) -> str:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:16, 0:16]
    for name, pattern in {"stripes": (yy // 2) % 2, "bars": (xx // 2) % 2, "checks": ((yy // 4) + (xx // 4)) % 2}.items():
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray((pattern * 180 + rng.integers(0, 60, (16, 16))).astype(np.uint8)).save(
                root / name / f"{i}.png")
    return str(root)


def run_and_kill(cmd: list[str], env: dict, rng: random.Random, progress, max_wait: float = 120) -> bool:
    """Start `cmd`; once progress() has grown (this process is really working), wait a random
    0-0.3 s and kill -9. False if it finished first."""
    start = progress()
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def ready() -> bool:
        return progress() > start

    deadline = time.monotonic() + max_wait
    while proc.poll() is None and not ready() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(rng.uniform(0.0, 0.3))
    if proc.poll() is not None:
        return False
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    return True


def rows(db: Path) -> int:
    """Rows committed so far (0 before the index exists or while it is locked)."""
    if not db.exists():
        return 0
    try:
        con = sqlite3.connect(db, timeout=1)
        try:
            return con.execute("SELECT count(*) FROM files").fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:
        return 0


def index_checks(db: Path) -> dict:
    con = sqlite3.connect(db, timeout=30)
    try:
        out = {"integrity": con.execute("PRAGMA integrity_check").fetchone()[0]}
        total, distinct = con.execute("SELECT count(*), count(DISTINCT path) FROM files").fetchone()
        out["duplicates"] = total - distinct
        row = con.execute("SELECT tbl FROM models").fetchone()
        if row:
            tbl = row[0]
            out["no_vector"] = con.execute(f"SELECT count(*) FROM files f LEFT JOIN {tbl} e ON e.hash=f.hash "
                                           "WHERE f.status='ok' AND e.hash IS NULL").fetchone()[0]
            out["ok"] = con.execute("SELECT count(*) FROM files WHERE status='ok'").fetchone()[0]
            out["bad"] = con.execute("SELECT count(*) FROM files WHERE status='bad'").fetchone()[0]
        return out
    finally:
        con.close()


def soak_index(tmp: Path, kills: int, photos: int, rng: random.Random, model: str) -> None:
    folder = tmp / "photos"
    make_photos(folder, photos)
    env = dict(os.environ, PATCHWORK_HOME=str(tmp / "home-index"), HF_HUB_OFFLINE="1")
    db = tmp / "home-index" / "data" / "photo_index.sqlite3"
    cmd = [sys.executable, "main.py", "index", str(folder), "--model", model, "--device", "cpu"]
    done = problems = 0
    for _ in range(kills):
        if not run_and_kill(cmd, env, rng, lambda: rows(db)):
            break
        done += 1
        c = index_checks(db)
        if c["integrity"] != "ok" or c["duplicates"] or c.get("no_vector"):
            problems += 1
            print(f"  after kill {done}: {c}")
    final = subprocess.run(cmd + ["--json"], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    c = index_checks(db)
    lost = photos - c.get("ok", 0)
    print(f"indexing: {done} kill -9, {problems} checks failed after a kill; final exit {final.returncode}, "
          f"integrity {c['integrity']}, duplicates {c['duplicates']}, files without a vector {c.get('no_vector')}, "
          f"lost rows {lost} of {photos}, bad files {c.get('bad')} (1 planted)")


def losses(run: Path) -> dict[int, float]:
    out = {}
    for line in (run / "metrics.jsonl").read_text().splitlines():
        try:
            r = json.loads(line)
        except ValueError:
            continue
        if r.get("kind") == "train":
            out[r["step"]] = r["loss"]
    return out


def soak_train(tmp: Path, kills: int, steps: int, rng: random.Random) -> None:
    data = make_shapes(tmp / "shapes")
    env = dict(os.environ, PATCHWORK_HOME=str(tmp / "home-train"), OMP_NUM_THREADS="1")
    settings = [a for k, v in {**TRAIN, "max_steps": steps}.items() for a in ("--set", f"{k}={json.dumps(v)}")]
    run = tmp / "killed"
    start = [sys.executable, "main.py", "train", "supervised", "--dataset", data, *settings, "--run-dir", str(run),
             "--device", "cpu"]
    resume = [sys.executable, "main.py", "train", "supervised", "--resume", str(run), "--device", "cpu"]
    done = 0

    def stepping() -> int:
        """Steps logged so far (metrics.jsonl lines): grows only while a process trains."""
        metrics = run / "metrics.jsonl"
        return len(metrics.read_bytes().splitlines()) if metrics.is_file() else 0

    cmd = start
    while done < kills:
        if not run_and_kill(cmd, env, rng, stepping):
            break
        done += 1
        cmd = resume
    if (run / "card.json").is_file() and json.loads((run / "card.json").read_text()).get("status") != "finished":
        subprocess.run(resume, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    straight = tmp / "straight"
    subprocess.run([*start[:-4], "--run-dir", str(straight), "--device", "cpu"], cwd=REPO, env=env,
                   capture_output=True, text=True, timeout=900)
    a, b = losses(run), losses(straight)
    common = sorted(set(a) & set(b))
    worst = max((abs(a[s] - b[s]) for s in common), default=float("nan"))
    leftovers = list(run.rglob(".tmp-*"))
    status = json.loads((run / "card.json").read_text()).get("status")
    print(f"training: {done} kill -9 + resume; status {status}; {len(common)} of {steps} steps compared with an "
          f"uninterrupted run, largest loss difference {worst:.2e}; .tmp leftovers {len(leftovers)}")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--photos", type=int, default=600)
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--only", choices=("index", "train"))
    ap.add_argument("--index-model", default="conse-lite0-minilm",
                    help="slow enough on a CPU that 20 kills land mid-folder (fmnist-lit-tiny is ~10x faster)")
    args = ap.parse_args()
    rng = random.Random(1)
    tmp = Path(tempfile.mkdtemp(prefix="pw-soak-"))
    t0 = time.monotonic()
    if args.only in (None, "index"):
        soak_index(tmp, args.kills, args.photos, rng, args.index_model)
    if args.only in (None, "train"):
        soak_train(tmp, args.kills, args.steps, rng)
    print(f"({time.monotonic() - t0:.0f} s in all; files in {tmp})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
