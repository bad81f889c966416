"""gpu_check, sections "training" and "ddp": every recipe with AMP and exact resume; torchrun.

Each recipe runs through the Train panel's own job (engine.train.jobs.train_job) on the device
with its settings' default amp=True (bf16 autocast on CUDA): a straight run of STEPS steps, and
a run stopped after step STOP (the engine's cancel: the generator is closed, a checkpoint is
saved) then resumed. The resumed run's checkpoint (weights, optimizer, RNG, queues, banks) must
equal the straight run's bit for bit. Sizes are the test suite's tiny ones: what is checked is
that every code path runs on the device and resumes exactly, not speed.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from benchmarks.gpu_check import FAIL, PASS, REPO, Row

STEPS, STOP = 4, 2
SHAPES, FMNIST = "shapes", "fashion-mnist"
_VIT = {"embed_dim": 16, "depth": 1, "num_heads": 2, "patch_size": 4, "batch_size": 8, "image_size": 16,
        "grayscale": True, "eval_batch_size": 16}
_RESNET = {"width": 4, "batch_size": 8, "dim": 8, "image_size": 16, "grayscale": True, "knn_k": 5,
           "eval_batch_size": 16, "test_fraction": 0.25}
_FM = {"train_limit": 64, "test_limit": 20}
#: recipe -> (dataset, tiny settings), from the test suite's tiny runs.
RECIPES: dict[str, tuple[str, dict]] = {
    "supervised": (SHAPES, _VIT),
    "pseudo_label": (SHAPES, {**_VIT, "labels_per_class": 4, "steps_per_round": 2, "epochs": 2, "threshold": 0.4,
                              "eval_every": 1}),  # every round ends with its evaluation
    "moco_v2": (SHAPES, {**_RESNET, "bn_splits": 2, "K": 24}),
    "moco_v3": (SHAPES, {**_VIT, "dim": 8, "mlp_dim": 16, "knn_k": 5}),
    "simclr": (SHAPES, _RESNET),
    "instdisc": (SHAPES, {**_RESNET, "K": 16}),
    "linear_probe": (SHAPES, {"batch_size": 8}),
    "finetune": (SHAPES, {"batch_size": 8}),
    "mae": (SHAPES, {"embed_dim": 16, "depth": 1, "num_heads": 2, "decoder_embed_dim": 16, "decoder_depth": 1,
                     "decoder_num_heads": 2, "patch_size": 4, "image_size": 16, "grayscale": True, "batch_size": 8,
                     "eval_batch_size": 16}),
    "clip": (FMNIST, {**_FM, "batch_size": 8, "embed_dim": 32}),
    "lit": (FMNIST, {**_FM, "batch_size": 16}),
    "albef": (FMNIST, {**_FM, "batch_size": 16, "queue_size": 32, "fusion_layers": 1, "eval_batch_size": 15}),
    "vilt": (FMNIST, {**_FM, "batch_size": 16, "depth": 2, "width": 64}),
    "unclip_prior": (FMNIST, {**_FM, "batch_size": 32, "eval_samples": 4, "sample_steps": 4}),
    "unclip_decoder": (FMNIST, {**_FM, "batch_size": 8, "eval_images": 10, "eval_steps": 2, "channels": "8,16",
                                "mid_channels": 16}),
}
#: Recipes whose set-up embeds thousands of captions with MiniLM: not in the CPU dry run.
HEAVY_ON_CPU = ("clip", "lit", "albef", "vilt", "unclip_prior", "unclip_decoder")
COMMON = {"max_steps": STEPS, "log_every": 1, "checkpoint_every": STOP, "eval_every": 0}


class _Ctx:
    """What train_job reads from a job context."""

    def __init__(self, device: str):
        self.device = device


def shapes_dataset(settings) -> str:
    """The test suite's class folders of 16×16 stripes, bars and checks (12 each)."""
    from tests.engine.training import write_shapes

    root = settings.work / "shapes"
    if not root.exists():
        root.mkdir(parents=True)
        write_shapes(root, per_class=12, seed=0)
    return str(root)


def _run(settings, recipe: str, dataset: str, config: dict, run_dir: Path, stop_after: int | None = None,
         resume: bool = False):
    from engine.train.jobs import train_job
    from tests.engine.training import drive

    if resume:
        gen = train_job(_Ctx(settings.device), recipe, dataset, {}, resume=str(run_dir))
    else:
        gen = train_job(_Ctx(settings.device), recipe, dataset, config, run_dir=str(run_dir))
    return drive(gen, stop_after_step=stop_after)


def _checkpoint(run_dir: Path) -> dict:
    """Every tensor of the run's latest checkpoint: weights and resume state."""
    from engine.runs.checkpoint import RunFolder

    weights, state, _ = RunFolder(run_dir).load()
    return {**{f"w/{k}": v for k, v in weights.items()}, **{f"s/{k}": v for k, v in state.items()}}


def compare(a: dict, b: dict) -> tuple[bool, float, list[str]]:
    """(bit-identical, max |Δ| over float tensors, names that differ)."""
    import torch

    if a.keys() != b.keys():
        return False, float("inf"), sorted(set(a) ^ set(b))[:3]
    differ, worst = [], 0.0
    for k in a:
        x, y = a[k], b[k]
        same = x.shape == y.shape and (torch.equal(x, y) or x.is_floating_point() and bool(
            ((x == y) | (x.isnan() & y.isnan())).all()))  # unfilled rows (NaN) count as equal
        if not same:
            differ.append(k)
            if x.shape == y.shape and x.is_floating_point():
                worst = max(worst, float((x.double() - y.double()).abs().max()))
    return not differ, worst, differ[:3]


def recipe_check(settings, recipe: str) -> Row:
    from engine.data import fashion_mnist

    dataset_kind, tiny = RECIPES[recipe]
    if settings.quick and recipe in HEAVY_ON_CPU:
        return Row("training", recipe, "skip", detail="--quick: its MiniLM caption features take minutes on a CPU; "
                                                      "checked on CUDA (and on the CPU by tests/engine)")
    if dataset_kind == FMNIST and not fashion_mnist.is_available():
        return Row("training", recipe, "skip", detail="Fashion-MNIST is not installed (set PATCHWORK_FASHION_MNIST)")
    dataset = shapes_dataset(settings) if dataset_kind == SHAPES else FMNIST
    config = {**COMMON, **tiny}
    root = settings.work / "runs" / recipe
    straight, partials = _run(settings, recipe, dataset, config, root / "straight")
    losses = [p.get("loss") for p in partials if p.get("kind") == "train"]
    finite = all(v is None or np.isfinite(v) for v in losses)
    _run(settings, recipe, dataset, config, root / "stopped", stop_after=STOP)
    resumed, _ = _run(settings, recipe, dataset, config, root / "stopped", resume=True)
    same, worst, differ = compare(_checkpoint(root / "straight"), _checkpoint(root / "stopped"))
    amp = "bf16 autocast" if settings.cuda else "fp32 (amp is CUDA only)"
    ok = same and finite and straight["step"] == resumed["step"] == STEPS
    value = f"{STEPS} steps, {amp}; stop at {STOP} + resume: " + (
        "checkpoint bit-identical" if same else f"differs (max |Δ| {worst:.1e} in {', '.join(differ)})")
    return Row("training", recipe, PASS if ok else FAIL, value, "resume bit-identical",
               detail="" if finite else f"non-finite loss: {losses}", data={"max_abs_diff": worst, "losses": losses})


def recipe_checks(settings):
    est = 4.0 if settings.cuda else 6.0
    return [(name, (lambda n=name: recipe_check(settings, n)), est) for name in RECIPES]


# ---------------------------------------------------------------------------- torchrun
DDP_SETTINGS = {**_VIT, "max_steps": 4, "log_every": 1, "flip": False, "eval_every": 0}


def _torchrun() -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1"]


def torchrun_cli(settings) -> Row:
    """`torchrun --nproc_per_node=1 main.py train supervised ...` on the device, as the README says."""
    run_dir = settings.work / "ddp-cli"
    cmd = [*_torchrun(), "main.py", "--device", settings.device, "train", "supervised", "--dataset",
           shapes_dataset(settings), "--run-dir", str(run_dir), "--json"]
    cmd += [a for k, v in DDP_SETTINGS.items() for a in ("--set", f"{k}={json.dumps(v)}")]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=240)
    if proc.returncode != 0:
        return Row("ddp", "torchrun --nproc_per_node=1 main.py train", FAIL, f"exit {proc.returncode}",
                   detail=(proc.stderr.strip().splitlines() or ["(no stderr)"])[-1][:300])
    card = json.loads((run_dir / "card.json").read_text())
    ok = card.get("status") == "finished" and card.get("step") == DDP_SETTINGS["max_steps"]
    return Row("ddp", "torchrun --nproc_per_node=1 main.py train", PASS if ok else FAIL,
               f"status {card.get('status')}, step {card.get('step')}, distributed: {card.get('distributed')}",
               "finishes", detail="one process: the loop joins no group when WORLD_SIZE is 1")


def one_rank_group(settings) -> Row:
    """The loop's data-parallel path (broadcast, bucketed all-reduce, mean loss) in a one-rank
    group (NCCL on CUDA): the weights must equal a single-process run's."""
    data = shapes_dataset(settings)
    single, ddp = settings.work / "ddp-single", settings.work / "ddp-group"
    _run(settings, "supervised", data, DDP_SETTINGS, single)
    job = json.dumps({"run_dir": str(ddp), "dataset": data})
    proc = subprocess.run([*_torchrun(), str(Path(__file__).with_name("gpu_check.py")), "--device", settings.device,
                           "--ddp-worker", job], cwd=REPO, capture_output=True, text=True, timeout=240, env=os.environ)
    backend = "nccl" if settings.cuda else "gloo"
    name = f"one-rank {backend} group through the loop"
    if proc.returncode != 0:
        return Row("ddp", name, FAIL, f"exit {proc.returncode}",
                   detail=(proc.stderr.strip().splitlines() or ["(no stderr)"])[-1][:300])
    card = json.loads((ddp / "card.json").read_text())
    same, worst, differ = compare(_checkpoint(single), _checkpoint(ddp))
    got = (card.get("distributed") or {}).get("backend")
    ok = same and got == backend and card.get("status") == "finished"
    return Row("ddp", name, PASS if ok else FAIL,
               f"backend {got}, status {card.get('status')}; weights vs one process: "
               + ("bit-identical" if same else f"max |Δ| {worst:.1e} ({', '.join(differ)})"),
               f"{backend}, equal to one process")


def ddp_worker(job: str, device: str) -> int:
    """Inside torchrun: force the loop's process-group path even with WORLD_SIZE 1, train, exit."""
    from engine.device import select_device
    from engine.train import distributed

    spec = json.loads(job)
    distributed.requested = lambda: True  # one rank still joins a group: NCCL/gloo collectives run
    device = select_device(device)
    result, _ = _run_in_worker(device, spec)
    print(json.dumps({"status": result["status"], "step": result["step"]}))
    return 0 if result["status"] == "finished" else 1


def _run_in_worker(device: str, spec: dict):
    from engine.train.jobs import train_job
    from tests.engine.training import drive

    try:
        return drive(train_job(_Ctx(device), "supervised", spec["dataset"], DDP_SETTINGS, run_dir=spec["run_dir"]))
    finally:
        from engine.train import distributed

        distributed.shutdown()


def ddp_checks(settings):
    return [("torchrun CLI", lambda: torchrun_cli(settings), 20 if settings.cuda else 25),
            ("one-rank group", lambda: one_rank_group(settings), 25 if settings.cuda else 30)]
