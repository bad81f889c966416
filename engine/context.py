"""What a job sees: the device, the model cache, and whether it was asked to stop.

Created on the engine thread; this is where torch is first imported.
"""
from __future__ import annotations

import gc
import os
import sys

from engine.device import device_name, select_device
from engine.jobs import EngineStatus
from engine.models.cache import ModelCache


class EngineContext:
    def __init__(self, device: str | None, budget_mb: float):
        import torch

        self.torch = torch
        self.device = select_device(device)
        self.models = ModelCache(budget_mb)

    def set_device(self, request: str | None) -> str:
        new = select_device(request)
        if new != self.device:
            self.models.unload()  # weights live on the old device
            self._free_accelerator()
            self.device = new
        return self.device

    def _free_accelerator(self) -> None:
        gc.collect()
        if self.torch.cuda.is_available():
            self.torch.cuda.empty_cache()

    def status(self, busy: bool) -> EngineStatus:
        accel = None
        if self.device.startswith("cuda"):
            accel = self.torch.cuda.memory_allocated(self.torch.device(self.device)) / 2**20
        return EngineStatus(device=self.device, device_name=device_name(self.device), rss_mb=rss_mb(),
                            accel_mb=accel, loaded_models=self.models.loaded(), busy=busy,
                            torch_version=self.torch.__version__, budget_mb=self.models.budget_mb)


class JobContext:
    """Per-job view of the engine context."""

    def __init__(self, engine_ctx: EngineContext, handle):
        self._ctx = engine_ctx
        self._handle = handle

    @property
    def device(self) -> str:
        return self._ctx.device

    @property
    def models(self) -> ModelCache:
        return self._ctx.models

    @property
    def engine(self) -> EngineContext:
        return self._ctx

    @property
    def cancelled(self) -> bool:
        """For jobs with long inner loops: check this between chunks of work."""
        return self._handle.cancel_requested


def set_device_job(ctx: JobContext, device: str | None = None) -> str:
    """Switch the engine's device at run time; loaded models are unloaded."""
    return ctx.engine.set_device(device)


def unload_models_job(ctx: JobContext, model_id: str | None = None) -> tuple:
    """Unload one catalogue model (on every device it is loaded on) or all of them."""
    if model_id is None:
        ctx.models.unload()
    for key, _ in ctx.models.loaded():
        if key.split("@", 1)[0] == model_id:
            ctx.models.unload(key)
    ctx.engine._free_accelerator()
    return ctx.models.loaded()


def rss_mb() -> float:
    """Resident memory of this process in MB (Linux /proc; peak RSS elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, AttributeError):
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 2**20 if sys.platform == "darwin" else peak / 1024
