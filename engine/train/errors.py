"""Errors a training run reports to the user."""
from __future__ import annotations

from engine.errors import PatchworkError


class TrainingError(PatchworkError):
    """A run that cannot go on: a NaN loss, out of memory, a full disk, a bad config.

    `step` is the optimisation step it happened at, when there is one.
    """

    def __init__(self, message: str, step: int | None = None):
        super().__init__(message)
        self.step = step
