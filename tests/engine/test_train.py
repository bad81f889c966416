"""Training: schedule, clipping, cancel, NaN, disk full, exact resume after kill -9, catalogue.

Every run here is tiny (a 1-2 block ViT of width 16-32, a few steps), so the file takes
seconds on two CPU cores. Loop tests use a generated class-folder dataset; the ones that
need Fashion-MNIST skip without the Debian package.
"""
from __future__ import annotations

import errno
import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.core import Engine
from engine.data import fashion_mnist
from engine.jobs import JobEvent, Priority
from engine.paths import runs_dir
from engine.runs import checkpoint
from engine.runs.checkpoint import RunFolder
from engine.errors import TrainingError
from engine.train.loop import WarmupCosine, train
from engine.train.recipes.supervised import SupervisedRecipe
from tests.engine.training import drive, write_shapes

REPO = Path(__file__).resolve().parents[2]
needs_fmnist = pytest.mark.skipif(
    not fashion_mnist.is_available(),
    reason="needs the real Fashion-MNIST: sudo apt install dataset-fashion-mnist, or the Train panel's Get Fashion-MNIST")

#: A ViT small enough that a step takes milliseconds.
TINY = {"embed_dim": 16, "depth": 1, "num_heads": 2, "patch_size": 4, "batch_size": 8, "image_size": 16,
        "grayscale": True, "log_every": 1, "eval_batch_size": 16}


@pytest.fixture(scope="module")
def shapes(tmp_path_factory) -> str:
    """A class-folder dataset: stripes, bars and checks, 12 noisy 16×16 images each."""
    return write_shapes(tmp_path_factory.mktemp("shapes"), per_class=12, seed=0)


def make_recipe(cls, dataset: str, **config):
    rec = cls({**TINY, **config}, dataset)
    for _ in rec.prepare():
        pass
    return rec


# ------------------------------------------------------------------------------ schedule
def test_schedule_warms_up_linearly_then_follows_a_cosine():
    s = WarmupCosine(peak=1e-3, floor=1e-5, warmup=10, total=110)
    assert [s(i) for i in range(3)] == pytest.approx([1e-4, 2e-4, 3e-4])
    assert s(9) == pytest.approx(1e-3)  # warm-up ends at the peak
    assert s(10) == pytest.approx(1e-3)  # cosine starts at the peak
    assert s(60) == pytest.approx(1e-5 + (1e-3 - 1e-5) * 0.5)  # half-way: the mean of peak and floor
    assert s(110) == pytest.approx(1e-5) and s(500) == pytest.approx(1e-5)
    rates = [s(i) for i in range(10, 111)]
    assert all(a >= b for a, b in zip(rates, rates[1:]))  # monotone after the warm-up
    assert WarmupCosine(1.0, 0.0, 0, 4)(0) == pytest.approx(1.0)


def test_learning_rate_logged_per_step_follows_the_schedule(shapes, tmp_path):
    rec = make_recipe(SupervisedRecipe, shapes, max_steps=6, warmup_steps=2, lr=1e-2, min_lr=0.0)
    drive(train(rec, RunFolder(tmp_path / "run"), "cpu"))
    logged = [r["lr"] for r in RunFolder(tmp_path / "run").read_metrics() if r["kind"] == "train"]
    s = WarmupCosine(1e-2, 0.0, 2, 6)
    assert logged == pytest.approx([s(i) for i in range(6)])


# ------------------------------------------------------------------------------ clipping
class LoudRecipe(SupervisedRecipe):
    """Multiplies the loss so gradients are huge; records the gradient norm the optimizer used."""

    def training_step(self, batch, step):
        loss, metrics = super().training_step(batch, step)
        return loss * 1e4, metrics

    def after_step(self, step):
        import torch

        grads = [p.grad for p in self.model.parameters() if p.grad is not None]
        self.applied = getattr(self, "applied", []) + [float(torch.linalg.vector_norm(
            torch.stack([torch.linalg.vector_norm(g) for g in grads])))]


def test_gradient_clipping_clips(shapes, tmp_path):
    rec = make_recipe(LoudRecipe, shapes, max_steps=3, grad_clip=0.5)
    drive(train(rec, RunFolder(tmp_path / "run"), "cpu"))
    before = [r["grad_norm"] for r in RunFolder(tmp_path / "run").read_metrics() if r["kind"] == "train"]
    assert min(before) > 100  # the unclipped norm, as logged
    assert max(rec.applied) == pytest.approx(0.5, rel=1e-4)  # what AdamW actually saw


# ------------------------------------------------------------------------------ cancel through the engine
def test_cancel_through_the_engine_stops_within_a_second_with_a_checkpoint(shapes):
    eng = Engine(device="cpu").start()
    assert eng.wait_ready(60)
    steps = []
    eng.add_listener(lambda e: steps.append(e.payload.done) if isinstance(e, JobEvent) and e.kind == "progress"
                     and e.payload.done else None)
    try:
        handle = eng.submit("train", {"recipe": "supervised", "dataset": shapes, "run_name": "cancelled",
                                      "config": {**TINY, "epochs": 10_000, "checkpoint_seconds": 1e9}},
                            priority=Priority.BACKGROUND)
        deadline = time.monotonic() + 60
        while (not steps or steps[-1] < 5) and time.monotonic() < deadline and not handle.wait(0):
            time.sleep(0.01)
        assert steps and steps[-1] >= 5, handle.info.error
        t0 = time.monotonic()
        handle.cancel()
        assert handle.wait(5)
        assert time.monotonic() - t0 < 1.0, "cancel took more than a second"
    finally:
        eng.shutdown()
    run = RunFolder(runs_dir() / "cancelled")
    card = run.read_card()
    assert card["status"] == "stopped" and card["step"] >= 5
    assert run.latest().name == f"step-{card['step']:09d}"  # the checkpoint written at the stop
    assert run.weights_path.is_file() and card["sha256"] == checkpoint.file_sha256(run.weights_path)


# ------------------------------------------------------------------------------ NaN
class NanAtStep3(SupervisedRecipe):
    """A real recipe whose loss turns NaN at step 3 (as a too-high learning rate would)."""

    def training_step(self, batch, step):
        loss, metrics = super().training_step(batch, step)
        return (loss * float("nan") if step == 3 else loss), metrics


def test_nan_loss_raises_training_error_naming_the_step_and_saves_nothing_corrupt(shapes, tmp_path):
    run = RunFolder(tmp_path / "nan")
    rec = make_recipe(NanAtStep3, shapes, max_steps=10, checkpoint_every=1)
    with pytest.raises(TrainingError, match="step 3") as err:
        drive(train(rec, run, "cpu"))
    assert err.value.step == 3 and "nan" in str(err.value)
    card = run.read_card()
    assert card["status"] == "failed" and "step 3" in card["error"]
    assert [p.name for p in run.checkpoints()] == ["step-000000002"]  # the last good one
    model_state, _, state = run.load()
    assert state["step"] == 2
    assert all(bool(t.isfinite().all()) for t in model_state.values())


# ------------------------------------------------------------------------------ disk full
def test_disk_full_while_saving_keeps_the_previous_checkpoint(shapes, tmp_path, monkeypatch):
    run = RunFolder(tmp_path / "full")
    rec = make_recipe(SupervisedRecipe, shapes, max_steps=10, checkpoint_every=2)
    real_write = checkpoint._write_synced
    calls = {"n": 0}

    def write(path, data):
        if "step-000000004" in str(path):
            calls["n"] += 1
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write(path, data)

    monkeypatch.setattr(checkpoint, "_write_synced", write)
    with pytest.raises(TrainingError, match="disk full") as err:
        drive(train(rec, run, "cpu"))
    assert calls["n"] == 1 and "step-000000002" in str(err.value) and "intact" in str(err.value)
    assert [p.name for p in run.checkpoints()] == ["step-000000002"]
    assert not any(p.name.startswith(".tmp") for p in (run.path / "checkpoints").iterdir())
    assert run.load()[2]["step"] == 2
    assert run.read_card()["status"] == "failed"


# ------------------------------------------------------------------------------ exact resume after kill -9
KILLED_RUN = textwrap.dedent("""
    import os, signal, sys
    from engine.runs.checkpoint import RunFolder
    from engine.train.jobs import train_job

    class Ctx:
        device = "cpu"
        cancelled = False

    run_dir, dataset, config = sys.argv[1], sys.argv[2], eval(sys.argv[3])
    gen = train_job(Ctx(), "supervised", dataset, config, run_dir=run_dir)
    for item in gen:
        # Killed three steps after the checkpoint at step 10: those steps are lost.
        if getattr(item, "message", "").startswith("step 13/"):
            assert RunFolder(run_dir).latest().name == "step-000000010"
            os.kill(os.getpid(), signal.SIGKILL)
    print("finished without being killed")
""")


def test_resume_after_kill_9_gives_the_same_losses_as_an_uninterrupted_run(shapes, tmp_path):
    config = {**TINY, "max_steps": 24, "checkpoint_every": 10, "embed_dim": 32, "depth": 2,
              "drop_path_rate": 0.1}  # drop-path draws from torch's RNG: resume must restore it
    killed = tmp_path / "killed"
    proc = subprocess.run([sys.executable, "-c", KILLED_RUN, str(killed), shapes, repr(config)], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == -9, (proc.stdout, proc.stderr)
    card = RunFolder(killed).read_card()
    assert card["status"] == "running"  # kill -9: no finally ran
    assert RunFolder(killed).load()[2]["step"] == 10

    resumed = subprocess.run([sys.executable, str(REPO / "main.py"), "train", "supervised", "--resume", str(killed),
                              "--json", "--device", "cpu"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    result = json.loads(resumed.stdout.splitlines()[-1])
    assert result["kind"] == "result" and result["status"] == "finished" and result["step"] == 24

    straight = RunFolder(tmp_path / "straight")
    rec = make_recipe(SupervisedRecipe, shapes, **config)
    drive(train(rec, straight, "cpu"))

    def losses(run):
        return {r["step"]: r["loss"] for r in run.read_metrics() if r["kind"] == "train"}

    a, b = losses(RunFolder(killed)), losses(straight)
    assert sorted(a) == list(range(1, 25)) == sorted(b)  # steps 11-13 of the killed run were dropped
    for step in range(11, 25):
        assert abs(a[step] - b[step]) <= 1e-6, (step, a[step], b[step])
    assert RunFolder(killed).read_card()["status"] == "finished"


def test_resume_refuses_changed_settings(shapes, tmp_path):
    from engine.train.jobs import train_job

    class Ctx:
        device = "cpu"

    run_dir = tmp_path / "short"
    drive(train_job(Ctx(), "supervised", shapes, {**TINY, "max_steps": 2}, run_dir=str(run_dir)))
    with pytest.raises(TrainingError, match="already holds a run"):
        drive(train_job(Ctx(), "supervised", shapes, {**TINY, "max_steps": 2}, run_dir=str(run_dir)))
    with pytest.raises(TrainingError, match="embed_dim"):  # the architecture: the checkpoint would not fit
        drive(train_job(Ctx(), "supervised", shapes, {"embed_dim": 64}, resume=str(run_dir)))
    with pytest.raises(TrainingError, match="already finished"):
        drive(train_job(Ctx(), "supervised", shapes, {}, resume=str(run_dir)))


def test_unknown_settings_are_refused_with_the_known_ones():
    with pytest.raises(TrainingError, match="unknown config key.*lerning_rate.*known:.*batch_size"):
        SupervisedRecipe({"lerning_rate": 1}, "fashion-mnist")
    with pytest.raises(TrainingError, match="batch_size"):
        SupervisedRecipe({"batch_size": "many"}, "fashion-mnist")


# ------------------------------------------------------------------------------ command line
def test_cli_prints_json_lines_and_ctrl_c_stops_with_a_checkpoint(shapes, tmp_path):
    import signal

    run_dir = tmp_path / "cli-run"
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "main.py"), "train", "supervised", "--dataset", shapes, "--json",
         "--run-dir", str(run_dir), "--device", "cpu", *[f"--set={k}={json.dumps(v)}" for k, v in TINY.items()],
         "--set", "epochs=100000", "--set", "log_every=5"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = json.loads(proc.stdout.readline())  # blocks until the first record
        while first["kind"] != "train":  # an epoch is 3 steps: evaluations come first
            assert first["kind"] == "eval" and 0 <= first["accuracy"] <= 1
            first = json.loads(proc.stdout.readline())
        assert first["step"] % 5 == 0
        assert {"loss", "lr", "samples_per_s", "eta_s", "epoch"} <= set(first)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "--resume" in err and "Traceback" not in err
    for line in out.splitlines():
        json.loads(line)  # every line is JSON
    card = RunFolder(run_dir).read_card()
    assert card["status"] == "stopped" and RunFolder(run_dir).latest() is not None


def test_cli_reports_bad_settings_as_usage_errors(tmp_path):
    proc = subprocess.run([sys.executable, str(REPO / "main.py"), "train", "supervised", "--set", "nonsense"],
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "expected KEY=VALUE" in proc.stderr


# ------------------------------------------------------------------------------ catalogue
@needs_fmnist
def test_finished_run_is_in_the_catalogue_and_classifies_a_fashion_mnist_image(tmp_path):
    from engine import catalogue

    test = fashion_mnist.load_fashion_mnist("test")
    image = tmp_path / "ankle-boot.png"
    Image.fromarray(test.images[0]).save(image)
    assert test.labels[0] == 9

    eng = Engine(device="cpu").start()
    assert eng.wait_ready(60)
    try:
        result = eng.submit("train", {"recipe": "supervised", "dataset": "fashion-mnist", "run_name": "fm-tiny",
                                      "config": {"embed_dim": 32, "depth": 1, "num_heads": 2, "batch_size": 64,
                                                 "max_steps": 20, "train_limit": 1280, "test_limit": 200,
                                                 "log_every": 5}},
                            priority=Priority.BACKGROUND).result(120)
        assert result["status"] == "finished" and 0 <= result["metrics"]["accuracy"] <= 1
        confusion = result["metrics"]["confusion_matrix"]
        assert isinstance(confusion, np.ndarray) and confusion.shape == (10, 10) and confusion.sum() == 200
        ids = [e.id for e in catalogue.entries("classify")]
        assert "run-fm-tiny" in ids and "run-fm-tiny" in [e.id for e in catalogue.entries("attention")]
        entry = catalogue.get("run-fm-tiny")
        assert entry.family == "classifier" and entry.preprocess.grayscale and entry.labels == "fashion_mnist"
        res = eng.submit("classify", {"path": str(image), "model_id": "run-fm-tiny", "top_k": 3,
                                      "preview": False}).result(60)
    finally:
        eng.shutdown()
    assert len(res.top) == 3 and res.top[0].label in fashion_mnist.class_names()
    assert 0.0 < sum(p.prob for p in res.top) <= 1.0 + 1e-6
    card = RunFolder(runs_dir() / "fm-tiny").read_card()
    assert card["command"].startswith("python main.py train supervised --dataset fashion-mnist")
    assert "--set max_steps=20" in card["command"]
    assert len(card["metrics"]["per_class_accuracy"]) == 10


@needs_fmnist
def test_builtin_fashion_mnist_vit_classifies_test_images():
    from engine import catalogue
    from engine.catalogue.load import build_model
    from engine.preprocess import to_input

    entry = catalogue.get("fmnist-vit-tiny")
    model = build_model(entry)  # checks the SHA-256 too
    test = fashion_mnist.load_fashion_mnist("test")
    import torch

    x = np.stack([to_input(Image.fromarray(img).convert("RGB"), entry.preprocess) for img in test.images[:500]])
    with torch.inference_mode():
        pred = model(torch.from_numpy(x)).argmax(-1).numpy()
    assert (pred == test.labels[:500]).mean() >= 0.85
    card = json.loads((REPO / "resources/checkpoints/fmnist-vit-tiny/card.json").read_text())
    assert card["metrics"]["accuracy"] >= 0.88 and card["status"] == "finished"
