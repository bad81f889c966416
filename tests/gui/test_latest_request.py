"""gui.latest.LatestRequest through the real bridge and engine: a newer request cancels the one in
flight, and none of the older one's callbacks (its 'cancelled', a late result) reach the panel."""
from __future__ import annotations

import threading
import time

import pytest


def waiting(ctx, started: threading.Event, release: threading.Event, answer: str):
    """A job that runs until released (or cancelled), then answers `answer`."""
    started.set()
    while not release.is_set():
        time.sleep(0.01)
        yield
    return answer


@pytest.fixture
def bridge(qtbot):
    from gui.bridge import EngineBridge

    b = EngineBridge(device="cpu")
    b.start()
    qtbot.waitUntil(lambda: b.engine.ready.is_set(), timeout=60_000)
    yield b
    b.shutdown()


def test_only_the_latest_request_is_heard(qtbot, bridge):
    from gui.latest import LatestRequest

    latest, heard = LatestRequest(bridge), []
    first_started, never = threading.Event(), threading.Event()
    first = latest.submit(waiting, {"started": first_started, "release": never, "answer": "old"}, name="old",
                          on_result=lambda r: heard.append(("result", r)),
                          on_cancelled=lambda: heard.append(("cancelled", "old")))
    assert latest.job == first
    qtbot.waitUntil(first_started.is_set, timeout=10_000)

    release = threading.Event()
    second = latest.submit(waiting, {"started": threading.Event(), "release": release, "answer": "new"},
                           name="new", on_result=lambda r: heard.append(("result", r)),
                           on_cancelled=lambda: heard.append(("cancelled", "new")))
    assert second != first and latest.job == second
    qtbot.waitUntil(lambda: all(j.id != first or j.finished for j in bridge.engine.jobs()),
                    timeout=10_000)  # the first one was cancelled by the second submit
    qtbot.wait(100)  # its 'cancelled' has reached the bridge and been dropped
    assert heard == []
    release.set()
    qtbot.waitUntil(lambda: bool(heard), timeout=10_000)
    assert heard == [("result", "new")] and latest.job is None


def test_cancel_stops_the_request_and_its_cancelled_is_heard(qtbot, bridge):
    from gui.latest import LatestRequest

    latest, heard, started = LatestRequest(bridge), [], threading.Event()
    latest.submit(waiting, {"started": started, "release": threading.Event(), "answer": "x"}, name="stoppable",
                  on_cancelled=lambda: heard.append(latest.job))
    qtbot.waitUntil(started.is_set, timeout=10_000)
    latest.cancel()
    qtbot.waitUntil(lambda: bool(heard), timeout=10_000)
    assert heard == [None]  # the helper is idle before the panel's handler runs
