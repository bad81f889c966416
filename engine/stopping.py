"""Stop inside a long model call: what lets a job stop within a second when one forward pass
(a big batch on a CPU, a diffusion step over many images) takes longer than that.

While `stop_inside(cancelled)` is active, every module's forward (and, if given, the arrival
of each parameter's gradient) checks the job's Stop flag and raises Interrupted, abandoning
the call. The hooks are registered only for the duration of the block, never across a yield,
so a request that cuts in between a job's steps is never checked against that job's flag.
The caller decides what an abandoned call means: generation just ends; training undoes the
step (engine/train/interrupt.py).
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterable


class Interrupted(Exception):
    """Stop arrived inside a model call; the call was abandoned."""


@contextmanager
def stop_inside(cancelled: Callable[[], bool] | None, params: Iterable = ()):
    if cancelled is None:
        yield
        return
    import torch

    def check(*_):
        if cancelled():
            raise Interrupted()

    handles = [torch.nn.modules.module.register_module_forward_pre_hook(check)]
    handles += [p.register_hook(check) for p in params]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def next_or_stop(it, cancelled: Callable[[], bool] | None):
    """next(it) with stop_inside active; StopIteration and Interrupted pass through."""
    with stop_inside(cancelled):
        return next(it)
