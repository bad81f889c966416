"""The one training loop every recipe runs in: a device-agnostic generator.

    for event in train(recipe, RunFolder(path), device): ...

A recipe (engine.train.recipes) says what to build and how one step computes its loss;
this loop owns everything else: seeding, AdamW with a per-step warm-up + cosine
schedule, gradient clipping, bf16 autocast and channels-last on CUDA only, NaN and
out-of-memory detection, evaluation, metrics, checkpoints and exact resume.

It yields Progress every step and Partial(dict) at each log interval and evaluation
(plain floats, lists and numpy arrays; never tensors). The engine throttles them.
Closing the generator (the engine's cancel) stops it: the `finally` block saves a
checkpoint with status "stopped", so a stopped run can be resumed or used as it is.
"""
from __future__ import annotations

import math
import os
import platform
import random
import shlex
import time
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timezone
from typing import Any, Iterator

import numpy as np

from engine.models.registry import builder_name
from engine.jobs import Partial, Progress
from engine.runs.checkpoint import (RunFolder, flatten_optimizer, rng_state, set_rng_state,
                                     unflatten_optimizer)
from engine.errors import TrainingError
from engine.train.interrupt import StepGuard, StepInterrupted
from engine.runs.listing import process_start_token

RUN_FORMAT = "patchwork-run/1"


# ---------------------------------------------------------------------------- configuration
@dataclass
class TrainConfig:
    """What the loop needs; recipes subclass it with their own fields."""

    seed: int = 0
    epochs: int = 10
    max_steps: int = 0  # > 0: the run is this many steps, whatever `epochs` says
    batch_size: int = 256
    lr: float = 1e-3  # peak learning rate, reached at the end of the warm-up
    min_lr: float = 1e-5  # where the cosine ends
    warmup_steps: int = -1  # -1: 5% of the run
    weight_decay: float = 0.05  # AdamW; not applied to biases, norms, embeddings and tokens
    beta1: float = 0.9
    beta2: float = 0.999
    grad_clip: float = 1.0  # max global gradient norm; 0 turns clipping off
    log_every: int = 20  # steps between metric records
    eval_every: int = 1  # epochs between evaluations; 0: only at the end
    checkpoint_every: int = 0  # steps between checkpoints; 0: at each evaluation
    checkpoint_seconds: float = 600.0  # and at least this often
    keep_checkpoints: int = 1
    amp: bool = True  # bf16 autocast, on CUDA only

    @classmethod
    def from_dict(cls, values: dict | None) -> "TrainConfig":
        """Values from JSON / --set, checked against the fields (unknown keys are an error)."""
        values = dict(values or {})
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise TrainingError(f"unknown config key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        out = {}
        for name, value in values.items():
            default = getattr(cls, name, None)
            try:
                if isinstance(default, bool):
                    if isinstance(value, str):
                        value = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}[value.lower()]
                    value = bool(value)
                elif isinstance(default, int) and value is not None:
                    if isinstance(value, float) and not value.is_integer():
                        raise ValueError(value)
                    value = int(value)
                elif isinstance(default, float) and value is not None:
                    value = float(value)
                elif isinstance(default, str) and value is not None:
                    value = str(value)
            except (KeyError, ValueError, TypeError):
                raise TrainingError(f"config {name}={value!r}: expected {type(default).__name__}") from None
            out[name] = value
        cfg = cls(**out)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        if self.batch_size < 1:
            raise TrainingError("batch_size must be at least 1")
        if self.epochs < 1 and self.max_steps < 1:
            raise TrainingError("set epochs or max_steps to at least 1")
        if self.lr <= 0 or not math.isfinite(self.lr):
            raise TrainingError("lr must be a positive number")
        if self.log_every < 1:
            raise TrainingError("log_every must be at least 1")

    def to_dict(self) -> dict:
        return asdict(self)

    def overrides(self) -> dict:
        """The values that differ from the defaults (what a command line must say)."""
        default = type(self)()
        return {k: v for k, v in asdict(self).items() if getattr(default, k) != v}


class WarmupCosine:
    """Learning rate per step: linear warm-up to `peak`, then a half cosine down to `floor`."""

    def __init__(self, peak: float, floor: float, warmup: int, total: int):
        self.peak, self.floor, self.warmup, self.total = peak, min(floor, peak), max(0, warmup), max(1, total)

    def __call__(self, step: int) -> float:
        """The rate for step `step` (0-based: the first update uses step 0)."""
        if step < self.warmup:
            return self.peak * (step + 1) / self.warmup
        progress = min(1.0, (step - self.warmup) / max(1, self.total - self.warmup))
        return self.floor + (self.peak - self.floor) * 0.5 * (1.0 + math.cos(math.pi * progress))

    def state_dict(self) -> dict:
        return {"peak": self.peak, "floor": self.floor, "warmup": self.warmup, "total": self.total}


# ---------------------------------------------------------------------------- recipes
class Recipe:
    """The protocol the loop runs. Subclass it (see recipes/supervised.py).

    The loop calls, in order: prepare() (a generator: load data), build() (after seeding),
    then per step batches() -> training_step() -> backward/clip/AdamW -> after_step(), and
    evaluate() at each evaluation. modules()["model"] is the model a run publishes as
    model.safetensors; other modules (a momentum encoder...) go into the training state.
    """

    name = "recipe"
    Config = TrainConfig

    def __init__(self, config: dict | TrainConfig | None, dataset: str, *, download: bool = False):
        self.config = config if isinstance(config, self.Config) else self.Config.from_dict(config)
        self.dataset = dataset
        self.download = download
        self.device = "cpu"
        self.channels_last = False
        self.amp = False

    # -- data
    def prepare(self) -> Iterator[Progress]:
        """Load the data; a generator so long loads stay cancellable. Default: nothing."""
        return iter(())

    #: An EpochOrder over the training samples, set by prepare(); the default steps_per_epoch()
    #: and batches() deal its index batches, and batch() makes each one a training batch.
    order = None

    def steps_per_epoch(self) -> int:
        if self.order is None:
            raise NotImplementedError
        return self.order.batches_per_epoch

    def batches(self, epoch: int, start: int) -> Iterator[Any]:
        """The batches of `epoch` from batch `start`; a pure function of (seed, epoch, start)."""
        if self.order is None:
            raise NotImplementedError
        for idx in self.order.batches(epoch, start):
            yield self.batch(idx, epoch)

    def batch(self, idx: np.ndarray, epoch: int) -> Any:
        """What training_step() receives for these training-sample indices of `epoch`."""
        raise NotImplementedError

    @property
    def samples_per_step(self) -> int:
        return self.config.batch_size

    # -- model
    def build(self) -> None:
        """Create the models on self.device (the loop has seeded every RNG)."""
        raise NotImplementedError

    def modules(self) -> dict:
        """{"model": main module, other names: further modules to checkpoint}."""
        raise NotImplementedError

    def parameters(self):
        return self.modules()["model"].parameters()

    def param_groups(self) -> list[dict]:
        """AdamW groups: weight decay on matrices only (not biases, norms, tokens, embeddings)."""
        decay, no_decay = [], []
        ids = {id(p) for p in self.parameters()}
        for module in self.modules().values():
            for name, p in module.named_parameters():
                if id(p) not in ids or not p.requires_grad:
                    continue
                skip = p.ndim <= 1 or name.endswith(("cls_token", "pos_embed", "reg_token", "mask_token"))
                (no_decay if skip else decay).append(p)
                ids.discard(id(p))
        return [{"params": decay, "weight_decay": self.config.weight_decay},
                {"params": no_decay, "weight_decay": 0.0}]

    def autocast(self):
        """bf16 autocast on CUDA when amp is on; otherwise a no-op context."""
        import contextlib

        import torch

        if self.amp:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    # -- steps
    def training_step(self, batch, step: int):
        """-> (scalar loss tensor, {name: float}). `step` is 1-based: the step being computed."""
        raise NotImplementedError

    def after_step(self, step: int) -> None:
        """After the optimizer update (momentum encoders, queues)."""

    def live_view(self, step: int) -> dict | None:
        """Called at each log step: plain data to send along with the log record, e.g. the MAE's
        reconstruction of a fixed image. One Partial carries both, so the engine's per-job
        throttle cannot drop one for the other. Must not draw from the global RNGs."""
        return None

    def evaluate(self):
        """-> {name: value}; may be a generator (yield between chunks, return the dict)."""
        return {}

    # -- extra state and description
    def state_tensors(self) -> dict:
        """Recipe tensors that resume needs besides the modules (a MoCo queue...)."""
        return {}

    def load_state_tensors(self, tensors: dict) -> None:
        pass

    def describe(self) -> dict:
        """For the card: {"dataset": {...}, "model_config": {...}, "catalogue": {...} or absent}."""
        return {}

    def catalogue(self, run_name: str, run_dir) -> dict | None:
        """The card's "catalogue" section, if the trained model belongs in the catalogue."""
        return None


# ---------------------------------------------------------------------------- the loop
def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _seed_all(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _is_oom(exc: BaseException) -> bool:
    import torch

    oom = getattr(torch, "OutOfMemoryError", None) or getattr(torch.cuda, "OutOfMemoryError", ())
    return isinstance(exc, oom) or (isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower())


def _scalars(metrics: dict) -> dict:
    """The plain-number entries of a metrics dict (for logs and summaries)."""
    return {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float, np.floating, np.integer))
            and not isinstance(v, bool)}


def _history_summary(records: list[dict], limit: int = 200) -> dict:
    train = [r for r in records if r.get("kind") == "train"]
    stride = max(1, math.ceil(len(train) / limit))
    loss = [[r["step"], round(r["loss"], 6)] for r in train[::stride]]
    if train and (not loss or loss[-1][0] != train[-1]["step"]):
        loss.append([train[-1]["step"], round(train[-1]["loss"], 6)])
    evals = [{k: v for k, v in r.items() if k != "kind" and not isinstance(v, (list, dict))}
             for r in records if r.get("kind") == "eval"]
    return {"loss": loss, "eval": evals}


def _environment(device: str) -> dict:
    import timm
    import torch

    return {"torch": torch.__version__, "timm": timm.__version__, "python": platform.python_version(),
            "device": device, "threads": torch.get_num_threads()}


def train(recipe: Recipe, run: RunFolder, device: str = "cpu", *, resume: bool = False,
          command: str | None = None, dataset_spec: str | None = None, cancelled=None):
    """Run (or resume) `recipe` in the folder `run`; a generator that returns the result dict.
    `cancelled()` (the job's Stop flag) lets Stop land inside long steps (engine/train/interrupt.py)."""
    session = Session(recipe, run, device, cancelled)
    if resume:
        session.restore()
    session.open(resume, command, dataset_spec)
    return (yield from session.train())


class Session:
    """One training session of a run, from (re)start to its end: the state the loop's steps
    share (position, schedule, optimizer, records), so each step is a method a reader can
    hold in mind. Only rank 0 (`main`) evaluates and writes files."""

    def __init__(self, recipe: Recipe, run: RunFolder, device: str, cancelled=None):
        from engine.train import distributed

        self.recipe, self.run, self.cfg = recipe, run, recipe.config
        self.dist, self.device = distributed.init(device)  # under torchrun: join the group (one GPU per rank)
        distributed.check_batch(self.cfg.batch_size)
        self.main = self.dist is None or self.dist.is_main
        recipe.device = self.device
        cuda = self.device.startswith("cuda")
        recipe.channels_last = cuda
        recipe.amp = cuda and self.cfg.amp
        self._build(cancelled)
        self.step, self.epoch, self.batch_index, self.elapsed = 0, 0, 0, 0.0
        self.eval_pending = False  # an epoch ended and its evaluation has not run yet (a stop can land between)
        self.records: list[dict] = []
        self.eval_metrics: dict = {}
        self.card: dict = {}
        self.sha: str | None = None
        self.last_save = self.t_session = time.monotonic()
        self.step_times: list[float] = []  # the last 50 steps' durations: the ETA and Stop's patience
        self.window_loss, self.window_steps, self.window_t = 0.0, 0, time.monotonic()  # since the last log

    def _build(self, cancelled) -> None:
        """Seed, build the recipe's modules, the optimizer and the schedule."""
        import torch

        from engine.train import distributed

        recipe, cfg = self.recipe, self.cfg
        _seed_all(cfg.seed)
        recipe.build()
        self.modules = recipe.modules()
        self.model = self.modules["model"]
        distributed.broadcast_modules(self.modules)
        if recipe.channels_last:
            for m in self.modules.values():
                m.to(memory_format=torch.channels_last)
        self.params = [p for p in recipe.parameters() if p.requires_grad]
        # Stop inside a step only outside DDP: the ranks must agree on every step
        self.guard = StepGuard(cancelled if self.dist is None else None, self.modules, recipe, self.params)
        self.optimizer = torch.optim.AdamW(recipe.param_groups(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2),
                                           weight_decay=cfg.weight_decay)
        self.spe = recipe.steps_per_epoch()
        self.total = cfg.max_steps if cfg.max_steps > 0 else cfg.epochs * self.spe
        warmup = cfg.warmup_steps if cfg.warmup_steps >= 0 else max(1, round(0.05 * self.total))
        self.schedule = WarmupCosine(cfg.lr, cfg.min_lr, warmup, self.total)

    def restore(self) -> None:
        """Resume: the last checkpoint's modules, optimizer, recipe state, RNGs and position."""
        run = self.run
        self.card = run.read_card()
        model_state, tensors, state = run.load()
        _load_modules(self.modules, model_state, tensors)
        self.optimizer.load_state_dict(unflatten_optimizer(tensors, state["optimizer"], self.optimizer.state_dict()))
        self.recipe.load_state_tensors({k[len("recipe/"):]: v for k, v in tensors.items() if k.startswith("recipe/")})
        set_rng_state(tensors, state["rng"])
        self.step, self.epoch, self.batch_index = state["step"], state["epoch"], state["batch"]
        self.elapsed = float(state.get("elapsed_s", 0.0))
        self.eval_metrics = state.get("eval_metrics", {})
        self.eval_pending = bool(state.get("eval_pending", False))
        self.records = run.truncate_metrics(self.step)
        if self.step >= self.total:
            raise TrainingError(f"{run.path.name} has already finished ({self.step} of {self.total} steps)")

    def open(self, resume: bool, command: str | None, dataset_spec: str | None) -> None:
        """Check the disk has room, create the folder of a new run, write the "running" card."""
        run, recipe, cfg, modules = self.run, self.recipe, self.cfg, self.modules
        n_params = sum(p.numel() for p in self.model.parameters())
        if self.main:  # a checkpoint holds every module's state and AdamW's two moments of each trainable parameter
            run.check_space(sum(t.numel() * t.element_size() for m in modules.values()
                                for t in m.state_dict().values()) + 8 * sum(p.numel() for p in self.params))
        if self.main and not resume:  # only once there is room: a refused run leaves no folder
            run.path.mkdir(parents=True, exist_ok=True)
            run.metrics_path.unlink(missing_ok=True)
        described = recipe.describe()
        card, dist = self.card, self.dist
        card.update({
            "format": RUN_FORMAT, "name": run.path.name, "recipe": recipe.name, "dataset_spec": dataset_spec,
            "status": "running", "error": None, "created": card.get("created", _now()), "updated": _now(),
            "pid": os.getpid(), "process_started": process_start_token(),  # how a lister tells a killed run
            "config": cfg.to_dict(), "total_steps": self.total, "steps_per_epoch": self.spe,
            "parameters": n_params, "command": command or card.get("command"),
            "environment": _environment(self.device), "weights": "model.safetensors",
            "schedule": {"kind": "warmup-cosine", **self.schedule.state_dict()},
            **described,
            **({"distributed": {"world_size": dist.world, "backend": dist.backend}} if dist else {}),
        })
        if self.main:
            run.write_card(card)
        self.sha = card.get("sha256")
        self.last_save = self.t_session = time.monotonic()

    # ------------------------------------------------------------------ files
    def elapsed_now(self) -> float:
        return self.elapsed + (time.monotonic() - self.t_session)

    def save(self, status: str) -> None:
        """A complete checkpoint (model, other modules, optimizer, RNGs, recipe state), then the card."""
        if not self.main:
            return
        model_state = {k: v for k, v in self.model.state_dict().items()}
        opt_tensors, opt_meta = flatten_optimizer(self.optimizer.state_dict())
        rng_tensors, rng_meta = rng_state()
        tensors = {**opt_tensors, **rng_tensors}
        for name, module in self.modules.items():
            if name != "model":
                tensors.update({f"module/{name}/{k}": v for k, v in module.state_dict().items()})
        tensors.update({f"recipe/{k}": v for k, v in self.recipe.state_tensors().items()})
        state = {"step": self.step, "epoch": self.epoch, "batch": self.batch_index, "elapsed_s": self.elapsed_now(),
                 "optimizer": opt_meta, "rng": rng_meta, "schedule": self.schedule.state_dict(),
                 "eval_metrics": _jsonable(self.eval_metrics), "eval_pending": self.eval_pending}
        self.sha = self.run.save(self.step, model_state, tensors, state)
        self.last_save = time.monotonic()
        self.write_card(status)

    def write_card(self, status: str, error: str | None = None) -> None:
        if not self.main:
            return
        run, card = self.run, self.card
        card.update({"status": status, "error": error, "updated": _now(), "step": self.step,
                     "epoch": self.epoch_now(), "elapsed_s": round(self.elapsed_now(), 2),
                     "metrics": _jsonable(self.eval_metrics), "history": _history_summary(self.records),
                     "sha256": self.sha})
        catalogue = self.recipe.catalogue(run.path.name, run.path)
        if catalogue is not None:
            catalogue["builder"] = builder_name(catalogue["builder"])  # cards store registered names
            catalogue["size_mb"] = round(run.weights_path.stat().st_size / 2**20, 3) if run.weights_path.exists() else 0.0
            card["catalogue"] = catalogue
        run.write_card(card)

    def epoch_now(self) -> float:
        return round(self.epoch + self.batch_index / self.spe, 4)

    def log(self, record: dict) -> None:
        self.records.append(record)
        if not self.main:
            return
        try:
            self.run.append_metrics([record])
        except OSError as exc:  # metrics are a convenience; a full disk shows up at the next save
            self.records[-1]["log_error"] = str(exc)

    # ------------------------------------------------------------------ steps
    def evaluation(self):
        """The recipe's evaluation in eval mode; logged, and sent as a Partial."""
        if not self.main:
            return
        for m in self.modules.values():
            m.eval()
        try:
            out = self.recipe.evaluate()
            if hasattr(out, "__next__"):
                out = yield from out
        finally:
            for m in self.modules.values():
                m.train()
        self.eval_metrics = dict(out or {})
        record = {"kind": "eval", "step": self.step, "epoch": self.epoch_now(),
                  **{k: v for k, v in _jsonable(self.eval_metrics).items()}}
        self.log(record)
        yield Partial({**record, **{k: v for k, v in self.eval_metrics.items() if isinstance(v, np.ndarray)}})

    def optimise(self, batch, lr: float):
        """One optimisation step: (loss value, the recipe's metrics, grad norm or None).
        Raises TrainingError on a NaN loss or out of memory, StepInterrupted on a Stop inside it."""
        import torch

        from engine.train import distributed

        recipe, cfg, step = self.recipe, self.cfg, self.step
        for group in self.optimizer.param_groups:  # a recipe may scale a group (fine-tuned backbones)
            group["lr"] = lr * group.get("lr_scale", 1.0)
        try:
            with self.guard.step(self.guard.wanted(self.step_times[-1] if self.step_times else None)):
                with recipe.autocast():
                    loss, metrics = recipe.training_step(batch, step + 1)
                loss_value = distributed.mean_scalar(float(loss.detach().float()), self.device)  # all ranks
                if not math.isfinite(loss_value):
                    raise TrainingError(
                        f"the loss became {loss_value} at step {step + 1} (learning rate {lr:.3g}); nothing "
                        f"was saved from this step. Resume from the last checkpoint with a lower learning "
                        f"rate: python main.py train {recipe.name} --resume {shlex.quote(str(self.run.path))} "
                        f"--set lr={cfg.lr / 10:.3g} (or a stronger --set grad_clip=0.5)", step + 1)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
            distributed.average_gradients(self.params)
            grad_norm = torch.nn.utils.clip_grad_norm_(self.params, cfg.grad_clip) if cfg.grad_clip > 0 else None
            self.optimizer.step()
            recipe.after_step(step + 1)
        except (StepInterrupted, TrainingError):
            raise
        except Exception as exc:  # noqa: BLE001 - only OOM is translated
            if _is_oom(exc):
                self.optimizer.zero_grad(set_to_none=True)
                raise TrainingError(
                    f"out of memory on {self.device} at step {step + 1} with batch_size {cfg.batch_size}: "
                    f"try half of it (--set batch_size={max(1, cfg.batch_size // 2)}).", step + 1) from None
            raise
        return loss_value, metrics, grad_norm

    def advance(self) -> bool:
        """Count the step just taken; True when it ended an epoch."""
        self.step += 1
        self.batch_index += 1
        epoch_done = self.batch_index >= self.spe
        if epoch_done:
            self.epoch, self.batch_index = self.epoch + 1, 0
        self.eval_pending = (epoch_done and self.cfg.eval_every > 0 and self.epoch % self.cfg.eval_every == 0
                             and self.step < self.total)
        return epoch_done

    def log_step(self, lr: float, metrics: dict, grad_norm):
        """The log record of the steps since the last one (mean loss, throughput), with the recipe's live view."""
        now = time.monotonic()
        per_step = sum(self.step_times) / len(self.step_times)
        record = {"kind": "train", "step": self.step, "epoch": self.epoch_now(),
                  "loss": self.window_loss / self.window_steps, "lr": lr,
                  "samples_per_s": self.window_steps * self.recipe.samples_per_step / max(1e-9, now - self.window_t),
                  "eta_s": (self.total - self.step) * per_step, "total_steps": self.total,
                  **({"grad_norm": float(grad_norm)} if grad_norm is not None else {}),
                  **_scalars(metrics)}
        self.log(record)
        live = self.recipe.live_view(self.step)  # sent with the record, never written to metrics.jsonl
        yield Partial({**record, **live} if live else record)
        self.window_loss, self.window_steps, self.window_t = 0.0, 0, time.monotonic()

    def checkpoint_due(self, evaluated: bool) -> bool:
        cfg = self.cfg
        return (cfg.checkpoint_every > 0 and self.step % cfg.checkpoint_every == 0) \
            or (cfg.checkpoint_every == 0 and evaluated) \
            or time.monotonic() - self.last_save >= cfg.checkpoint_seconds

    def train_step(self, batch):
        """One step and what follows it: log, progress, evaluation, checkpoint. Returns True
        when the loop over this epoch's batches should end (the run or the epoch is over)."""
        t0 = time.monotonic()
        lr = self.schedule(self.step)
        try:
            loss_value, metrics, grad_norm = self.optimise(batch, lr)
        except StepInterrupted:  # Stop inside a long step: undone; the engine closes us at this yield
            yield Progress(self.step / self.total, f"stopping at step {self.step}", self.step, self.total)
            raise TrainingError(f"step {self.step + 1} was interrupted but the job was not stopped", self.step + 1)
        epoch_done = self.advance()
        self.step_times.append(time.monotonic() - t0)
        del self.step_times[:-50]
        self.window_loss += loss_value
        self.window_steps += 1
        if self.step % self.cfg.log_every == 0 or self.step == self.total:
            yield from self.log_step(lr, metrics, grad_norm)
        yield Progress(self.step / self.total, f"step {self.step}/{self.total} · epoch {self.epoch + 1}",
                       self.step, self.total)
        evaluated = False
        if self.eval_pending:
            yield from self.evaluation()
            evaluated, self.eval_pending = True, False
        if self.checkpoint_due(evaluated) and self.step < self.total:
            self.save("running")
        return self.step >= self.total or epoch_done

    def steps(self):
        """Every remaining step, epoch by epoch, then the final evaluation."""
        yield Progress(self.step / self.total, f"step {self.step}/{self.total}", self.step, self.total)
        if self.eval_pending:  # stopped after an epoch's last step, before its evaluation: run it now
            yield from self.evaluation()
            self.eval_pending = False
        while self.step < self.total:
            for batch in self.recipe.batches(self.epoch, self.batch_index):
                if (yield from self.train_step(batch)):
                    break
        yield from self.evaluation()

    def train(self):
        """The steps inside the guardrails: whatever ends them, the card says how, and a finished
        or stopped run saves its checkpoint. Returns the result dict."""
        from engine.train import distributed

        outcome, error = "stopped", None
        self.window_t = time.monotonic()
        for m in self.modules.values():
            m.train()
        try:
            yield from self.steps()
            outcome = "finished"
        except TrainingError as exc:
            outcome, error = "failed", str(exc)
            raise
        except (GeneratorExit, KeyboardInterrupt):
            outcome = "stopped"
            raise
        except BaseException as exc:
            outcome, error = "failed", f"{type(exc).__name__}: {exc}"
            if _is_oom(exc):  # outside a training step: evaluation, a recipe's monitor
                error = (f"out of memory on {self.device} at step {self.step}, outside a training step (evaluation): "
                         f"try a smaller eval_batch_size (--set eval_batch_size=...) or batch_size")
                raise TrainingError(error, self.step) from None
            raise
        finally:
            if outcome in ("finished", "stopped"):
                # A stop while saving failed is not retried here: the error is already on its way.
                self.save(outcome)
            else:
                try:  # the weights of the last good checkpoint stay as they are
                    self.write_card("failed", error)
                except (OSError, TrainingError):  # a full disk must not hide the error being reported
                    pass
            distributed.shutdown()
        return {"run": self.run.path.name, "run_dir": str(self.run.path), "status": outcome, "step": self.step,
                "elapsed_s": round(self.elapsed_now(), 2), "metrics": self.eval_metrics,
                "card": str(self.run.card_path), "sha256": self.sha}


def _load_modules(modules: dict, model_state: dict, tensors: dict) -> None:
    modules["model"].load_state_dict(model_state)
    for name, module in modules.items():
        if name == "model":
            continue
        prefix = f"module/{name}/"
        module.load_state_dict({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})


def _jsonable(metrics: dict) -> dict:
    """Metrics as JSON-friendly values: arrays to lists, numpy scalars to floats."""
    out = {}
    for k, v in metrics.items():
        if isinstance(v, np.ndarray):
            out[k] = v.tolist()
        elif isinstance(v, (np.floating, np.integer)):
            out[k] = v.item()
        else:
            out[k] = v
    return out
