"""Checkpoints that survive `kill -9` and resume exactly; never a pickle.

A run folder:

    card.json                   what the run is (recipe, config, dataset, metrics, status,
                                the command that reproduces it, the catalogue section)
    model.safetensors           the latest weights of the main model (what the catalogue loads)
    metrics.jsonl               one JSON line per logged step and per evaluation
    checkpoints/step-000001200/ one complete training state:
        model.safetensors       model weights
        state.safetensors       optimizer tensors, torch/CUDA RNG states, recipe extras
        state.json              step, data position, optimizer scalars and param groups,
                                python/numpy RNG states, schedule

A checkpoint is written into a hidden temporary folder (every file fsynced), then renamed
into place in one step, so a folder named step-N is always complete; older ones are
deleted only after that. model.safetensors and card.json are replaced atomically
(temporary file in the same folder, fsync, os.replace). If the disk fills up, the
temporary folder is removed and the previous checkpoint is left as it was.
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import TrainingError

CHECKPOINTS = "checkpoints"
CARD = "card.json"
WEIGHTS = "model.safetensors"
METRICS = "metrics.jsonl"
_TMP_PREFIX = ".tmp-"


# ---------------------------------------------------------------------------- atomic files
def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # Windows cannot open folders; its renames are durable enough
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _disk_full(exc: OSError) -> bool:
    return exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Replace `path` with `data` in one step: a reader sees the old file or the new one."""
    path = Path(path)
    tmp = path.with_name(f"{_TMP_PREFIX}{path.name}.{os.getpid()}")
    try:
        _write_synced(tmp, data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=1, default=_json_default) + "\n").encode("utf-8"))


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"{type(o).__name__} is not JSON serialisable")


def read_json(path: str | os.PathLike) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


# ---------------------------------------------------------------------------- tensors <-> bytes
def tensors_to_bytes(tensors: dict, metadata: dict[str, str] | None = None) -> bytes:
    from safetensors.torch import save

    return save({k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}, metadata=metadata)


def tensors_from_file(path: str | os.PathLike) -> dict:
    from safetensors.torch import load_file

    return load_file(str(path))


def flatten_optimizer(state: dict) -> tuple[dict, dict]:
    """optimizer.state_dict() -> (tensors, JSON). Tensors under 'optimizer/<param>/<name>'."""
    import torch

    tensors, scalars = {}, {}
    for idx, per_param in state["state"].items():
        for name, value in per_param.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer/{idx}/{name}"] = value
            else:
                scalars.setdefault(str(idx), {})[name] = value
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()} for g in state["param_groups"]]
    return tensors, {"param_groups": groups, "scalars": scalars}


def unflatten_optimizer(tensors: dict, meta: dict, current: dict) -> dict:
    """The inverse of flatten_optimizer; `current` (the live optimizer's state_dict) restores tuples."""
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith("optimizer/"):
            _, idx, name = key.split("/", 2)
            state.setdefault(int(idx), {})[name] = value
    for idx, values in meta["scalars"].items():
        state.setdefault(int(idx), {}).update(values)
    groups = []
    for saved, live in zip(meta["param_groups"], current["param_groups"]):
        groups.append({k: (tuple(v) if isinstance(live.get(k), tuple) else v) for k, v in saved.items()})
    if len(groups) != len(current["param_groups"]):
        raise TrainingError("the checkpoint's optimizer has a different number of parameter groups")
    return {"state": state, "param_groups": groups}


def rng_state() -> tuple[dict, dict]:
    """Python, numpy, torch and CUDA RNG states as (tensors, JSON)."""
    import torch

    version, internal, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    meta = {"python": [version, list(internal), gauss],
            "numpy": [name, keys.tolist(), int(pos), int(has_gauss), float(cached)]}
    tensors = {"rng/torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng/cuda/{i}"] = s
    return tensors, meta


def set_rng_state(tensors: dict, meta: dict) -> None:
    import torch

    version, internal, gauss = meta["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = meta["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(tensors["rng/torch"])
    cuda = [tensors[k] for k in sorted(k for k in tensors if k.startswith("rng/cuda/"))]
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)


# ---------------------------------------------------------------------------- the run folder
class RunFolder:
    """Reads and writes one run's folder."""

    def __init__(self, path: str | os.PathLike, keep: int = 1):
        self.path = Path(path)
        self.keep = max(1, keep)

    @property
    def card_path(self) -> Path:
        return self.path / CARD

    @property
    def weights_path(self) -> Path:
        return self.path / WEIGHTS

    @property
    def metrics_path(self) -> Path:
        return self.path / METRICS

    def exists(self) -> bool:
        return self.card_path.is_file()

    def read_card(self) -> dict:
        try:
            return read_json(self.card_path)
        except FileNotFoundError:
            raise TrainingError(f"{self.path} is not a training run (no {CARD})") from None
        except (OSError, ValueError) as exc:
            raise TrainingError(f"{self.card_path}: unreadable ({exc})") from None

    def write_card(self, card: dict) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        try:
            atomic_write_json(self.card_path, card)
        except OSError as exc:
            if not _disk_full(exc):
                raise
            prev = self.latest()
            kept = f"the last checkpoint ({prev.name}) is intact" if prev else "no checkpoint was written yet"
            raise TrainingError(f"disk full while writing {self.card_path}: {kept}. Free some space and resume "
                                f"the run.", card.get("step")) from None

    def check_space(self, state_bytes: int) -> None:
        """Refuse to start when the disk cannot hold a checkpoint being written beside the last one."""
        need = 2 * state_bytes + 16 * 2**20
        folder = self.path
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        free = shutil.disk_usage(folder).free
        if free < need:
            raise TrainingError(f"not enough disk space for this run's checkpoints in {self.path}: about "
                                f"{need / 2**20:,.0f} MB needed, {free / 2**20:,.0f} MB free. Free some space or "
                                f"train into another folder (--run-dir, or PATCHWORK_HOME).")

    def checkpoints(self) -> list[Path]:
        """Complete checkpoint folders, oldest first."""
        folder = self.path / CHECKPOINTS
        if not folder.is_dir():
            return []
        return sorted(p for p in folder.iterdir() if p.is_dir() and p.name.startswith("step-"))

    def latest(self) -> Path | None:
        found = self.checkpoints()
        return found[-1] if found else None

    def save(self, step: int, model_state: dict, tensors: dict, state: dict) -> str:
        """Write one complete checkpoint; returns the SHA-256 of the model weights.

        Raises TrainingError("disk full ...") on ENOSPC, with the previous checkpoint intact.
        """
        folder = self.path / CHECKPOINTS
        final = folder / f"step-{step:09d}"
        tmp = folder / f"{_TMP_PREFIX}step-{step:09d}.{os.getpid()}"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            if tmp.exists():
                shutil.rmtree(tmp)
            tmp.mkdir()
            weights = tensors_to_bytes(model_state, {"step": str(step), "format": "patchwork-run/1"})
            _write_synced(tmp / WEIGHTS, weights)
            _write_synced(tmp / "state.safetensors", tensors_to_bytes(tensors))
            _write_synced(tmp / "state.json", json.dumps(state, default=_json_default).encode("utf-8"))
            _fsync_dir(tmp)
            if final.exists():  # the same step saved twice (stop right after a periodic save)
                shutil.rmtree(final)
            os.rename(tmp, final)
            _fsync_dir(folder)
            self._publish_weights(final / WEIGHTS, weights)
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            if _disk_full(exc):
                prev = self.latest()
                kept = f"the previous checkpoint ({prev.name}) is intact" if prev else "no earlier checkpoint exists"
                raise TrainingError(f"disk full while saving the checkpoint at step {step} in {self.path}: "
                                    f"{kept}. Free some space and resume the run.", step) from None
            raise TrainingError(f"could not save the checkpoint at step {step} in {self.path}: {exc}", step) from None
        for old in self.checkpoints()[:-self.keep]:
            shutil.rmtree(old, ignore_errors=True)
        return hashlib.sha256(weights).hexdigest()

    def _publish_weights(self, source: Path, data: bytes) -> None:
        """run/model.safetensors := the checkpoint's weights (a hard link where possible)."""
        tmp = self.weights_path.with_name(f"{_TMP_PREFIX}{WEIGHTS}.{os.getpid()}")
        tmp.unlink(missing_ok=True)
        try:
            os.link(source, tmp)
        except OSError:
            atomic_write_bytes(self.weights_path, data)
            return
        os.replace(tmp, self.weights_path)
        _fsync_dir(self.path)

    def load(self, checkpoint: Path | None = None) -> tuple[dict, dict, dict]:
        """(model state, state tensors, state JSON) of `checkpoint` (default: the latest)."""
        ckpt = checkpoint or self.latest()
        if ckpt is None:
            raise TrainingError(f"{self.path} has no checkpoint to resume from")
        parts = []
        for name in (WEIGHTS, "state.safetensors", "state.json"):
            file = ckpt / name
            try:
                parts.append(read_json(file) if name.endswith(".json") else tensors_from_file(file))
            except Exception as exc:  # noqa: BLE001 - safetensors raises its own SafetensorError
                raise TrainingError(f"{file}: damaged checkpoint ({exc}). {self._previous_offer(ckpt)}") from None
        return parts[0], parts[1], parts[2]

    def _previous_offer(self, damaged: Path) -> str:
        """How to continue from the checkpoint before `damaged`, in words that work."""
        earlier = [p for p in self.checkpoints() if p.name < damaged.name]
        if not earlier:
            return "No earlier checkpoint is kept (keep_checkpoints); start the run anew."
        prev = earlier[-1]
        return (f"The previous checkpoint {prev.name} is intact: move the damaged one aside "
                f"(mv {damaged} {damaged.with_name('damaged-' + damaged.name)}) and resume again to continue from it.")

    def sweep_leftovers(self) -> list[Path]:
        """Remove half-written checkpoints and weights (.tmp-*) a killed process left behind.
        Only called when no process is training this run, so none of them is being written."""
        swept = []
        for folder in (self.path / CHECKPOINTS, self.path):
            if folder.is_dir():
                for p in folder.glob(f"{_TMP_PREFIX}*"):
                    shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
                    swept.append(p)
        return swept

    # ------------------------------------------------------------------------ metrics log
    def append_metrics(self, records: list[dict]) -> None:
        if not records:
            return
        with open(self.metrics_path, "a", encoding="utf-8") as f:
            for r in records:
                f.write(json.dumps(r, default=_json_default) + "\n")
            f.flush()

    def read_metrics(self) -> list[dict]:
        if not self.metrics_path.is_file():
            return []
        out = []
        for line in self.metrics_path.read_text(encoding="utf-8").splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:  # a line cut short by kill -9
                continue
        return out

    def truncate_metrics(self, step: int) -> list[dict]:
        """Keep the records up to `step` (what a resumed run continues from); returns them."""
        kept = [r for r in self.read_metrics() if r.get("step", 0) <= step]
        atomic_write_bytes(self.metrics_path,
                           "".join(json.dumps(r, default=_json_default) + "\n" for r in kept).encode("utf-8"))
        return kept


def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def export_model(run_dir: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Copy a run's model (model.safetensors + card.json, no training state) to `dest`.

    How the built-in checkpoints under resources/checkpoints/ are made from finished runs.
    """
    run = RunFolder(run_dir)
    card = run.read_card()
    if card.get("status") not in ("finished", "stopped"):
        raise TrainingError(f"{run.path} is {card.get('status')}: only a finished or stopped run can be exported")
    out = Path(dest)
    out.mkdir(parents=True, exist_ok=True)
    data = run.weights_path.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    if card.get("sha256") and card["sha256"] != sha:
        raise TrainingError(f"{run.weights_path} does not match the SHA-256 in its card")
    atomic_write_bytes(out / WEIGHTS, data)
    card = {k: v for k, v in card.items() if k not in ("pid",)}
    card.update(sha256=sha, exported_from=str(run.path.name))
    if isinstance(card.get("catalogue"), dict):  # no longer a run: an exported model file
        from engine.models.registry import builder_name

        card["catalogue"] = {**card["catalogue"], "id": out.name,
                             "builder": builder_name(card["catalogue"]["builder"])}
    atomic_write_json(out / CARD, card)
    return out
