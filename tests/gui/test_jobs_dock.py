"""The jobs dock: one line by default, the user's own jobs only unless "Show all jobs" (kept in the
settings), opened by a click or a failure; the status bar's memory line in words."""
from __future__ import annotations

from PySide6.QtCore import Qt

from engine.jobs import EngineStatus, JobState
from gui.jobs_dock import JobsDock


def test_dock_is_one_line_and_lists_only_the_users_jobs_until_asked(window, qtbot):
    dock = window.jobs_dock
    assert not dock.expanded and dock.height() <= dock.titleBarWidget().sizeHint().height() + 2
    internal = window.bridge.submit("train_runs", name="List runs")  # marked internal by the engine
    own = window.bridge.submit("unload_models", name="Unload models")
    qtbot.waitUntil(lambda: all(dock.row(j) is not None and dock.row(j).data(0, Qt.ItemDataRole.UserRole).state
                                is JobState.DONE for j in (internal, own)), timeout=30_000)
    assert dock.row(internal).isHidden() and not dock.row(own).isHidden()
    assert "Unload models" in dock.summary.text() and "List runs" not in dock.summary.text()

    dock.show_all.setChecked(True)
    assert not dock.row(internal).isHidden()
    assert window.settings.value("jobs/show_all") == "true"
    assert JobsDock(window.bridge, window.settings).show_all.isChecked()  # the next window starts so
    dock.show_all.setChecked(False)
    assert dock.row(internal).isHidden()

    qtbot.mouseClick(dock.summary, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dock.height() > 100)
    assert dock.expanded
    qtbot.mouseClick(dock.summary, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dock.height() <= dock.titleBarWidget().sizeHint().height() + 2)


def test_a_failed_job_opens_the_dock(window, qtbot, tmp_path):
    dock = window.jobs_dock
    assert not dock.expanded
    job = window.bridge.submit("classify", {"path": str(tmp_path / "nope.jpg")}, name="Classify nope.jpg")
    qtbot.waitUntil(lambda: dock.row(job) is not None and dock.row(job).text(1) == "failed", timeout=30_000)
    qtbot.waitUntil(lambda: dock.height() > 100)
    assert dock.expanded
    assert "Classify nope.jpg failed" in dock.summary.text() and "not found" in dock.summary.text()


def test_status_bar_says_models_in_memory_against_the_budget(window):
    bar = window.statusBar()
    bar.on_status(EngineStatus("cpu", "CPU", 1032.4, None, (("efficientnet-lite0", 18.2),), False, "2.5",
                               budget_mb=6000))
    assert bar.memory_label.text() == "RAM 1,032 MB · Models in memory: 18 MB of 6 GB budget"
    tip = bar.memory_label.toolTip()
    assert "efficientnet-lite0: 18 MB" in tip and "least recently used" in tip
