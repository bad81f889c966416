"""Plain-data types that cross the engine boundary: job states, events, progress.

Nothing here holds a tensor or a widget; the GUI and CLI receive only these.
"""
from __future__ import annotations

import enum
import threading
import time
from dataclasses import dataclass, field
from typing import Any


class Priority(enum.IntEnum):
    """Interactive requests cut in between the steps of background jobs."""

    INTERACTIVE = 0
    BACKGROUND = 1


class JobState(str, enum.Enum):
    QUEUED = "queued"
    RUNNING = "running"
    PAUSED = "paused"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (JobState.DONE, JobState.FAILED, JobState.CANCELLED)


@dataclass(frozen=True)
class Progress:
    """Yielded by a job: how far it is. `fraction` is None when unknown."""

    fraction: float | None = None
    message: str = ""
    done: int | None = None
    total: int | None = None


@dataclass(frozen=True)
class Partial:
    """Yielded by a job: an intermediate result worth showing now (plain data)."""

    value: Any


@dataclass(frozen=True)
class ErrorInfo:
    """A failure as data. `expected` is True for domain errors (PatchworkError)."""

    type: str
    message: str
    expected: bool
    traceback: str = ""


@dataclass
class JobInfo:
    """A snapshot of one job, for the jobs list."""

    id: int
    name: str
    kind: str
    priority: Priority
    state: JobState
    submitted: float
    started: float | None = None
    finished: float | None = None
    progress: Progress = field(default_factory=Progress)
    error: ErrorInfo | None = None
    internal: bool = False  # bookkeeping (listing models, runs, samples): the jobs list hides it by default

    @property
    def elapsed(self) -> float:
        if self.started is None:
            return 0.0
        return (self.finished or time.monotonic()) - self.started

    @property
    def eta(self) -> float | None:
        """Seconds left, extrapolated linearly from the progress fraction."""
        f = self.progress.fraction
        if self.state is not JobState.RUNNING or not f or f <= 0 or f > 1:
            return None
        return self.elapsed * (1 - f) / f


@dataclass(frozen=True)
class JobEvent:
    """What the engine tells its listeners.

    kind: "state" | "progress" | "partial" | "result" | "error".
    payload: JobState, Progress, the partial value, the result, or ErrorInfo.
    """

    job_id: int
    kind: str
    payload: Any
    info: JobInfo


@dataclass(frozen=True)
class EngineStatus:
    """Published by the engine: device, memory, loaded models, busy or not."""

    device: str
    device_name: str
    rss_mb: float
    accel_mb: float | None
    loaded_models: tuple[tuple[str, float], ...]
    busy: bool
    torch_version: str = ""
    budget_mb: float = 0.0  # the model cache's memory budget


@dataclass(frozen=True)
class EngineWarning:
    """Something the user should know that did not stop any job."""

    message: str


class JobHandle:
    """What submit() returns: wait for the result, cancel, read the state."""

    def __init__(self, info: JobInfo, engine):
        self.info = info
        self._engine = engine
        self._done = threading.Event()
        self._result: Any = None
        self._cancel = threading.Event()

    @property
    def id(self) -> int:
        return self.info.id

    @property
    def state(self) -> JobState:
        return self.info.state

    def cancel(self) -> None:
        self._engine.cancel(self.id)

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    def result(self, timeout: float | None = None) -> Any:
        """Block until finished; return the result or raise JobFailed/JobCancelled."""
        from engine.errors import JobCancelled, JobFailed

        if not self._done.wait(timeout):
            raise TimeoutError(f"job {self.id} ({self.info.name}) still {self.state.value}")
        if self.info.state is JobState.FAILED:
            raise JobFailed(self.info.error)
        if self.info.state is JobState.CANCELLED:
            raise JobCancelled(f"job {self.id} ({self.info.name}) was stopped")
        return self._result
