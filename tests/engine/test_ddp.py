"""Data-parallel training under torchrun on the CPU (gloo, 2 processes): the same steps as one
process with the same global batch, one card and checkpoint written by rank 0 only, and a
MoCo-style gather that returns every rank's rows in rank order."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from engine.data import fashion_mnist
from tests.engine.test_train import REPO, TINY, shapes  # noqa: F401  (fixture)

SETTINGS = {**TINY, "max_steps": 6, "flip": False, "log_every": 2, "lr": 3e-3}


def _train_cmd(dataset: str, run_dir: Path) -> list[str]:
    cmd = ["main.py", "--device", "cpu", "train", "supervised", "--dataset", dataset, "--run-dir", str(run_dir),
           "--json"]
    for k, v in SETTINGS.items():
        cmd += ["--set", f"{k}={json.dumps(v)}"]
    return cmd


def _torchrun(nproc: int) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"]


def test_two_gloo_ranks_take_the_same_steps_as_one_process(shapes, tmp_path):  # noqa: F811
    single, ddp = tmp_path / "single", tmp_path / "ddp"
    one = subprocess.run([sys.executable, *_train_cmd(shapes, single)], cwd=REPO, capture_output=True, text=True,
                         timeout=240)
    assert one.returncode == 0, one.stderr
    two = subprocess.run([*_torchrun(2), *_train_cmd(shapes, ddp)], cwd=REPO, capture_output=True, text=True,
                         timeout=240)
    assert two.returncode == 0, two.stderr[-3000:]

    a, b = load_file(str(single / "model.safetensors")), load_file(str(ddp / "model.safetensors"))
    assert a.keys() == b.keys()
    worst = max(float(np.abs(a[k] - b[k]).max()) for k in a)
    assert worst < 1e-4, worst  # averaged gradients of two half batches = the full batch's gradient
    changed = max(float(np.abs(a[k]).max()) for k in a)
    assert changed > 0

    card = json.loads((ddp / "card.json").read_text())
    assert card["status"] == "finished" and card["step"] == 6
    assert card["distributed"] == {"world_size": 2, "backend": "gloo"}
    # rank 0 alone printed and logged: each step once (printing may skip throttled events)
    printed = [json.loads(ln)["step"] for ln in two.stdout.splitlines() if ln.startswith("{") and '"train"' in ln]
    assert printed and len(printed) == len(set(printed))
    logged = [json.loads(ln) for ln in (ddp / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in logged if r["kind"] == "train"] == [2, 4, 6]
    logged_one = [json.loads(ln) for ln in (single / "metrics.jsonl").read_text().splitlines()]
    assert np.allclose([r["loss"] for r in logged_one if r["kind"] == "train"],
                       [r["loss"] for r in logged if r["kind"] == "train"], atol=1e-5)


GATHER = textwrap.dedent("""
    import torch
    from engine.train import distributed
    dist, _ = distributed.init("cpu")
    rows = torch.full((2, 3), float(dist.rank))
    out = distributed.all_gather_concat(rows)
    assert out.shape == (4, 3) and out[:2].eq(0).all() and out[2:].eq(1).all(), out
    g = torch.ones(5) * (dist.rank + 1)
    p = torch.nn.Parameter(torch.zeros(5)); p.grad = g
    distributed.average_gradients([p])
    assert torch.allclose(p.grad, torch.full((5,), 1.5)), p.grad
    from engine.data.shard import shard
    idx = shard(list(range(8)))
    assert idx == [dist.rank, dist.rank + 2, dist.rank + 4, dist.rank + 6], idx
    distributed.shutdown()
    open(sys.argv[1] + f".rank{dist.rank}", "w").write("ok")
""")


def test_gather_average_and_shard_across_two_ranks(tmp_path):
    script = tmp_path / "gather.py"
    script.write_text(f"import sys; sys.path.insert(0, {str(REPO)!r})\n" + GATHER)
    marker = tmp_path / "done"
    out = subprocess.run([*_torchrun(2), str(script), str(marker)], cwd=REPO, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    assert [(tmp_path / f"done.rank{r}").read_text() for r in (0, 1)] == ["ok", "ok"]


def test_batch_that_does_not_split_over_the_ranks_is_refused(shapes, tmp_path):  # noqa: F811
    cmd = _train_cmd(shapes, tmp_path / "odd")
    i = cmd.index(f"batch_size={json.dumps(TINY['batch_size'])}")
    cmd[i] = "batch_size=7"
    out = subprocess.run([*_torchrun(2), *cmd], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    assert "does not split evenly over 2 processes" in out.stderr


# Each rank holds rows [rank·n, (rank+1)·n) of a batch of B: the gathered losses, averaged over the
# ranks, must equal the one-process loss on all B, and so must their gradients (the loop divides
# the summed gradients by the world size).
BATCH_LOSSES = textwrap.dedent("""
    import torch
    from engine.models.lit import clip_loss
    from engine.train import distributed
    from engine.train.moco import contrastive_loss_v3
    from engine.train.nt_xent import nt_xent, positives_negatives
    dist, _ = distributed.init("cpu")
    B, D, n = 8, 5, 4
    g = torch.Generator().manual_seed(0)
    a, b = (torch.nn.functional.normalize(torch.randn(B, D, generator=g), dim=1) for _ in range(2))
    scale = torch.tensor(2.0)
    own = slice(dist.rank * n, (dist.rank + 1) * n)

    def check(name, full_loss, local_loss):
        x, y = a.clone().requires_grad_(), b.clone().requires_grad_()
        s = scale.clone().requires_grad_()
        full_loss(x, y, s).backward()
        xl, yl = a[own].clone().requires_grad_(), b[own].clone().requires_grad_()
        sl = scale.clone().requires_grad_()
        loss = local_loss(xl, yl, sl)
        loss.backward()
        mean = distributed.mean_scalar(float(loss), "cpu")
        assert abs(mean - float(full_loss(a, b, scale))) < 1e-5, (name, mean)
        assert torch.allclose(xl.grad / dist.world, x.grad[own], atol=1e-6), name
        if yl.grad is not None:
            assert torch.allclose(yl.grad / dist.world, y.grad[own], atol=1e-6), name
        p = torch.nn.Parameter(torch.zeros(1)); p.grad = sl.grad.view(1).clone()
        distributed.average_gradients([p])
        assert torch.allclose(p.grad, s.grad.view(1), atol=1e-6), name

    gather, off = distributed.gather_with_grad, distributed.row_offset(n)
    check("clip", lambda x, y, s: clip_loss(x, y, s)[0], lambda x, y, s: clip_loss(x, y, s, gather, off)[0])
    check("simclr", lambda x, y, s: nt_xent(x * s, y, 0.2)[0], lambda x, y, s: nt_xent(x * s, y, 0.2, gather, off)[0])
    check("moco v3", lambda x, y, s: contrastive_loss_v3(x * s, y, 0.2)[0],
          lambda x, y, s: contrastive_loss_v3(x * s, y, 0.2, distributed.all_gather_concat, off)[0])
    # the monitors read a rank's (2n, 2B) block as they read the square matrix
    _, sim, target = nt_xent(a[own], b[own], 0.2, gather, off)
    _, full_sim, full_target = nt_xent(a, b, 0.2)
    pos, neg, _ = positives_negatives(sim, target)
    rows = torch.cat([torch.arange(B)[own], B + torch.arange(B)[own]])
    assert torch.allclose(pos, full_sim[rows, full_target[rows]]) and len(neg) == 2 * n * (2 * B - 2)
    distributed.shutdown()
    open(sys.argv[1] + f".rank{dist.rank}", "w").write("ok")
""")


def _run_two_ranks(tmp_path, name: str, body: str) -> None:
    script = tmp_path / f"{name}.py"
    script.write_text(f"import sys; sys.path.insert(0, {str(REPO)!r})\n" + body)
    marker = tmp_path / name
    out = subprocess.run([*_torchrun(2), str(script), str(marker)], cwd=REPO, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    assert [(tmp_path / f"{name}.rank{r}").read_text() for r in (0, 1)] == ["ok", "ok"]


def test_in_batch_losses_see_every_ranks_rows_as_negatives(tmp_path):
    _run_two_ranks(tmp_path, "losses", BATCH_LOSSES)


@pytest.mark.skipif(not fashion_mnist.is_available(), reason="needs the real Fashion-MNIST: sudo apt install dataset-fashion-mnist, or the Train panel's Get Fashion-MNIST")
def test_two_ranks_train_lit_as_one_process_does(tmp_path):
    """CLIP's negatives are the whole batch: two ranks of half a batch each, gathering with
    gradient, end with the weights one process reaches on the full batch."""
    settings = {"max_steps": 3, "batch_size": 16, "train_limit": 64, "test_limit": 20, "eval_every": 0,
                "flip": False, "log_every": 1, "lr": 3e-3}
    cmd = lambda run: ["main.py", "--device", "cpu", "train", "lit", "--dataset", "fashion-mnist",  # noqa: E731
                       "--run-dir", str(run), "--json", *[a for k, v in settings.items()
                                                          for a in ("--set", f"{k}={json.dumps(v)}")]]
    one = subprocess.run([sys.executable, *cmd(tmp_path / "one")], cwd=REPO, capture_output=True, text=True,
                         timeout=240)
    assert one.returncode == 0, one.stderr[-3000:]
    two = subprocess.run([*_torchrun(2), *cmd(tmp_path / "two")], cwd=REPO, capture_output=True, text=True,
                         timeout=240)
    assert two.returncode == 0, two.stderr[-3000:]
    a, b = load_file(str(tmp_path / "one" / "model.safetensors")), load_file(str(tmp_path / "two" / "model.safetensors"))
    assert a.keys() == b.keys()
    worst = max(float(np.abs(a[k] - b[k]).max()) for k in a)
    # Measured: 1.3e-4 (float rounding that Adam's first steps magnify); each rank scoring only
    # its own half as negatives ends 1.5e-2 away.
    assert worst < 1e-3, worst
