"""The engine job behind the Train panel and `python main.py train`.

    engine.submit("train", {"recipe": "supervised", "dataset": "fashion-mnist",
                            "config": {"epochs": 3}}, priority=Priority.BACKGROUND)
"""
from __future__ import annotations

import importlib
import json
import os
import re
import shlex
import shutil
import sys
import threading
import time
from pathlib import Path

from engine.jobs import Progress
from engine.paths import runs_dir
from engine.runs.checkpoint import RunFolder
from engine.errors import TrainingError
from engine.runs.listing import RUNNING, effective_status, mark_active, mark_inactive, resolve_run

#: Config keys a resumed run may change: the checkpoint's state fits any value of them. The
#: learning rate, the length of the run and gradient clipping change what is computed from the
#: resumed step on (the way out of a NaN); each change is recorded in the card's "resumed_with".
RESUME_MAY_CHANGE = {"log_every", "checkpoint_every", "checkpoint_seconds", "keep_checkpoints", "eval_batch_size",
                     "lr", "min_lr", "epochs", "max_steps", "grad_clip", "eval_every"}


def default_run_name(recipe: str, dataset: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", Path(dataset).name.lower()).strip("-") or "data"
    return f"{recipe}-{slug}-{time.strftime('%Y%m%d-%H%M%S')}"


def reproduce_command(recipe: str, dataset: str, overrides: dict) -> str:
    """The command line that trains the same run again: only non-default settings are named."""
    parts = ["python", "main.py", "train", recipe, "--dataset", dataset]
    for key, value in overrides.items():
        parts += ["--set", f"{key}={json.dumps(value) if not isinstance(value, str) else value}"]
    return " ".join(shlex.quote(p) for p in parts)


def train_job(ctx, recipe: str, dataset: str = "fashion-mnist", config: dict | None = None,
              resume: str | None = None, run_name: str | None = None, run_dir: str | None = None,
              download: bool = False):
    """Train `recipe` on `dataset` (a built-in name or a folder), or resume the run `resume`.

    The run lives in `run_dir` if given, else runs_dir()/run_name. Yields Progress and
    Partial(metric dicts); returns the result dict of engine.train.loop.train.
    """
    from engine.train.loop import train
    from engine.train.recipes import recipe_class

    config = dict(config or {})
    if resume:
        run = RunFolder(resolve_run(resume))
        card = run.read_card()
        if effective_status(card, run.path) == RUNNING:
            raise TrainingError(f"{run.path.name} is still training (process {card.get('pid')}); "
                                f"stop it before resuming it")
        if recipe and recipe != card.get("recipe"):
            raise TrainingError(f"run {run.path.name} was trained with the {card.get('recipe')!r} recipe, "
                                f"not {recipe!r}")
        recipe = card["recipe"]
        dataset = card.get("dataset_spec") or dataset
        saved = dict(card["config"])
        changed = {k for k, v in config.items() if saved.get(k) != v and k not in RESUME_MAY_CHANGE}
        if changed:
            raise TrainingError(f"a resumed run keeps its settings; these differ from the saved ones: "
                                f"{', '.join(sorted(changed))} (a resume may change only "
                                f"{', '.join(sorted(RESUME_MAY_CHANGE))}). Start a new run to change them.")
        _record_changes(run, card, {k: [saved.get(k), v] for k, v in config.items() if saved.get(k) != v})
        saved.update(config)
        config = saved
        run.sweep_leftovers()
    else:
        from engine.train import distributed

        if distributed.requested() and not (run_name or run_dir):
            # every rank must name the same folder: no clock, the launcher's shared run id
            run_name = f"{default_run_name(recipe, dataset).rsplit('-', 2)[0]}-ddp-" \
                       f"{os.environ.get('TORCHELASTIC_RUN_ID', 'run')}-{os.environ.get('MASTER_PORT', '0')}"
        path = Path(run_dir) if run_dir else runs_dir() / (run_name or default_run_name(recipe, dataset))
        run = RunFolder(path)
        if run.exists() and distributed.rank() == 0:  # other ranks may see rank 0's new folder
            raise TrainingError(f"{path} already holds a run; resume it (python main.py train {recipe} --resume "
                                f"{shlex.quote(str(path))}) or choose another name")
    new_folder = not run.path.exists()
    cls = recipe_class(recipe)
    rec = cls(config, dataset, download=download)
    run.keep = rec.config.keep_checkpoints
    command = reproduce_command(recipe, dataset, rec.config.overrides())
    rec.device = getattr(ctx, "device", "cpu")  # recipes that run a model while loading data need it
    mark_active(run.path)
    try:
        yield Progress(None, "loading data")
        yield from rec.prepare()
        yield from import_off_thread("timm")  # seconds on first use: Stop must not wait for it
        return (yield from train(rec, run, ctx.device, resume=bool(resume), command=command, dataset_spec=dataset,
                                 cancelled=(lambda: ctx.cancelled) if hasattr(ctx, "cancelled") else None))
    finally:
        mark_inactive(run.path)
        if new_folder and not run.exists():  # refused before its card (no disk space, bad data): leave nothing
            shutil.rmtree(run.path, ignore_errors=True)


def import_off_thread(module: str):
    """Import a heavy library in a helper thread, yielding meanwhile so Stop lands at once.
    A failure is left for the real import to report where the module is used."""
    if module in sys.modules:
        return
    done = threading.Event()

    def work():
        try:
            importlib.import_module(module)
        except BaseException:  # noqa: BLE001 - reported by the import that needs it
            pass
        finally:
            done.set()

    threading.Thread(target=work, name=f"patchwork-import-{module}", daemon=True).start()
    while not done.wait(0.1):
        yield Progress(None, f"loading {module}")


def _record_changes(run: RunFolder, card: dict, changes: dict) -> None:
    """Note in the card which settings a resume changed, and from which step."""
    if not changes:
        return
    card.setdefault("resumed_with", []).append({"step": card.get("step", 0), "time": time.strftime("%Y-%m-%d %H:%M:%S"),
                                                "changes": changes})
    run.write_card(card)
