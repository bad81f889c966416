"""The runs list: every run in the runs folder with its state and best metric.

A run whose process died without writing its end (kill -9, a crash) is listed as
"interrupted (resumable)" — the engine decides that, the table only shows it.
"""
from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem

COLUMNS = ("Run", "Recipe", "Dataset", "State", "Step", "Best", "Updated")
STATE_COLOURS = {"running": "#1565c0", "finished": "#2e7d32", "stopped": "#8d6e00", "interrupted": "#c62828",
                 "failed": "#c62828"}


def state_text(info) -> str:
    return f"{info.status} (resumable)" if info.resumable else info.status


def best_text(info) -> str:
    if info.best_value is None:
        return ""
    name = info.best_name.replace("_", " ")
    if name in ("accuracy", "knn acc", "zero shot accuracy", "recall at 1"):
        return f"{name} {100 * info.best_value:.1f}%"
    return f"{name} {info.best_value:.4g}"


class RunsTable(QTableWidget):
    selection_changed = Signal()

    def __init__(self, parent=None):
        super().__init__(0, len(COLUMNS), parent)
        self.setHorizontalHeaderLabels(COLUMNS)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.verticalHeader().hide()
        self.setAlternatingRowColors(True)
        h = self.horizontalHeader()
        h.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for c in range(1, len(COLUMNS)):
            h.setSectionResizeMode(c, QHeaderView.ResizeMode.ResizeToContents)
        self.rows: list = []
        self.live: dict[str, tuple[int, int]] = {}  # run -> (step, total steps) from the running job's records
        self.itemSelectionChanged.connect(self.selection_changed)

    def set_live_step(self, name: str, step: int, total: int | None = None) -> None:
        """The running job's own step: a run's card is written only at checkpoints, so the list would
        lag behind (0/60 while the job is at 45/60)."""
        row = next((i for i, r in enumerate(self.rows) if r.name == name), None)
        total = total or (self.rows[row].total_steps if row is not None else 0)
        self.live[name] = (int(step), int(total))
        if row is not None and self.item(row, 4) is not None:
            self.item(row, 4).setText(self._step_text(self.rows[row]))

    def end_live(self, name: str) -> None:
        """The job has ended: its card is the truth again."""
        self.live.pop(name, None)

    def _step_text(self, r) -> str:
        step, total = self.live.get(r.name, (r.step, r.total_steps))
        return f"{max(step, r.step):,}/{total or r.total_steps:,}"

    def set_runs(self, runs) -> None:
        selected = {r.name for r in self.selected()}
        self.blockSignals(True)
        self.rows = list(runs)
        self.setRowCount(len(self.rows))
        for i, r in enumerate(self.rows):
            cells = (r.name, r.recipe, r.dataset.rsplit("/", 1)[-1], state_text(r),
                     self._step_text(r), best_text(r), r.updated.replace("T", " ")[:19])
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if c == 3:
                    item.setForeground(QBrush(QColor(STATE_COLOURS.get(r.status, "#333"))))
                    if r.error:
                        item.setToolTip(r.error)
                if c == 0:
                    item.setToolTip(f"{r.path}\n{r.command}")
                self.setItem(i, c, item)
            if r.name in selected:
                self.selectRow(i)
        self.blockSignals(False)
        self.selection_changed.emit()

    def selected(self) -> list:
        rows = sorted({i.row() for i in self.selectedIndexes()})
        return [self.rows[i] for i in rows if i < len(self.rows)]

    def select_run(self, name: str) -> bool:
        for i, r in enumerate(self.rows):
            if r.name == name:
                self.clearSelection()
                self.selectRow(i)
                return True
        return False

    def row_of(self, name: str):
        return next((r for r in self.rows if r.name == name), None)
