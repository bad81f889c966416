"""The runs list shows a running job's own step: its card is written only at checkpoints."""
from __future__ import annotations

from engine.runs.listing import RunInfo
from gui.panels.train.runs_table import RunsTable


def card(step: int, status: str = "running") -> RunInfo:
    return RunInfo("moco", "/runs/moco", "moco_v2", "fashion-mnist", status, False, step, 60, "2026-12-04T23:00:00")


def test_live_step_shows_until_the_job_ends(qtbot):
    table = RunsTable()
    qtbot.addWidget(table)
    table.set_runs([card(0)])
    assert table.item(0, 4).text() == "0/60"
    table.set_live_step("moco", 45, 60)
    assert table.item(0, 4).text() == "45/60"
    table.set_runs([card(0)])  # a refresh reads the card, still at its last checkpoint
    assert table.item(0, 4).text() == "45/60"
    table.end_live("moco")
    table.set_runs([card(60, "finished")])
    assert table.item(0, 4).text() == "60/60"
