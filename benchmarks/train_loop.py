"""Training throughput: the app's loop vs a plain hand-written loop, same model and batches.

Ours: engine.train.loop.train with the supervised recipe (tiny ViT, Fashion-MNIST, batch 256),
which adds the warm-up/cosine schedule, gradient clipping, NaN checks, metric records and
progress events. Reference: `for x, y in batches: loss = CE(model(norm(x)), y); backward; AdamW
step`, the same model config, the same batches, flips off on both sides. Timed over steps
after a warm-up, alternating the two so machine noise hits both. Goal: ours >= 0.95x.

    python benchmarks/train_loop.py [--steps 60] [--rounds 2]
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

from engine.jobs import Progress  # noqa: E402
from engine.runs.checkpoint import RunFolder  # noqa: E402
from engine.train.loop import train  # noqa: E402
from engine.train.recipes.supervised import SupervisedRecipe  # noqa: E402

CONFIG = {"flip": False, "batch_size": 256, "log_every": 20, "eval_every": 0, "test_limit": 1000,
          "checkpoint_seconds": 1e9}
WARMUP = 10


def recipe(steps: int) -> SupervisedRecipe:
    rec = SupervisedRecipe({**CONFIG, "max_steps": steps}, "fashion-mnist")
    for _ in rec.prepare():
        pass
    return rec


def ours(steps: int) -> float:
    """Samples/s between step WARMUP and the last step, from the loop's own progress events."""
    rec = recipe(steps)
    stamps = {}
    gen = train(rec, RunFolder(Path(tempfile.mkdtemp()) / "run"), "cpu")
    for ev in gen:
        if isinstance(ev, Progress) and ev.done in (WARMUP, steps):
            stamps.setdefault(ev.done, time.perf_counter())
    return (steps - WARMUP) * CONFIG["batch_size"] / (stamps[steps] - stamps[WARMUP])


def plain(steps: int) -> float:
    import torch
    import torch.nn.functional as F

    from engine.models.vit import build_vit

    rec = recipe(steps)
    torch.manual_seed(0)
    model = build_vit(rec.model_config())
    x_all, y_all = torch.from_numpy(rec.train_x), torch.from_numpy(rec.train_y)
    mean = torch.tensor(rec.mean).view(1, -1, 1, 1)
    std = torch.tensor(rec.std).view(1, -1, 1, 1)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
    model.train()
    t0 = None
    for i, idx in enumerate(rec.order.batches(0, 0)):
        if i == WARMUP:
            t0 = time.perf_counter()
        if i == steps:
            break
        x = (x_all[idx].float() / 255.0 - mean) / std
        loss = F.cross_entropy(model(x), y_all[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return (steps - WARMUP) * CONFIG["batch_size"] / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    import torch

    print(f"tiny ViT on Fashion-MNIST, batch {CONFIG['batch_size']}, CPU threads {torch.get_num_threads()}")
    a, b = [], []
    for r in range(args.rounds):
        b.append(plain(args.steps))
        a.append(ours(args.steps))
        print(f"round {r + 1}: loop {a[-1]:.0f} samples/s, plain loop {b[-1]:.0f} samples/s")
    o, p = float(np.median(a)), float(np.median(b))
    print(f"median: loop {o:.0f} vs plain {p:.0f} samples/s: x{o / p:.3f} (goal >= 0.95: "
          f"{'met' if o / p >= 0.95 else 'NOT met'})")


if __name__ == "__main__":
    main()
