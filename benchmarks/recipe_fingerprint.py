"""A fingerprint of every recipe's tiny run: the proof that a refactor changed no behaviour.

    python benchmarks/recipe_fingerprint.py                  # print one line per recipe
    python benchmarks/recipe_fingerprint.py --save FILE      # ... and write them to FILE
    python benchmarks/recipe_fingerprint.py --compare FILE   # exit 1 if any line differs from FILE
    python benchmarks/recipe_fingerprint.py --cards FILE     # the scrubbed cards as one JSON, to diff

Each recipe trains a few steps on the CPU (one thread, the recipe's fixed seed) in a fresh
PATCHWORK_HOME, with the tiny settings the tests use: the generated shapes folder, or the
real Fashion-MNIST (/usr/share/datasets/fashion-mnist) for the recipes that need captions.
Per run it prints the SHA-256 of the tensors (model.safetensors and the last checkpoint's
state.safetensors: optimizer, RNG, other modules), of metrics.jsonl and of card.json, the
last two with the fields that change from run to run removed (clock times, durations,
throughput, process id, the temporary folder's path). Nothing is asserted in the tests.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

#: What differs between two identical runs: clock, process, throughput, elapsed time, and the
#: SHA-256 of the weights file's bytes (safetensors writes its metadata map in a random order;
#: the tensors themselves are compared through their canonical hash below).
VOLATILE_CARD = {"created", "updated", "pid", "process_started", "elapsed_s", "sha256"}
VOLATILE_RECORD = {"samples_per_s", "eta_s", "time", "elapsed_s", "seconds"}

VIT = {"embed_dim": 16, "depth": 1, "num_heads": 2, "patch_size": 4, "batch_size": 8, "image_size": 16,
       "grayscale": True, "log_every": 1, "eval_batch_size": 16}
RESNET = {"width": 4, "batch_size": 8, "dim": 8, "image_size": 16, "grayscale": True, "log_every": 1, "knn_k": 5,
          "eval_batch_size": 16, "test_fraction": 0.25}
MAE = {"embed_dim": 16, "depth": 1, "num_heads": 2, "decoder_embed_dim": 16, "decoder_depth": 1,
       "decoder_num_heads": 2, "patch_size": 4, "image_size": 16, "grayscale": True, "batch_size": 8,
       "log_every": 1, "preview_every": 2, "eval_batch_size": 16, "checkpoint_every": 2}

#: (recipe, dataset: "shapes" or "fashion-mnist", config) - the tests' tiny settings, 2-6 steps each.
RUNS = [
    ("supervised", "shapes", {**VIT, "max_steps": 4, "checkpoint_every": 2}),
    ("moco_v2", "shapes", {**RESNET, "bn_splits": 2, "K": 24, "max_steps": 3}),
    ("moco_v3", "shapes", {**{k: v for k, v in VIT.items()}, "dim": 8, "mlp_dim": 16, "knn_k": 5, "max_steps": 3}),
    ("simclr", "shapes", {**RESNET, "max_steps": 3}),
    ("instdisc", "shapes", {**RESNET, "K": 16, "max_steps": 3}),
    ("linear_probe", "shapes", {"max_steps": 3, "batch_size": 8, "log_every": 1}),
    ("finetune", "shapes", {"max_steps": 2, "batch_size": 8}),
    ("mae", "shapes", {**MAE, "max_steps": 3}),
    ("pseudo_label", "shapes", {**VIT, "eval_batch_size": 32, "labels_per_class": 4, "steps_per_round": 2,
                                "max_steps": 5, "threshold": 0.4, "lr": 3e-3}),
    ("lit", "fashion-mnist", {"max_steps": 2, "batch_size": 16, "train_limit": 64, "test_limit": 100,
                              "log_every": 1, "eval_every": 0}),
    ("clip", "fashion-mnist", {"max_steps": 2, "batch_size": 8, "train_limit": 32, "test_limit": 50,
                               "eval_every": 0, "embed_dim": 32}),
    ("albef", "fashion-mnist", {"train_limit": 64, "test_limit": 30, "batch_size": 16, "max_steps": 2,
                                "queue_size": 32, "fusion_layers": 1, "log_every": 1, "eval_batch_size": 15,
                                "caption_noise": 0.25}),
    ("vilt", "fashion-mnist", {"train_limit": 64, "test_limit": 20, "batch_size": 16, "max_steps": 2, "depth": 2,
                               "width": 64, "log_every": 1, "caption_noise": 0.25}),
    ("unclip_prior", "fashion-mnist", {"kind": "diffusion", "max_steps": 2, "batch_size": 32, "train_limit": 64,
                                       "test_limit": 100, "eval_samples": 4, "sample_steps": 4, "eval_every": 0}),
    ("unclip_decoder", "fashion-mnist", {"max_steps": 2, "batch_size": 8, "train_limit": 64, "test_limit": 100,
                                         "eval_images": 10, "eval_steps": 2, "channels": "8,16",
                                         "mid_channels": 16, "log_every": 1}),
]


def write_shapes(root: Path, per_class: int = 40, seed: int = 1) -> str:
    """Class folders stripes/, bars/, checks/ of noisy 16x16 images (as tests/engine/training.py)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:16, 0:16]
    patterns = {"stripes": (yy // 2) % 2, "bars": (xx // 2) % 2, "checks": ((yy // 4) + (xx // 4)) % 2}
    for name, pattern in patterns.items():
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            img = pattern * 180 + rng.integers(0, 60, (16, 16))
            Image.fromarray(img.astype(np.uint8)).save(root / name / f"{i}.png")
    return str(root)


def _scrub(value, tmp: str):
    """The value with the temporary folder's path replaced, volatile keys dropped, recursively."""
    if isinstance(value, dict):
        return {k: _scrub(v, tmp) for k, v in value.items() if k not in VOLATILE_CARD | VOLATILE_RECORD}
    if isinstance(value, list):
        return [_scrub(v, tmp) for v in value]
    if isinstance(value, str):
        return value.replace(tmp, "<TMP>")
    return value


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def _tensors_sha(path: Path) -> str:
    """Every tensor (sorted by name: dtype, shape, bytes) and the sorted metadata of a safetensors file."""
    import torch
    from safetensors import safe_open

    h = hashlib.sha256()
    with safe_open(str(path), "pt") as f:
        h.update(json.dumps(f.metadata() or {}, sort_keys=True).encode())
        for name in sorted(f.keys()):
            t = f.get_tensor(name).contiguous()
            h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
            h.update(t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()[:16]


def fingerprint(run_dir: Path, tmp: str) -> dict[str, str]:
    ckpts = sorted((run_dir / "checkpoints").glob("step-*"))
    card = _scrub(json.loads((run_dir / "card.json").read_text()), tmp)
    records = [_scrub(json.loads(line), tmp) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return {
        "weights": _tensors_sha(run_dir / "model.safetensors"),
        "state": _tensors_sha(ckpts[-1] / "state.safetensors") if ckpts else "-",
        "metrics": _sha(json.dumps(records, sort_keys=True).encode()),
        "card": _sha(json.dumps(card, sort_keys=True).encode()),
    }


class _Ctx:
    device = "cpu"
    models = None
    cancelled = False


def run_all(only: list[str] | None, cards: dict | None = None) -> list[str]:
    import torch

    torch.set_num_threads(1)
    from engine.train.jobs import train_job

    lines = []
    tmp = os.environ["PATCHWORK_HOME"]
    shapes = write_shapes(Path(tmp) / "shapes")
    for recipe, data, config in RUNS:
        if only and recipe not in only:
            continue
        gen = train_job(_Ctx(), recipe, shapes if data == "shapes" else data, dict(config), run_name=f"fp-{recipe}")
        try:
            while True:
                next(gen)
        except StopIteration as stop:
            result = stop.value
        fp = fingerprint(Path(result["run_dir"]), tmp)
        if cards is not None:
            cards[recipe] = _scrub(json.loads((Path(result["run_dir"]) / "card.json").read_text()), tmp)
        line = f"{recipe:15s} " + " ".join(f"{k}={v}" for k, v in fp.items())
        print(line, flush=True)
        lines.append(line)
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--save", type=Path)
    ap.add_argument("--compare", type=Path)
    ap.add_argument("--cards", type=Path)
    ap.add_argument("--only", nargs="*")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    with tempfile.TemporaryDirectory(prefix="fingerprint-") as tmp:
        os.environ["PATCHWORK_HOME"] = tmp
        cards: dict = {}
        lines = run_all(args.only, cards)
    if args.cards:
        args.cards.parent.mkdir(parents=True, exist_ok=True)
        args.cards.write_text(json.dumps(cards, indent=1, sort_keys=True) + "\n")
    if args.save:
        args.save.parent.mkdir(parents=True, exist_ok=True)
        args.save.write_text("\n".join(lines) + "\n")
    if args.compare:
        want = {ln.split()[0]: ln for ln in args.compare.read_text().splitlines() if ln.strip()}
        bad = [ln.split()[0] for ln in lines if want.get(ln.split()[0]) != ln]
        print(f"{len(lines) - len(bad)}/{len(lines)} runs identical to {args.compare}"
              + (f"; differ: {', '.join(bad)}" if bad else ""))
        return 1 if bad else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
