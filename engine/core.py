"""The engine: one long-lived thread that owns the device and the loaded models.

Work arrives as jobs. A job is a function `fn(ctx, **params)` that returns a
generator: it yields Progress/Partial (plain data), returns its result and raises
domain errors. The engine advances generators one step at a time:

* interactive jobs run first, to completion, checking cancel between steps;
* background jobs are advanced one step per turn, round-robin, so interactive
  requests cut in between their steps and the UI stays live during training;
* cancel is cooperative: the engine stops advancing the generator and closes it
  (its `finally` blocks run). Jobs yield at least once a second, so cancel lands
  within a second.

Torch is imported on this thread (in EngineContext), never by the caller, so a
GUI can paint before torch has loaded.
"""
from __future__ import annotations

import inspect
import itertools
import logging
import sys
import threading
import time
import traceback
from collections import deque
from typing import Any, Callable

from engine import gc_quiet, lazy
from engine.errors import DeviceError, PatchworkError
from engine.jobs import (
    EngineStatus,
    EngineWarning,
    ErrorInfo,
    JobEvent,
    JobHandle,
    JobInfo,
    JobState,
    Partial,
    Priority,
    Progress,
)

log = logging.getLogger(__name__)

#: Named requests the GUI and CLI may submit without importing torch-heavy modules.
REQUESTS: dict[str, str] = {
    "classify": "engine.classify:classify_job",
    "classify_batch": "engine.classify:classify_batch_job",
    "attention": "engine.attention.jobs:attention_job",
    "attention_samples": "engine.attention.samples:samples_job",
    "set_device": "engine.context:set_device_job",
    "train": "engine.train.jobs:train_job",
    "train_recipes": "engine.train.requests:recipes_job",
    "train_backbones": "engine.train.requests:backbones_job",
    "train_runs": "engine.train.requests:runs_job",
    "train_run_history": "engine.train.requests:run_history_job",
    "delete_run": "engine.train.requests:delete_run_job",
    "train_preview": "engine.train.preview:preview_job",
    "fashion_mnist_status": "engine.data.fashion_mnist_get:status_job",
    "fashion_mnist_download": "engine.data.fashion_mnist_get:download_job",
    "unload_models": "engine.context:unload_models_job",
    "list_models": "engine.catalogue.jobs:list_models_job",
    "import_model": "engine.catalogue.jobs:import_model_job",
    "delete_user_model": "engine.catalogue.jobs:delete_user_model_job",
    "index_folder": "engine.search.index:index_job",
    "search": "engine.search.query:search_job",
    "search_status": "engine.search.index:folder_status_job",
    "explain_search": "engine.search.explain:explain_job",
    "download_model": "engine.catalogue.download_jobs:download_model_job",
    "delete_model": "engine.catalogue.download_jobs:delete_model_job",
    "generate": "engine.generate.jobs:generate_job",
    "generate_interpolate": "engine.generate.jobs:interpolate_job",
    "generate_export_gif": "engine.generate.jobs:export_gif_job",
    "generate_gallery": "engine.generate.jobs:gallery_job",
    "generate_models": "engine.generate.jobs:models_job",
    "mae": "engine.mae.jobs:mae_job",
    "mae_samples": "engine.mae.jobs:mae_samples_job",
    "match": "engine.match.jobs:match_job",
    "match_samples": "engine.match.jobs:match_samples_job",
    "collection_map": "engine.collection.jobs:map_job",
    "collection_duplicates": "engine.collection.jobs:duplicates_job",
    "collection_like": "engine.collection.jobs:like_job",
    "export_run": "engine.export.jobs:export_job",
    "try_model": "engine.export.try_model:try_model_job",
}

#: Requests that only fetch what a panel needs to show itself (lists, samples, previews, curves):
#: their jobs are marked internal, so the jobs list shows the user's own work unless asked for all.
INTERNAL_REQUESTS: frozenset[str] = frozenset({
    "attention_samples", "train_recipes", "train_backbones", "train_runs", "train_run_history", "train_preview",
    "fashion_mnist_status",
    "list_models", "search_status", "generate_gallery", "generate_models", "mae_samples", "match_samples",
})

Listener = Callable[[Any], None]


def resolve_request(request: str | Callable) -> Callable:
    if callable(request):
        return request
    try:
        target = REQUESTS[request]
    except KeyError:
        raise PatchworkError(f"unknown request {request!r}; known: {', '.join(sorted(REQUESTS))}") from None
    if target.partition(":")[0] in sys.modules:
        return lazy.attribute(target)
    with gc_quiet.loading():  # a feature's first import (timm, transformers...) without a GUI freeze
        return lazy.attribute(target)


class _Job:
    """Engine-private bookkeeping for one job."""

    def __init__(self, info: JobInfo, fn: str | Callable, params: dict, handle: JobHandle):
        self.info = info
        self.fn = fn
        self.params = params
        self.handle = handle
        self.gen = None
        self.paused = False
        self.last_emit: dict[str, float] = {}
        self.pending: dict[str, Any] = {}


class Engine:
    """Owns the engine thread. Thread-safe API: submit, cancel, jobs, shutdown."""

    def __init__(self, device: str | None = None, *, memory_budget_mb: float = 6000,
                 progress_hz: float = 20.0, history: int = 200, fallback_device: bool = False):
        """fallback_device: if `device` is unavailable, warn and use auto (the GUI's choice,
        so a saved 'cuda' setting on a machine without a GPU does not leave the app dead);
        otherwise every job fails with the DeviceError (the CLI's choice)."""
        self._device_request = device
        self._fallback_device = fallback_device
        self.warnings: list[str] = []
        self._memory_budget_mb = memory_budget_mb
        self._min_interval = 1.0 / progress_hz
        self._history = history
        self._cv = threading.Condition()
        self._interactive: deque[_Job] = deque()
        self._background: deque[_Job] = deque()
        self._paused: dict[int, _Job] = {}
        self._jobs: dict[int, _Job] = {}
        self._ids = itertools.count(1)
        self._listeners: list[Listener] = []
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._startup_error: ErrorInfo | None = None
        self._last_status = 0.0
        self.context = None  # EngineContext, created on the engine thread
        self.ready = threading.Event()
        self.status: EngineStatus | None = None

    # ----------------------------------------------------------------- public API
    def start(self) -> "Engine":
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="patchwork-engine", daemon=True)
            self._thread.start()
        return self

    def add_listener(self, fn: Listener) -> None:
        """fn(event) receives JobEvent, EngineStatus and EngineWarning objects.

        Mostly on the engine thread; the QUEUED event of submit() and the CANCELLED event
        of a job cancelled while queued come on the caller's thread. Listeners must not
        block (the GUI's bridge only re-emits a queued Qt signal).
        """
        self._listeners.append(fn)

    def remove_listener(self, fn: Listener) -> None:
        if fn in self._listeners:
            self._listeners.remove(fn)

    def submit(self, request: str | Callable, params: dict | None = None, *, name: str | None = None,
               priority: Priority = Priority.INTERACTIVE, internal: bool | None = None) -> JobHandle:
        """internal: None takes the request's own mark (INTERNAL_REQUESTS)."""
        if isinstance(request, str) and request not in REQUESTS:
            raise PatchworkError(f"unknown request {request!r}; known: {', '.join(sorted(REQUESTS))}")
        kind = request if isinstance(request, str) else getattr(request, "__name__", "job")
        if internal is None:
            internal = kind in INTERNAL_REQUESTS
        info = JobInfo(id=next(self._ids), name=name or kind, kind=kind, priority=Priority(priority),
                       state=JobState.QUEUED, submitted=time.monotonic(), internal=internal)
        handle = JobHandle(info, self)
        job = _Job(info, request, dict(params or {}), handle)
        with self._cv:
            if self._stopping:
                raise PatchworkError("the engine has shut down")
            self._jobs[info.id] = job
            (self._interactive if priority == Priority.INTERACTIVE else self._background).append(job)
            self._prune_history()
            # Emitted under the lock so no listener can see RUNNING before QUEUED.
            self._emit(JobEvent(info.id, "state", info.state, info))
            self._cv.notify_all()
        return handle

    def cancel(self, job_id: int) -> None:
        """Request a stop. A queued job is cancelled at once; a running one at its next step."""
        with self._cv:
            job = self._jobs.get(job_id)
            if job is None or job.info.state.finished:
                return
            job.handle._cancel.set()
            # The engine thread marks a job RUNNING under this lock as it dequeues it,
            # so a QUEUED job here is certainly not being run.
            queued = job.info.state is JobState.QUEUED
            if queued:
                for q in (self._interactive, self._background):
                    if job in q:
                        q.remove(job)
            elif job.info.id in self._paused:  # let the engine thread close it
                self._background.appendleft(self._paused.pop(job.info.id))
            self._cv.notify_all()
        if queued:
            self._finish(job, JobState.CANCELLED, None)

    def pause(self, job_id: int) -> None:
        """Pause a background job between two of its steps (interactive jobs are not paused)."""
        with self._cv:
            job = self._jobs.get(job_id)
            if job is None or job.info.state.finished or job.info.priority != Priority.BACKGROUND:
                return
            job.paused = True
            if job in self._background:
                self._background.remove(job)
                self._park(job)

    def resume(self, job_id: int) -> None:
        with self._cv:
            job = self._jobs.get(job_id)
            if job is None or not job.paused:
                return
            job.paused = False
            if self._paused.pop(job_id, None) is not None:
                job.info.state = JobState.RUNNING if job.gen is not None else JobState.QUEUED
                self._background.append(job)
                self._emit(JobEvent(job.info.id, "state", job.info.state, job.info))
            self._cv.notify_all()

    def _park(self, job: _Job) -> None:
        """Under the lock: move a paused background job aside until resume()."""
        self._paused[job.info.id] = job
        job.info.state = JobState.PAUSED
        self._emit(JobEvent(job.info.id, "state", job.info.state, job.info))

    def jobs(self) -> list[JobInfo]:
        with self._cv:
            return [j.info for j in self._jobs.values()]

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Wait until torch is imported and the device chosen."""
        return self.ready.wait(timeout)

    def shutdown(self, timeout: float = 5.0) -> None:
        """Cancel everything and stop the thread (waits up to `timeout`)."""
        with self._cv:
            self._stopping = True
            for job in self._jobs.values():
                if not job.info.state.finished:
                    job.handle._cancel.set()
            self._cv.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
        gc_quiet.thaw()  # the engine's models are gone: let the collector see everything again

    # ----------------------------------------------------------------- engine thread
    def _run(self) -> None:
        try:
            from engine.context import EngineContext

            try:
                with gc_quiet.loading():  # imports torch: keep full GC passes out of it
                    self.context = EngineContext(self._device_request, self._memory_budget_mb)
            except DeviceError as exc:
                if not self._fallback_device:
                    raise
                self.context = EngineContext("auto", self._memory_budget_mb)
                self.warnings.append(f"{exc} Using {self.context.device} instead.")
                self._emit(EngineWarning(self.warnings[-1]))
        except BaseException as exc:  # noqa: BLE001 - reported as data, never silent
            self._startup_error = _error_info(exc)
            # Reported through the status and every job's error; only a debug trace here.
            log.debug("engine start-up failed: %s", self._startup_error.message)
        self._publish_status(force=True)
        self.ready.set()
        while True:
            job = self._next_job()
            if job is None:
                if self._stopping:
                    break
                self._publish_status()
                continue
            if job.info.priority == Priority.INTERACTIVE:
                while not self._advance(job):
                    pass
            else:
                if not self._advance(job):
                    with self._cv:
                        if job.paused and not job.handle.cancel_requested:
                            self._park(job)
                        else:
                            self._background.append(job)
            self._publish_status()
        # Close whatever is left so its finally blocks run.
        for job in list(self._jobs.values()):
            if not job.info.state.finished:
                self._finish(job, JobState.CANCELLED, None)

    def _next_job(self) -> _Job | None:
        with self._cv:
            while not self._stopping:
                queue = self._interactive or self._background
                if queue:
                    job = queue.popleft()
                    if job.info.state is JobState.QUEUED:
                        job.info.state = JobState.RUNNING
                        job.info.started = time.monotonic()
                    return job
                self._cv.wait(timeout=1.0)
                return None
            return None

    def _advance(self, job: _Job) -> bool:
        """Run one step of `job`; return True when it has finished."""
        if job.handle.cancel_requested or self._stopping:
            self._finish(job, JobState.CANCELLED, None)
            return True
        if self._startup_error is not None:
            self._finish(job, JobState.FAILED, self._startup_error)
            return True
        try:
            if job.gen is None:
                self._emit(JobEvent(job.info.id, "state", job.info.state, job.info))  # RUNNING
                from engine.context import JobContext

                out = resolve_request(job.fn)(JobContext(self.context, job.handle), **job.params)
                if not inspect.isgenerator(out):
                    self._finish(job, JobState.DONE, out)
                    return True
                job.gen = out
            item = next(job.gen)
        except StopIteration as stop:
            self._finish(job, JobState.DONE, stop.value)
            return True
        except BaseException as exc:  # noqa: BLE001 - includes SystemExit from libraries
            self._finish(job, JobState.FAILED, _error_info(exc))
            return True
        if isinstance(item, Progress):
            job.info.progress = item
            self._throttled(job, "progress", item)
        elif isinstance(item, Partial):
            self._throttled(job, "partial", item.value)
        # Any other yield (None) is just a cancel checkpoint.
        return False

    def _throttled(self, job: _Job, kind: str, payload: Any) -> None:
        """At most ~progress_hz events per job and kind; the latest one always lands."""
        now = time.monotonic()
        if now - job.last_emit.get(kind, 0.0) >= self._min_interval:
            job.last_emit[kind] = now
            job.pending.pop(kind, None)
            self._emit(JobEvent(job.info.id, kind, payload, job.info))
        else:
            job.pending[kind] = payload

    def _finish(self, job: _Job, state: JobState, value: Any) -> None:
        if job.gen is not None:
            try:
                job.gen.close()
            except BaseException as exc:  # noqa: BLE001
                log.warning("job %s raised while closing: %s", job.info.id, exc)
            job.gen = None
        for kind, payload in list(job.pending.items()):
            if state is JobState.DONE:
                self._emit(JobEvent(job.info.id, kind, payload, job.info))
        job.pending.clear()
        job.info.state = state
        job.info.finished = time.monotonic()
        if state is JobState.DONE:
            job.handle._result = value
            if job.info.progress.fraction is not None:
                job.info.progress = Progress(1.0, job.info.progress.message, job.info.progress.total,
                                             job.info.progress.total)
            self._emit(JobEvent(job.info.id, "result", value, job.info))
        elif state is JobState.FAILED:
            job.info.error = value
            self._emit(JobEvent(job.info.id, "error", value, job.info))
        self._emit(JobEvent(job.info.id, "state", state, job.info))
        self._publish_status(force=True)  # before _done, so a caller of result() sees fresh status
        job.handle._done.set()

    def _prune_history(self) -> None:
        finished = [i for i, j in self._jobs.items() if j.info.state.finished]
        for i in finished[: max(0, len(self._jobs) - self._history)]:
            del self._jobs[i]

    def _publish_status(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_status < 1.0:
            return
        self._last_status = now
        with self._cv:
            busy = any(j.info.state is JobState.RUNNING for j in self._jobs.values())
        if self.context is not None:
            self.status = self.context.status(busy)
        else:
            from engine.context import rss_mb  # no context yet: the process's memory still counts

            msg = self._startup_error.message if self._startup_error else "starting"
            self.status = EngineStatus("none", msg, rss_mb(), None, (), busy)
        self._emit(self.status)

    def _emit(self, event: Any) -> None:
        for fn in list(self._listeners):
            try:
                fn(event)
            except Exception:  # noqa: BLE001 - a broken listener must not stop the engine
                log.exception("engine listener failed")


def _error_info(exc: BaseException) -> ErrorInfo:
    expected = isinstance(exc, PatchworkError)
    message = str(exc) or type(exc).__name__
    if not expected:
        message = f"{type(exc).__name__}: {message}"
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return ErrorInfo(type=type(exc).__name__, message=message, expected=expected, traceback=tb)

