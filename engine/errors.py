"""Domain errors: what went wrong, in words a user can act on.

Jobs raise these; the engine turns every exception (these or unexpected ones)
into an ErrorInfo event, so nothing dies silently in a thread.
"""
from __future__ import annotations


def reason(exc: BaseException) -> str:
    """What an exception says, never empty: EOFError() and friends carry no message."""
    text = " ".join(str(exc).split())
    if text:
        return text
    if isinstance(exc, EOFError):
        return "the file ends too early (empty or cut short)"
    return f"{type(exc).__name__} with no further detail"


class PatchworkError(Exception):
    """Base of all errors meant to be shown to the user as they are."""


class BadImageError(PatchworkError):
    """A file that cannot be used as an image (corrupt, truncated, empty, a bomb...)."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class ModelError(PatchworkError):
    """A model that cannot be found, loaded or run."""


class ExportError(PatchworkError):
    """A model that cannot be exported, or whose export failed its check against PyTorch."""


class DiskFullError(PatchworkError):
    """A write that failed because the disk (or the file's size limit) is full."""


class DeviceError(PatchworkError):
    """A requested device (cuda, mps) that this machine cannot provide."""


class TrainingError(PatchworkError):
    """A run that cannot go on: a NaN loss, out of memory, a full disk, a bad config.

    `step` is the optimisation step it happened at, when there is one.
    """

    def __init__(self, message: str, step: int | None = None):
        super().__init__(message)
        self.step = step


class JobCancelled(PatchworkError):
    """Raised by JobHandle.result() when the job was stopped before finishing."""


class JobFailed(PatchworkError):
    """Raised by JobHandle.result() with the job's ErrorInfo attached."""

    def __init__(self, info):
        super().__init__(info.message)
        self.info = info
