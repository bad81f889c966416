"""Training recovery: the NaN advice works as written, safe settings change on resume (and the
card says so), leftovers of a killed save are swept, a damaged checkpoint is named with a way
back, and a refused run leaves no folder."""
from __future__ import annotations

import shlex
import shutil

import pytest

from engine.runs import checkpoint
from engine.runs.checkpoint import RunFolder
from engine.errors import TrainingError
from engine.train.jobs import train_job
from engine.train.loop import train
from engine.train.recipes.supervised import SupervisedRecipe
from tests.engine.test_train import TINY, NanAtStep3, make_recipe, shapes  # noqa: F401 - the fixture
from tests.engine.training import drive, one_thread  # noqa: F401 - autouse fixture


class Ctx:
    device = "cpu"


def test_the_nan_advice_is_a_command_that_resumes_with_a_lower_lr(shapes, tmp_path, capsys):
    from main import main

    run = RunFolder(tmp_path / "nan")
    rec = make_recipe(NanAtStep3, shapes, max_steps=6, checkpoint_every=1)
    with pytest.raises(TrainingError) as err:
        drive(train(rec, run, "cpu", dataset_spec=shapes))
    advice = str(err.value).split("lower learning rate: ")[1].split(" (or")[0]
    argv = shlex.split(advice)
    assert argv[:3] == ["python", "main.py", "train"] and "--resume" in argv and "--set" in argv
    assert main(argv[2:] + ["--device", "cpu"]) == 0, capsys.readouterr().err
    card = run.read_card()
    assert card["status"] == "finished" and card["step"] == 6
    change = card["resumed_with"][-1]
    assert change["step"] == 2 and change["changes"]["lr"][1] == pytest.approx(card["config"]["lr"])
    assert change["changes"]["lr"][1] < change["changes"]["lr"][0]


def test_resume_may_lengthen_a_run_and_sweeps_a_killed_save(shapes, tmp_path):
    run_dir = tmp_path / "run"
    drive(train_job(Ctx(), "supervised", shapes, {**TINY, "max_steps": 2, "checkpoint_every": 1}, run_dir=str(run_dir)))
    leftover = run_dir / "checkpoints" / ".tmp-step-000000003.999999"  # kill -9 in the middle of a save
    leftover.mkdir()
    (leftover / "model.safetensors").write_bytes(b"\0" * 4096)
    (run_dir / ".tmp-model.safetensors.999999").write_bytes(b"\0")
    result, _ = drive(train_job(Ctx(), "supervised", shapes, {"max_steps": 4, "log_every": 2}, resume=str(run_dir)))
    assert result["step"] == 4
    assert not leftover.exists() and not (run_dir / ".tmp-model.safetensors.999999").exists()
    card = RunFolder(run_dir).read_card()
    assert card["resumed_with"][0]["changes"] == {"max_steps": [2, 4], "log_every": [1, 2]}


def test_a_damaged_checkpoint_is_named_and_the_previous_one_offered(shapes, tmp_path):
    run_dir = tmp_path / "run"
    drive(train_job(Ctx(), "supervised", shapes, {**TINY, "max_steps": 4, "checkpoint_every": 2,
                                                   "keep_checkpoints": 2}, run_dir=str(run_dir)))
    run = RunFolder(run_dir)
    damaged = run.latest()
    assert [p.name for p in run.checkpoints()] == ["step-000000002", "step-000000004"]
    (damaged / "model.safetensors").write_bytes(b"not safetensors at all")
    with pytest.raises(TrainingError) as err:
        drive(train_job(Ctx(), "supervised", shapes, {"max_steps": 6}, resume=str(run_dir)))
    message = str(err.value)
    assert str(damaged / "model.safetensors") in message and "step-000000002 is intact" in message
    src, dst = shlex.split(message.split("(mv ")[1].split(")")[0])  # follow the advice as written
    shutil.move(src, dst)
    result, _ = drive(train_job(Ctx(), "supervised", shapes, {"max_steps": 6}, resume=str(run_dir)))
    assert result["step"] == 6


def test_a_run_refused_for_disk_space_leaves_no_folder(shapes, tmp_path, monkeypatch):
    class Tiny:
        free = 1024

    monkeypatch.setattr(checkpoint.shutil, "disk_usage", lambda path: Tiny)
    run_dir = tmp_path / "runs" / "refused"
    with pytest.raises(TrainingError, match="not enough disk space"):
        drive(train_job(Ctx(), "supervised", shapes, {**TINY, "max_steps": 2}, run_dir=str(run_dir)))
    assert not run_dir.exists()


# ------------------------------------------------------------------------------ Stop inside a long step
@pytest.mark.parametrize("where", ["forward", "backward"])
def test_stop_inside_a_step_undoes_it_and_resume_is_exact(shapes, tmp_path, monkeypatch, where):
    from engine.jobs import Partial, Progress
    from engine.train import interrupt

    monkeypatch.setattr(interrupt, "LONG_STEP_S", 0.0)  # guard every step, however short
    config = {"max_steps": 5, "checkpoint_every": 100, "drop_path_rate": 0.1, "depth": 2,
              "embed_dim": 32}  # drop-path in 2 blocks draws random numbers: the RNG must be undone
    calls = {"n": 0, "per_step": None, "stop_at": None}

    def cancelled() -> bool:
        calls["n"] += 1
        return calls["stop_at"] is not None and calls["n"] >= calls["stop_at"]

    run = RunFolder(tmp_path / "stopped")
    gen = train(make_recipe(SupervisedRecipe, shapes, **config), run, "cpu", cancelled=cancelled)
    for item in gen:
        if isinstance(item, Partial) and item.value.get("kind") == "train":
            if item.value["step"] == 1:
                calls["per_step"] = calls["n"]  # module forwards + parameter gradients of one step
            if item.value["step"] == 2:
                calls["stop_at"] = calls["n"] + (3 if where == "forward" else calls["per_step"] - 2)
        if isinstance(item, Progress) and item.message.startswith("stopping"):
            gen.close()  # what the engine does on Stop
            break
    else:
        pytest.fail("the stop was never seen")
    card = run.read_card()
    assert card["status"] == "stopped" and card["step"] == 2 and run.load()[2]["step"] == 2

    drive(train(make_recipe(SupervisedRecipe, shapes, **config), run, "cpu", resume=True))
    straight = RunFolder(tmp_path / "straight")
    drive(train(make_recipe(SupervisedRecipe, shapes, **config), straight, "cpu"))

    def losses(r):
        return {m["step"]: m["loss"] for m in r.read_metrics() if m["kind"] == "train"}

    assert losses(run) == losses(straight)  # bit for bit: the interrupted step left no trace
