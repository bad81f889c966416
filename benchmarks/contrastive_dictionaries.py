"""Three ways to build the dictionary of negatives, at equal budget on Fashion-MNIST.

MoCo v2 (a queue of K keys from a momentum encoder), SimCLR (the batch is the dictionary,
end-to-end) and InstDisc (a memory bank of one vector per image), plus MoCo with m = 0
(the key encoder is a copy of the query encoder after every step: the fast-changing keys
the notes say make the queue inconsistent). Same small ResNet (width 16), batch, steps,
learning rate, temperature and seed for every run; the recipes' own views and heads. The
score is the kNN monitor (engine.train.ssl) on the backbone's features after the run.

    python benchmarks/contrastive_dictionaries.py [--steps 400] [--batch 128] [--no-m0]

One torch thread. Prints a table; nothing here is asserted in tests.
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

from engine.runs.checkpoint import RunFolder  # noqa: E402
from engine.train.loop import train  # noqa: E402
from engine.train.recipes import recipe_class  # noqa: E402

#: (label, recipe, its own settings, what the dictionary is)
RUNS = [
    ("MoCo v2", "moco_v2", {}, "queue of K=4096 keys, momentum encoder m=0.99"),
    ("SimCLR", "simclr", {}, "the batch: 2N-2 = {neg} other views"),
    ("InstDisc", "instdisc", {}, "memory bank, K=4096 sampled of 60,000"),
    ("MoCo v2, m=0", "moco_v2", {"m": 0.0}, "queue of K=4096 keys, key encoder = query encoder"),
]


def run(recipe: str, settings: dict, steps: int, batch: int) -> dict:
    config = {"max_steps": steps, "batch_size": batch, "backbone": "resnet", "width": 16, "lr": 2e-3, "T": 0.1,
              "seed": 0, "log_every": 20, "eval_every": 0, "checkpoint_seconds": 1e9, "knn_bank": 10000,
              "knn_test": 2000, **settings}
    rec = recipe_class(recipe)(config, "fashion-mnist")
    for _ in rec.prepare():
        pass
    last: dict = {}
    t0 = time.perf_counter()
    gen = train(rec, RunFolder(Path(tempfile.mkdtemp(prefix="pw-dict-")) / "run"), "cpu")
    while True:
        try:
            item = next(gen)
        except StopIteration as stop:
            result = stop.value
            break
        value = getattr(item, "value", None)
        if isinstance(value, dict) and value.get("kind") == "train":
            last = value
    return {"knn": result["metrics"]["knn_acc"], "init": result["metrics"].get("knn_acc_random_init"),
            "s": time.perf_counter() - t0, "last": last}


def main() -> None:
    import torch

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--no-m0", action="store_true", help="skip MoCo with m = 0")
    args = ap.parse_args()
    torch.set_num_threads(1)
    rows = []
    for label, recipe, settings, dictionary in RUNS:
        if args.no_m0 and settings.get("m") == 0.0:
            continue
        r = run(recipe, settings, args.steps, args.batch)
        rows.append((label, dictionary.format(neg=2 * args.batch - 2), r))
        extra = f", bank staleness {r['last']['bank_staleness']:.0f} steps" if "bank_staleness" in r["last"] else ""
        print(f"{label}: kNN {100 * r['knn']:.1f} % in {r['s']:.0f} s{extra}", flush=True)
    print(f"\nFashion-MNIST, ResNet width 16, batch {args.batch}, {args.steps} steps, T=0.1, lr 2e-3, 1 thread; "
          f"kNN (k=200) of 2,000 test images over 10,000 training images; random init "
          f"{100 * rows[0][2]['init']:.1f} %\n")
    print("| Method | Dictionary | kNN accuracy | Instance acc. (last step) | Wall time |")
    print("|---|---|---|---|---|")
    for label, dictionary, r in rows:
        acc = r["last"].get("acc")
        print(f"| {label} | {dictionary} | {100 * r['knn']:.1f} % | "
              f"{'' if acc is None else f'{100 * acc:.0f} %'} | {r['s']:.0f} s |")


if __name__ == "__main__":
    main()
