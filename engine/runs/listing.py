"""The runs folder as a list: status (with killed runs recognised), best metric, history, and
a run found by its name or folder (resolve_run).

A card says "running" from the moment a run starts until its `finally` block writes the
outcome; `kill -9`, a power cut or a crash of the whole process skip that block. So a
"running" card is believed only while its training is demonstrably alive: in this process
(the set of runs the train job is driving), or in another live process whose start time
matches the card (a PID alone can be reused). Otherwise the run shows as "interrupted",
resumable from its last checkpoint. Torch-free: the GUI thread may read summaries, though
the panel asks the engine.
"""
from __future__ import annotations

import json
import os
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path

from engine.paths import runs_dir
from engine.errors import TrainingError

RUNNING, FINISHED, STOPPED, FAILED, INTERRUPTED = "running", "finished", "stopped", "failed", "interrupted"

_active: set[str] = set()
_lock = threading.Lock()

#: Eval metrics that summarise a run, best first: (name, higher is better).
PRIMARY_METRICS = (("accuracy", True), ("knn_acc", True), ("zero_shot_accuracy", True), ("recall_at_1", True),
                   ("masked_mse", False), ("loss", False))


# ---------------------------------------------------------------------------- liveness
def _key(path) -> str:
    return str(Path(path).resolve())


def mark_active(path) -> None:
    with _lock:
        _active.add(_key(path))


def mark_inactive(path) -> None:
    with _lock:
        _active.discard(_key(path))


def is_active_here(path) -> bool:
    with _lock:
        return _key(path) in _active


def process_start_token(pid: int | None = None) -> str | None:
    """When process `pid` started, as an opaque token (Linux: /proc/PID/stat field 22), else None."""
    pid = os.getpid() if pid is None else pid
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    fields = stat[stat.rfind(")") + 2:].split()
    return fields[19] if len(fields) > 19 else None


def process_alive(pid: int, token: str | None = None) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        pass
    except OSError:
        return False
    if token is not None:
        now = process_start_token(pid)
        if now is not None and now != token:
            return False  # the PID now belongs to another process
    return True


def effective_status(card: dict, path) -> str:
    """The card's status, except that a "running" run whose process is gone is "interrupted"."""
    if is_active_here(path):  # also while a resumed run loads its data, before its card says so
        return RUNNING
    status = card.get("status") or FAILED
    if status != RUNNING:
        return status
    pid = card.get("pid")
    if not isinstance(pid, int) or pid == os.getpid():
        return INTERRUPTED  # this process is not training it
    return RUNNING if process_alive(pid, card.get("process_started")) else INTERRUPTED


# ---------------------------------------------------------------------------- summaries
@dataclass(frozen=True)
class RunInfo:
    """One row of the runs list (plain data)."""

    name: str
    path: str
    recipe: str
    dataset: str
    status: str
    resumable: bool
    step: int
    total_steps: int
    updated: str
    best_name: str = ""
    best_value: float | None = None
    higher_is_better: bool = True
    model_id: str | None = None
    family: str | None = None
    panels: tuple[str, ...] = ()
    error: str | None = None
    probe: dict = field(default_factory=dict)
    elapsed_s: float = 0.0
    command: str = ""


def best_metric(card: dict) -> tuple[str, float | None, bool]:
    evals = (card.get("history") or {}).get("eval") or []
    metrics = card.get("metrics") or {}
    for name, higher in PRIMARY_METRICS:
        values = [e[name] for e in evals if isinstance(e.get(name), (int, float))]
        if isinstance(metrics.get(name), (int, float)):
            values.append(metrics[name])
        if values:
            return name, float(max(values) if higher else min(values)), higher
    loss = (card.get("history") or {}).get("loss") or []
    if loss:
        return "train loss", float(min(v for _, v in loss)), False
    return "", None, True


def has_checkpoint(path) -> bool:
    folder = Path(path) / "checkpoints"
    return folder.is_dir() and any(p.is_dir() and p.name.startswith("step-") for p in folder.iterdir())


def run_info(path, card: dict | None = None) -> RunInfo:
    path = Path(path)
    if card is None:
        card = read_card(path)
    status = effective_status(card, path)
    step, total = int(card.get("step") or 0), int(card.get("total_steps") or 0)
    resumable = status in (STOPPED, INTERRUPTED, FAILED) and step < total and has_checkpoint(path)
    name, value, higher = best_metric(card)
    cat = card.get("catalogue") or {}
    return RunInfo(
        name=path.name, path=str(path), recipe=str(card.get("recipe", "?")),
        dataset=str(card.get("dataset_spec") or (card.get("dataset") or {}).get("name", "")), status=status,
        resumable=resumable, step=step, total_steps=total, updated=str(card.get("updated", "")),
        best_name=name, best_value=value, higher_is_better=higher, model_id=cat.get("id"), family=cat.get("family"),
        panels=tuple(cat.get("panels") or ()), error=card.get("error"), probe=dict(card.get("probe") or {}),
        elapsed_s=float(card.get("elapsed_s") or 0.0), command=str(card.get("command") or ""))


def read_card(path) -> dict:
    try:
        return json.loads((Path(path) / "card.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TrainingError(f"{path} is not a training run (no card.json)") from None
    except (OSError, ValueError) as exc:
        raise TrainingError(f"{path}/card.json: unreadable ({exc})") from None


def resolve_run(run: str) -> Path:
    """A run by folder path, or by name under runs_dir()."""
    p = Path(run).expanduser()
    if (p / "card.json").is_file():
        return p
    named = runs_dir() / run
    if (named / "card.json").is_file():
        return named
    raise TrainingError(f"no training run {run!r} (looked for {p}/card.json and {named}/card.json)")


def list_runs(folder: Path | None = None) -> list[RunInfo]:
    """Every run under the runs folder, newest first; unreadable cards are skipped."""
    folder = folder or runs_dir()
    if not folder.is_dir():
        return []
    out = []
    for card_path in folder.glob("*/card.json"):
        try:
            out.append(run_info(card_path.parent))
        except TrainingError:
            continue
    return sorted(out, key=lambda r: r.updated, reverse=True)


def history(path, limit: int = 2000) -> dict:
    """The run's logged records for plotting: train records thinned to about `limit`, every eval."""
    from engine.runs.checkpoint import RunFolder

    run = RunFolder(path)
    records = run.read_metrics()
    train = [r for r in records if r.get("kind") == "train"]
    stride = max(1, -(-len(train) // limit))
    kept = train[::stride]
    if train and kept[-1] is not train[-1]:
        kept.append(train[-1])
    evals = [{k: v for k, v in r.items() if not isinstance(v, (list, dict))} for r in records
             if r.get("kind") == "eval"]
    return {"name": Path(path).name, "train": kept, "eval": evals, "info": run_info(path)}


def delete_run(path) -> None:
    path = Path(path)
    card = read_card(path)
    if effective_status(card, path) == RUNNING:
        raise TrainingError(f"{path.name} is training: stop it before deleting it")
    shutil.rmtree(path)
