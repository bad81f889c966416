"""Stop inside a long training step, at a clean point.

A step is one yield of the training generator, so Stop normally lands between steps. When
steps are long (a big model or batch on a CPU: seconds each), waiting for the step to end
would break the one-second promise. For such steps the forward pass of every module and
the arrival of every parameter's gradient check the Stop flag; a Stop there abandons the
step before the optimizer touches the weights, and puts back what the step had already
changed (the random-number generators, module buffers such as BatchNorm statistics, momentum
encoders, queues and memory banks), so the checkpoint saved on Stop is exactly the state after
the last completed step and a resume continues bit for bit.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Callable

from engine.stopping import Interrupted, stop_inside

#: Steps shorter than this stop between steps well within a second; longer ones are guarded.
LONG_STEP_S = 0.25


#: Stop arrived inside a guarded training step; the step has been undone.
StepInterrupted = Interrupted


class StepGuard:
    """Arms Stop checks inside the steps that need them (see the module docstring)."""

    def __init__(self, cancelled: Callable[[], bool] | None, modules: dict, recipe, params: list):
        self.cancelled = cancelled
        self.modules = modules
        self.recipe = recipe
        self.params = params

    def wanted(self, last_step_s: float | None) -> bool:
        """Guard the first step (its length is unknown) and every step after a long one."""
        return self.cancelled is not None and (last_step_s is None or last_step_s >= LONG_STEP_S)

    @contextmanager
    def step(self, armed: bool):
        if not armed:
            yield
            return
        saved = self._snapshot()
        try:
            with stop_inside(self.cancelled, self.params):
                yield
        except Interrupted:
            self._restore(saved)
            raise

    def _snapshot(self) -> dict:
        from engine.runs.checkpoint import rng_state

        state = {name: ({k: v.detach().clone() for k, v in m.named_buffers()} if name == "model"
                        else {k: v.detach().clone() for k, v in m.state_dict().items()})
                 for name, m in self.modules.items()}
        recipe_tensors = {k: v.detach().clone() for k, v in self.recipe.state_tensors().items()}
        return {"modules": state, "recipe": recipe_tensors, "rng": rng_state()}

    def _restore(self, saved: dict) -> None:
        import torch

        from engine.runs.checkpoint import set_rng_state

        with torch.no_grad():
            for name, m in self.modules.items():
                values = saved["modules"][name]
                live = dict(m.named_buffers()) if name == "model" else m.state_dict()
                for k, v in values.items():
                    live[k].copy_(v)
        if saved["recipe"]:
            self.recipe.load_state_tensors(saved["recipe"])
        for p in self.params:
            p.grad = None
        set_rng_state(*saved["rng"])
