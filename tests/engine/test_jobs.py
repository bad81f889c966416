"""The engine thread: job lifecycle, cancel, errors as data, priorities, throttling, devices.

Jobs here are plain Python generator functions `job(ctx, **params)`; no model is loaded.
"""
from __future__ import annotations

import sys
import threading
import time

import pytest

from engine.core import Engine
from engine.errors import BadImageError, DeviceError, JobCancelled, JobFailed, PatchworkError
from engine.jobs import EngineStatus, EngineWarning, ErrorInfo, JobEvent, JobState, Partial, Priority, Progress

WAIT = 10.0  # generous upper bound for things that should take milliseconds


class Recorder:
    """A listener that keeps every event (called from the engine thread and the caller's)."""

    def __init__(self):
        self._lock = threading.Lock()
        self.events: list = []

    def __call__(self, event) -> None:
        with self._lock:
            self.events.append(event)

    def job_events(self, job_id: int, kind: str | None = None) -> list[JobEvent]:
        with self._lock:
            return [e for e in self.events
                    if isinstance(e, JobEvent) and e.job_id == job_id and (kind is None or e.kind == kind)]

    def states(self, job_id: int) -> list[JobState]:
        return [e.payload for e in self.job_events(job_id, "state")]

    def of_type(self, cls) -> list:
        with self._lock:
            return [e for e in self.events if isinstance(e, cls)]


@pytest.fixture
def engine():
    """A started CPU engine; shut down (and its thread joined) after the test."""
    eng = Engine(device="cpu")
    eng.start()
    assert eng.wait_ready(60), "engine did not become ready"
    yield eng
    eng.shutdown()
    assert not eng._thread.is_alive(), "engine thread still alive after shutdown"


@pytest.fixture
def recorder(engine):
    rec = Recorder()
    engine.add_listener(rec)
    return rec


_kept_alive: list = []


def forever(ctx, started: threading.Event, closed: threading.Event, step: float = 0.05):
    """A job that never ends on its own: yields every `step` seconds until cancelled.

    A reference to the generator is kept here, so its `finally` can only run because
    the engine closed it (not because the garbage collector finalised it).
    """
    def gen():
        started.set()
        try:
            while True:
                time.sleep(step)
                yield
        finally:
            closed.set()

    g = gen()
    _kept_alive.append(g)
    return g


@pytest.fixture(autouse=True)
def _release_kept_generators():
    yield
    _kept_alive.clear()


# ----------------------------------------------------------------------------- lifecycle
def test_lifecycle_states_progress_partial_and_result(engine, recorder):
    def job(ctx, n):
        yield Progress(0.0, "start", 0, 2)
        yield Partial("halfway")
        yield Progress(0.5, "half", 1, 2)
        return n * 2

    handle = engine.submit(job, {"n": 21}, name="double")
    assert handle.result(timeout=WAIT) == 42
    assert handle.state is JobState.DONE

    assert recorder.states(handle.id) == [JobState.QUEUED, JobState.RUNNING, JobState.DONE]
    progress = [e.payload for e in recorder.job_events(handle.id, "progress")]
    assert progress and all(isinstance(p, Progress) for p in progress)
    assert progress[-1].fraction == 0.5  # the latest progress always lands, even if throttled
    assert [e.payload for e in recorder.job_events(handle.id, "partial")] == ["halfway"]
    results = recorder.job_events(handle.id, "result")
    assert [e.payload for e in results] == [42]
    assert recorder.job_events(handle.id, "error") == []

    # The result comes before the final DONE state event.
    kinds = [e.kind for e in recorder.job_events(handle.id)]
    assert kinds.index("result") < len(kinds) - 1 and kinds[-1] == "state"

    infos = {i.id: i for i in engine.jobs()}
    assert infos[handle.id].state is JobState.DONE
    assert infos[handle.id].name == "double"
    assert infos[handle.id].progress.fraction == 1.0  # bumped to complete on DONE
    assert infos[handle.id].elapsed >= 0.0 and infos[handle.id].eta is None


def test_plain_function_returning_a_value(engine, recorder):
    def job(ctx, a, b):
        return {"sum": a + b, "device": ctx.device}

    handle = engine.submit(job, {"a": 2, "b": 3})
    assert handle.result(timeout=WAIT) == {"sum": 5, "device": "cpu"}
    assert recorder.states(handle.id) == [JobState.QUEUED, JobState.RUNNING, JobState.DONE]


def test_engine_publishes_status():
    eng = Engine(device="cpu")
    rec = Recorder()
    eng.add_listener(rec)
    try:
        eng.start()
        assert eng.wait_ready(60)
        first = rec.of_type(EngineStatus)  # published before ready is set
        assert first and first[0].device == "cpu" and first[0].torch_version and not first[0].busy
        assert eng.status is not None and eng.status.device == "cpu"

        eng.submit(lambda ctx: None).result(timeout=WAIT)
        # More statuses follow (one after each finished job, once its handle is released).
        deadline = time.monotonic() + WAIT
        while len(rec.of_type(EngineStatus)) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(rec.of_type(EngineStatus)) >= 2
    finally:
        eng.shutdown()


# ----------------------------------------------------------------------------- cancel
@pytest.mark.parametrize("priority", [Priority.BACKGROUND, Priority.INTERACTIVE])
def test_cancel_running_job_within_a_second(engine, recorder, priority):
    started, closed = threading.Event(), threading.Event()
    handle = engine.submit(forever, {"started": started, "closed": closed}, priority=priority)
    assert started.wait(WAIT)
    # It is running for real: a few more steps go by.
    time.sleep(0.15)
    assert handle.state is JobState.RUNNING and not closed.is_set()

    t0 = time.monotonic()
    handle.cancel()
    assert handle.wait(WAIT)
    elapsed = time.monotonic() - t0
    assert elapsed < 1.0, f"cancel took {elapsed:.2f} s"
    assert handle.state is JobState.CANCELLED
    assert closed.is_set(), "the generator's finally block did not run"
    with pytest.raises(JobCancelled):
        handle.result(timeout=0)
    assert recorder.states(handle.id)[-1] is JobState.CANCELLED
    assert recorder.job_events(handle.id, "result") == []

    # The engine is still usable afterwards.
    assert engine.submit(lambda ctx: "next").result(timeout=WAIT) == "next"


def test_cancel_queued_job_before_start():
    eng = Engine(device="cpu")  # not started: the job can only be queued
    ran = threading.Event()
    try:
        handle = eng.submit(lambda ctx: ran.set())
        assert handle.state is JobState.QUEUED
        handle.cancel()
        assert handle.wait(0), "a queued job should be cancelled at once"
        assert handle.state is JobState.CANCELLED
        with pytest.raises(JobCancelled):
            handle.result(timeout=0)
        eng.start()
        assert eng.wait_ready(60)
        assert eng.submit(lambda ctx: "ok").result(timeout=WAIT) == "ok"
        assert not ran.is_set(), "a cancelled queued job must never run"
    finally:
        eng.shutdown()


def test_cancel_job_queued_behind_busy_interactive_job(engine, recorder):
    release, started = threading.Event(), threading.Event()

    def blocker(ctx):
        started.set()
        while not release.wait(0.02):
            yield
        return "blocker done"

    ran = threading.Event()
    first = engine.submit(blocker)
    assert started.wait(WAIT)
    second = engine.submit(lambda ctx: ran.set())
    assert second.state is JobState.QUEUED

    second.cancel()
    assert second.wait(0), "a queued job should be cancelled at once"
    assert second.state is JobState.CANCELLED
    with pytest.raises(JobCancelled):
        second.result(timeout=0)
    assert recorder.states(second.id) == [JobState.QUEUED, JobState.CANCELLED]

    release.set()
    assert first.result(timeout=WAIT) == "blocker done"
    assert engine.submit(lambda ctx: "third").result(timeout=WAIT) == "third"
    assert not ran.is_set()
    # The engine never picked the cancelled job up again (no second CANCELLED).
    assert recorder.states(second.id) == [JobState.QUEUED, JobState.CANCELLED]


def test_cancel_after_finish_is_a_no_op(engine):
    handle = engine.submit(lambda ctx: 7)
    assert handle.result(timeout=WAIT) == 7
    handle.cancel()
    assert handle.state is JobState.DONE and handle.result(timeout=0) == 7


def test_shutdown_cancels_running_job_and_runs_finally():
    eng = Engine(device="cpu").start()
    assert eng.wait_ready(60)
    started, closed = threading.Event(), threading.Event()
    handle = eng.submit(forever, {"started": started, "closed": closed}, priority=Priority.BACKGROUND)
    assert started.wait(WAIT)
    eng.shutdown()
    assert not eng._thread.is_alive()
    assert handle.wait(0) and handle.state is JobState.CANCELLED
    assert closed.is_set()
    with pytest.raises(PatchworkError):
        eng.submit(lambda ctx: None)


# ----------------------------------------------------------------------------- errors
def test_domain_error_reaches_caller_as_expected(engine, recorder):
    def job(ctx):
        yield Progress(0.1)
        raise BadImageError("holiday.jpg", "truncated or incomplete file")

    handle = engine.submit(job)
    with pytest.raises(JobFailed) as exc_info:
        handle.result(timeout=WAIT)
    info = exc_info.value.info
    assert isinstance(info, ErrorInfo)
    assert info.expected is True
    assert info.type == "BadImageError"
    assert info.message == "holiday.jpg: truncated or incomplete file"
    assert str(exc_info.value) == info.message
    assert handle.state is JobState.FAILED and handle.info.error == info

    errors = recorder.job_events(handle.id, "error")
    assert [e.payload for e in errors] == [info]
    assert recorder.states(handle.id)[-1] is JobState.FAILED

    assert engine.submit(lambda ctx: "still alive").result(timeout=WAIT) == "still alive"


def test_unexpected_error_carries_traceback(engine, recorder):
    def job(ctx):
        yield
        return 1 / 0

    handle = engine.submit(job)
    with pytest.raises(JobFailed) as exc_info:
        handle.result(timeout=WAIT)
    info = exc_info.value.info
    assert info.expected is False
    assert info.type == "ZeroDivisionError"
    assert info.message.startswith("ZeroDivisionError")
    assert "ZeroDivisionError" in info.traceback and "Traceback" in info.traceback
    assert [e.payload for e in recorder.job_events(handle.id, "error")] == [info]

    assert engine.submit(lambda ctx: "still alive").result(timeout=WAIT) == "still alive"


@pytest.mark.parametrize("as_generator", [True, False])
def test_sys_exit_in_job_fails_the_job_not_the_engine(engine, as_generator):
    if as_generator:
        def job(ctx):
            yield
            sys.exit(3)
    else:
        def job(ctx):
            sys.exit(3)

    handle = engine.submit(job)
    with pytest.raises(JobFailed) as exc_info:
        handle.result(timeout=WAIT)
    assert handle.state is JobState.FAILED
    assert exc_info.value.info.type == "SystemExit"
    assert exc_info.value.info.expected is False
    assert engine._thread.is_alive()
    assert engine.submit(lambda ctx: "still alive").result(timeout=WAIT) == "still alive"


def test_broken_listener_does_not_stop_the_engine(engine, caplog):
    def broken(event):
        raise RuntimeError("listener bug")

    engine.add_listener(broken)
    rec = Recorder()
    engine.add_listener(rec)  # registered after the broken one: must still be called

    handle = engine.submit(lambda ctx: "fine")
    assert handle.result(timeout=WAIT) == "fine"
    assert [e.payload for e in rec.job_events(handle.id, "result")] == ["fine"]
    assert engine._thread.is_alive()
    assert "listener failed" in caplog.text

    engine.remove_listener(broken)
    assert engine.submit(lambda ctx: "again").result(timeout=WAIT) == "again"


def test_unknown_request_is_refused_at_submit(engine):
    with pytest.raises(PatchworkError, match="unknown request 'no_such_request'"):
        engine.submit("no_such_request")
    assert engine.jobs() == []


# ----------------------------------------------------------------------------- scheduling
def test_interactive_job_cuts_in_while_background_runs(engine):
    steps = []
    started, closed = threading.Event(), threading.Event()

    def background(ctx):
        started.set()
        try:
            while True:
                time.sleep(0.02)
                steps.append(time.monotonic())
                yield
        finally:
            closed.set()

    bg = engine.submit(background, priority=Priority.BACKGROUND)
    assert started.wait(WAIT)

    t0 = time.monotonic()
    fg = engine.submit(lambda ctx: "interactive")
    assert fg.result(timeout=2.0) == "interactive"
    assert time.monotonic() - t0 < 2.0
    assert bg.state is JobState.RUNNING and not bg.wait(0)

    # The background job keeps going after the interactive one.
    n = len(steps)
    deadline = time.monotonic() + WAIT
    while len(steps) <= n + 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(steps) > n + 2

    t0 = time.monotonic()
    bg.cancel()
    assert bg.wait(WAIT) and time.monotonic() - t0 < 1.0
    assert bg.state is JobState.CANCELLED and closed.is_set()


def test_background_jobs_share_the_engine_round_robin(engine):
    counts = {"a": 0, "b": 0}

    def counter(ctx, key):
        while True:
            counts[key] += 1
            time.sleep(0.005)
            yield

    a = engine.submit(counter, {"key": "a"}, priority=Priority.BACKGROUND)
    b = engine.submit(counter, {"key": "b"}, priority=Priority.BACKGROUND)
    deadline = time.monotonic() + WAIT
    while min(counts.values()) < 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert min(counts.values()) >= 5, counts
    a.cancel()
    b.cancel()
    assert a.wait(WAIT) and b.wait(WAIT)
    assert a.state is b.state is JobState.CANCELLED


def test_progress_events_are_throttled(engine, recorder):
    n = 1000

    def job(ctx):
        for i in range(n):
            yield Progress((i + 1) / n, "step", i + 1, n)
        return "finished"

    handle = engine.submit(job)
    assert handle.result(timeout=WAIT) == "finished"
    duration = handle.info.finished - handle.info.started
    progress = [e.payload for e in recorder.job_events(handle.id, "progress")]
    assert 1 <= len(progress) < duration * 20 + 3, (len(progress), duration)
    assert progress[-1].done == n  # the last one is flushed before the result
    assert [e.payload for e in recorder.job_events(handle.id, "result")] == ["finished"]


# ----------------------------------------------------------------------------- devices
def test_missing_cuda_is_a_startup_error_and_jobs_fail_with_it():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    eng = Engine(device="cuda")
    rec = Recorder()
    eng.add_listener(rec)
    try:
        eng.start()
        assert eng.wait_ready(60)
        assert eng.context is None
        assert eng.status is not None and eng.status.device == "none"
        assert "CUDA" in eng.status.device_name
        assert rec.of_type(EngineStatus)

        handle = eng.submit(lambda ctx: "never")
        with pytest.raises(JobFailed) as exc_info:
            handle.result(timeout=WAIT)
        info = exc_info.value.info
        assert info.type == "DeviceError" and info.expected is True
        assert "CUDA" in info.message
        assert [e.payload for e in rec.job_events(handle.id, "error")] == [info]
    finally:
        eng.shutdown()


def test_missing_cuda_with_fallback_warns_and_uses_cpu():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    eng = Engine(device="cuda", fallback_device=True)
    rec = Recorder()
    eng.add_listener(rec)
    try:
        eng.start()
        assert eng.wait_ready(60)
        assert eng.submit(lambda ctx: ctx.device).result(timeout=WAIT) == "cpu"
        assert len(eng.warnings) == 1 and "CUDA" in eng.warnings[0] and "cpu" in eng.warnings[0]
        assert [w.message for w in rec.of_type(EngineWarning)] == eng.warnings
        assert eng.status.device == "cpu"
    finally:
        eng.shutdown()


def test_select_device():
    from engine.device import select_device

    assert select_device("cpu") == "cpu"
    assert select_device(" CPU ") == "cpu"
    assert select_device(None) in ("cpu", "cuda", "mps")
    with pytest.raises(DeviceError, match="bogus"):
        select_device("bogus")


def test_set_device_request(engine):
    assert engine.submit("set_device", {"device": "cpu"}).result(timeout=WAIT) == "cpu"
    with pytest.raises(JobFailed) as exc_info:
        engine.submit("set_device", {"device": "bogus"}).result(timeout=WAIT)
    assert exc_info.value.info.type == "DeviceError" and exc_info.value.info.expected
    assert engine.submit(lambda ctx: ctx.device).result(timeout=WAIT) == "cpu"


def test_pause_and_resume_a_background_job():
    """A paused job makes no steps until resumed, then carries on where it was."""
    from engine.core import Engine as _Engine

    steps = []

    def counter(ctx):
        for i in range(1000):
            steps.append(i)
            time.sleep(0.005)
            yield Progress(i / 1000)
        return len(steps)

    eng = _Engine(device="cpu").start()
    try:
        h = eng.submit(counter, priority=Priority.BACKGROUND)
        deadline = time.monotonic() + 10
        while len(steps) < 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        eng.pause(h.id)
        time.sleep(0.2)
        assert h.state is JobState.PAUSED
        frozen = len(steps)
        time.sleep(0.3)
        assert len(steps) == frozen  # nothing advanced while paused
        assert eng.submit(lambda ctx: "still serving").result(5) == "still serving"
        eng.resume(h.id)
        assert h.result(30) == 1000
        assert steps == list(range(1000))
        # cancelling a paused job finishes it (and closes its generator) promptly
        h2 = eng.submit(counter, priority=Priority.BACKGROUND)
        time.sleep(0.1)
        eng.pause(h2.id)
        time.sleep(0.1)
        t0 = time.monotonic()
        h2.cancel()
        assert h2.wait(1.0) and time.monotonic() - t0 < 1.0
        assert h2.state is JobState.CANCELLED
    finally:
        eng.shutdown()


def test_internal_mark_comes_from_the_request_registry(engine):
    """Jobs that only fetch what a panel shows are marked at the source, so the jobs dock can hide
    them without matching names; a caller may override the mark."""
    from engine.core import INTERNAL_REQUESTS, REQUESTS

    assert INTERNAL_REQUESTS <= set(REQUESTS)
    listing = engine.submit("train_runs")
    own = engine.submit("unload_models")
    assert listing.info.internal and not own.info.internal
    assert listing.result(30) is not None and own.wait(30)
    assert engine.submit(lambda ctx: 1, internal=True).info.internal
    assert not engine.submit(lambda ctx: 1).info.internal
