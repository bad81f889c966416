"""Main window: panels from the registry, jobs dock with Stop, status bar, persisted settings."""
from __future__ import annotations

import time

from PySide6.QtCore import Qt, QThread
from PySide6.QtWidgets import QApplication

from engine.jobs import JobState, Priority, Progress
from gui import panels


def endless(ctx):
    i = 0
    while True:
        i += 1
        time.sleep(0.02)
        yield Progress(None, f"step {i}")


def test_panels_come_from_the_registry(window):
    assert [window.tabs.tabText(i) for i in range(window.tabs.count())] == [t for _, t, _ in panels.PANELS]
    assert set(window.panels) == {pid for pid, _, _ in panels.PANELS}


def test_jobs_dock_stop_button_cancels_a_running_job(window, qtbot):
    handle = window.bridge.engine.submit(endless, name="endless test job", priority=Priority.BACKGROUND)
    qtbot.waitUntil(lambda: window.jobs_dock.row(handle.id) is not None
                    and handle.state is JobState.RUNNING, timeout=10_000)
    row = window.jobs_dock.row(handle.id)
    assert row.text(0) == "endless test job"
    stop = window.jobs_dock.stop_button(handle.id)
    t0 = time.monotonic()
    qtbot.mouseClick(stop, Qt.MouseButton.LeftButton)
    assert handle.wait(2.0)
    assert time.monotonic() - t0 < 1.0
    qtbot.waitUntil(lambda: row.text(1) == "cancelled", timeout=5_000)
    assert not stop.isEnabled()


def test_failed_job_shows_its_error_in_the_dock(window, qtbot, tmp_path):
    missing = str(tmp_path / "nope.jpg")
    job_id = window.bridge.submit("classify", {"path": missing}, name="classify missing")
    qtbot.waitUntil(lambda: window.jobs_dock.row(job_id) is not None
                    and window.jobs_dock.row(job_id).text(1) == "failed", timeout=30_000)
    row = window.jobs_dock.row(job_id)
    assert "file not found" in row.child(0).text(0)


def test_callbacks_run_on_the_gui_thread(window, qtbot):
    threads = []
    window.bridge.submit("unload_models", on_result=lambda _: threads.append(QThread.currentThread()))
    qtbot.waitUntil(lambda: bool(threads), timeout=10_000)
    assert threads[0] is QApplication.instance().thread()


def test_status_bar_shows_device_and_memory(window, qtbot):
    bar = window.statusBar()
    qtbot.waitUntil(lambda: bar.device_label.text() == "Device: cpu", timeout=10_000)
    assert "RAM" in bar.memory_label.text()


def test_geometry_tab_and_device_persist(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("PATCHWORK_HOME", str(tmp_path / "home"))
    from gui.app import create_window

    win, bridge = create_window("cpu")
    qtbot.addWidget(win)
    win.show()
    win.resize(760, 580)
    qtbot.wait(50)
    size = (win.width(), win.height())
    assert size != (1200, 800)  # the default, so the check below means something
    win.device_actions["cpu"].trigger()
    win.close()
    bridge.shutdown()

    win2, bridge2 = create_window()
    qtbot.addWidget(win2)
    try:
        assert (win2.width(), win2.height()) == size
        assert win2.device_actions["cpu"].isChecked()
        assert bridge2.engine._device_request == "cpu"
    finally:
        bridge2.shutdown()


def test_requests_after_shutdown_are_dropped_quietly(window):
    """A timer that fires while the app closes (the Train panel refreshing its runs 1.5 s after a
    start) submits to a shut-down engine: nothing runs and nothing raises into the event loop."""
    bridge = window.bridge
    bridge.shutdown()
    assert bridge.submit("train_runs", name="List runs", on_result=lambda _: None) == 0
    window.panels["train"].refresh_runs()  # raised "the engine has shut down" before
