"""Linear probe and fine-tune from catalogue backbones; the runs list (a killed run is
"interrupted" and resumable); out-of-memory messages; the recipe list; `main.py train moco_v2`."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.paths import runs_dir
from engine.runs.checkpoint import RunFolder, tensors_from_file
from engine.errors import TrainingError
from engine.train.jobs import train_job
from engine.train.recipes.probe import labelled_subset
from engine.runs.listing import INTERRUPTED, effective_status, list_runs, mark_active, mark_inactive
from tests.engine.training import drive, one_thread, write_shapes  # noqa: F401  (one_thread: autouse)

REPO = Path(__file__).resolve().parents[2]
TINY_MOCO = {"width": 4, "batch_size": 8, "bn_splits": 2, "K": 16, "dim": 8, "image_size": 16, "grayscale": True,
             "log_every": 1, "knn_k": 5, "eval_batch_size": 16}


class Ctx:
    device = "cpu"
    models = None


@pytest.fixture(scope="module")
def shapes(tmp_path_factory) -> str:
    return write_shapes(tmp_path_factory.mktemp("probe-shapes"), per_class=10, seed=2)


def run_to_end(gen):
    return drive(gen)[0]


# ------------------------------------------------------------------------------ probe / fine-tune
def test_labelled_subset_is_class_balanced_and_seeded():
    labels = np.repeat(np.arange(10), 600)
    one = labelled_subset(labels, 0.01, seed=0)
    assert len(one) == 60 and np.bincount(labels[one]).tolist() == [6] * 10
    assert np.array_equal(one, labelled_subset(labels, 0.01, seed=0))
    assert not np.array_equal(one, labelled_subset(labels, 0.01, seed=1))
    assert len(labelled_subset(np.array([0, 1, 1]), 0.01, 0)) == 2  # at least one per class


def test_probe_keeps_the_builtin_backbone_frozen_and_fine_tune_moves_it(shapes, tmp_path):
    from engine import catalogue
    from engine.catalogue.load import build_model

    builtin = tensors_from_file(REPO / "resources/checkpoints/fmnist-vit-tiny/model.safetensors")
    probe = run_to_end(train_job(Ctx(), "linear_probe", shapes, {"max_steps": 6, "batch_size": 8, "log_every": 2},
                                 run_name="probe-shapes"))
    assert probe["status"] == "finished" and 0 <= probe["metrics"]["accuracy"] <= 1
    saved = tensors_from_file(Path(probe["run_dir"]) / "model.safetensors")
    backbone = {k[len("extractor.model."):]: v for k, v in saved.items() if k.startswith("extractor.model.")}
    assert backbone.keys() == builtin.keys()
    assert all(torch.equal(backbone[k], builtin[k]) for k in builtin)  # frozen

    card = RunFolder(probe["run_dir"]).read_card()
    assert card["probe"]["mode"] == "linear_probe" and card["probe"]["backbone"] == "fmnist-vit-tiny"
    entry = catalogue.get("run-probe-shapes")
    assert entry.family == "classifier" and "classify" in entry.panels and entry.preprocess.input_size == 28
    model = build_model(entry)
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        assert model(x).shape == (2, 3)

    # backbone_lr_scale 0: the loop gives the backbone's group no learning rate at all
    frozen = run_to_end(train_job(Ctx(), "finetune", shapes, {"max_steps": 3, "batch_size": 8,
                                                              "backbone_lr_scale": 0.0}, run_dir=str(tmp_path / "ft0")))
    saved = tensors_from_file(Path(frozen["run_dir"]) / "model.safetensors")
    assert all(torch.equal(saved["extractor.model." + k], v) for k, v in builtin.items() if "num_batches" not in k)
    moved = run_to_end(train_job(Ctx(), "finetune", shapes, {"max_steps": 3, "batch_size": 8},
                                 run_dir=str(tmp_path / "ft")))
    saved = tensors_from_file(Path(moved["run_dir"]) / "model.safetensors")
    assert not torch.equal(saved["extractor.model.blocks.0.attn.qkv.weight"], builtin["blocks.0.attn.qkv.weight"])
    assert RunFolder(moved["run_dir"]).read_card()["probe"]["mode"] == "finetune"


def test_probe_on_an_ssl_backbone_trained_here(shapes):
    ssl = run_to_end(train_job(Ctx(), "moco_v2", shapes, {**TINY_MOCO, "max_steps": 3}, run_name="ssl-for-probe"))
    assert ssl["status"] == "finished"
    probe = run_to_end(train_job(Ctx(), "linear_probe", shapes, {"backbone": "run-ssl-for-probe", "max_steps": 4,
                                                                 "batch_size": 8, "label_fraction": 0.5}))
    card = RunFolder(probe["run_dir"]).read_card()
    assert card["probe"]["feature_dim"] == 16 and card["dataset"]["train_size"] == 12  # half of 8 per class
    with pytest.raises(TrainingError, match="no feature extractor"):
        run_to_end(train_job(Ctx(), "linear_probe", shapes, {"backbone": "minilm-l6-v2", "max_steps": 1},
                             run_name="not-a-backbone"))


# ------------------------------------------------------------------------------ runs list
def test_moco_v2_from_the_cli_killed_mid_run_lists_as_interrupted_and_resumes(shapes):
    """`main.py train moco_v2 --json` streams JSON lines; kill -9 leaves a card saying "running";
    the runs list shows the run as interrupted and resumable; resume finishes it."""
    config = {**TINY_MOCO, "max_steps": 40, "checkpoint_every": 4}
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "main.py"), "train", "moco_v2", "--dataset", shapes, "--json", "--device", "cpu",
         "--run-name", "killed", *[f"--set={k}={json.dumps(v)}" for k, v in config.items()]],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    records = []
    try:
        for line in proc.stdout:
            records.append(json.loads(line))
            if records[-1]["kind"] == "train" and records[-1]["step"] >= 5:
                proc.send_signal(signal.SIGKILL)  # after the checkpoint at step 4
                break
        proc.wait(60)
    finally:
        proc.kill()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read()
    train_lines = [r for r in records if r["kind"] == "train"]
    assert {"loss", "lr", "samples_per_s", "acc", "pos_sim", "neg_sim", "queue_fill"} <= set(train_lines[-1])
    logged = RunFolder(runs_dir() / "killed").read_metrics()  # every record, even those the engine thinned
    assert any(r["kind"] == "eval" and 0 <= r["knn_acc"] <= 1 for r in logged)  # an epoch is 3 steps

    path = runs_dir() / "killed"
    card = RunFolder(path).read_card()
    assert card["status"] == "running" and card["command"].startswith("python main.py train moco_v2")
    row = next(r for r in list_runs() if r.name == "killed")
    assert row.status == INTERRUPTED and row.resumable and row.step % 4 == 0 and 4 <= row.step < 40
    from engine import catalogue

    assert catalogue.get(row.model_id).family == "ssl-backbone"  # its last checkpoint is usable

    mark_active(path)  # as while this process trains it: not resumable twice
    try:
        assert next(r for r in list_runs() if r.name == "killed").status == "running"
        with pytest.raises(TrainingError, match="still training"):
            run_to_end(train_job(Ctx(), None, resume="killed"))
    finally:
        mark_inactive(path)
    result = run_to_end(train_job(Ctx(), None, resume="killed"))
    assert result["status"] == "finished" and result["step"] == 40
    steps = [r["step"] for r in RunFolder(path).read_metrics() if r["kind"] == "train"]
    assert steps == list(range(1, 41))  # the killed steps after the checkpoint were dropped and redone
    row = next(r for r in list_runs() if r.name == "killed")
    assert row.status == "finished" and not row.resumable and row.best_name == "knn_acc"


def test_running_card_of_a_live_process_counts_only_if_its_start_time_matches(tmp_path):
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        from engine.runs.listing import process_start_token

        token = process_start_token(child.pid)
        card = {"status": "running", "pid": child.pid, "process_started": token}
        assert effective_status(card, tmp_path) == "running"
        assert effective_status({**card, "process_started": "1"}, tmp_path) == INTERRUPTED  # a reused PID
        assert effective_status({**card, "pid": os.getpid()}, tmp_path) == INTERRUPTED  # not training here
    finally:
        child.kill()
        child.wait()
    assert effective_status(card, tmp_path) == INTERRUPTED


def test_delete_run_refuses_while_training_then_deletes(shapes):
    from engine.train.requests import delete_run_job, run_history_job

    run_to_end(train_job(Ctx(), "supervised", shapes, {"max_steps": 2, "batch_size": 8, "embed_dim": 16, "depth": 1,
                                                       "num_heads": 2, "image_size": 16, "log_every": 1},
                         run_name="to-delete"))
    hist = run_history_job(None, "to-delete")
    assert [r["step"] for r in hist["train"]] == [1, 2] and hist["eval"] and hist["info"].status == "finished"
    mark_active(runs_dir() / "to-delete")
    try:
        with pytest.raises(TrainingError, match="stop it"):
            delete_run_job(Ctx(), "to-delete")
    finally:
        mark_inactive(runs_dir() / "to-delete")
    assert delete_run_job(Ctx(), "to-delete") == "to-delete" and not (runs_dir() / "to-delete").exists()


# ------------------------------------------------------------------------------ out of memory
def test_out_of_memory_in_a_step_or_in_evaluation_names_a_smaller_batch(shapes, tmp_path):
    from engine.train.loop import train
    from engine.train.recipes.supervised import SupervisedRecipe

    class OOMStep(SupervisedRecipe):
        def training_step(self, batch, step):
            if step == 2:
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
            return super().training_step(batch, step)

    class OOMEval(SupervisedRecipe):
        def evaluate(self):
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 8.00 GiB")

    tiny = {"embed_dim": 16, "depth": 1, "num_heads": 2, "batch_size": 8, "image_size": 16, "max_steps": 3}
    for cls, pattern in ((OOMStep, r"step 2 with batch_size 8: try half of it \(--set batch_size=4\)"),
                         (OOMEval, "outside a training step.*eval_batch_size")):
        rec = cls(tiny, shapes)
        for _ in rec.prepare():
            pass
        run = RunFolder(tmp_path / cls.__name__)
        with pytest.raises(TrainingError, match=pattern):
            run_to_end(train(rec, run, "cpu"))
        assert run.read_card()["status"] == "failed" and "batch" in run.read_card()["error"]


# ------------------------------------------------------------------------------ disk space
TINY_VIT = {"embed_dim": 16, "depth": 1, "num_heads": 2, "batch_size": 8, "image_size": 16, "log_every": 1}


def test_a_disk_too_small_for_the_checkpoints_refuses_before_training(shapes, tmp_path, monkeypatch):
    import collections

    from engine.runs import checkpoint

    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(checkpoint.shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 2**20, 2**20))
    with pytest.raises(TrainingError, match=r"not enough disk space.*MB needed, 1 MB free"):
        run_to_end(train_job(Ctx(), "supervised", shapes, {**TINY_VIT, "max_steps": 2}, run_dir=str(tmp_path / "r")))
    assert not (tmp_path / "r" / "checkpoints").exists()


def test_disk_full_while_writing_the_card_keeps_the_checkpoint_and_resumes(shapes, tmp_path, monkeypatch):
    import errno

    from engine.runs import checkpoint

    real = checkpoint._write_synced
    full = {"on": False}

    def write(path, data):
        if full["on"] and "card.json" in str(path):
            raise OSError(errno.ENOSPC, "No space left on device")
        if "step-000000002" in str(path):
            full["on"] = True  # the disk fills up while the checkpoint at step 2 is written
        real(path, data)

    monkeypatch.setattr(checkpoint, "_write_synced", write)
    run_dir = tmp_path / "card-full"
    with pytest.raises(TrainingError, match="disk full while writing .*card.json: the last checkpoint "
                                            r"\(step-000000002\) is intact"):
        run_to_end(train_job(Ctx(), "supervised", shapes, {**TINY_VIT, "max_steps": 5, "checkpoint_every": 2},
                             run_dir=str(run_dir)))
    monkeypatch.setattr(checkpoint, "_write_synced", real)  # space freed
    assert RunFolder(run_dir).latest().name == "step-000000002"
    result = run_to_end(train_job(Ctx(), None, resume=str(run_dir)))
    assert result["status"] == "finished" and result["step"] == 5


# ------------------------------------------------------------------------------ recipes and CLI
def test_recipe_list_has_every_registered_recipe_with_its_settings():
    from engine.train.recipes import RECIPES
    from engine.train.requests import recipes_job

    infos = {r.name: r for r in recipes_job(None)}
    assert list(infos) == list(RECIPES)
    moco = infos["moco_v2"]
    assert moco.available and moco.dataset_kinds == ("fashion-mnist", "classes", "unlabelled")
    fields = {f.name: f for f in moco.fields}
    assert fields["K"].default == 4096 and fields["K"].type == "int" and "queue" in fields["K"].help
    assert fields["lr"].type == "float" and fields["amp"].type == "bool"
    assert moco.choices["backbone"] == ("resnet", "vit")
    assert infos["finetune"].uses_backbone and {f.name for f in infos["finetune"].fields} >= {"label_fraction"}
    for info in infos.values():
        assert info.available or info.error  # a recipe whose module is missing says why
