"""The jobs dock: every job with its progress, elapsed time / ETA, Stop, and its error."""
from __future__ import annotations

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (QDockWidget, QHBoxLayout, QProgressBar, QPushButton, QTreeWidget,
                               QTreeWidgetItem, QVBoxLayout, QWidget)

from engine.jobs import JobInfo, JobState

COLUMNS = ("Job", "State", "Progress", "Time", "")
MAX_ROWS = 100


def format_seconds(s: float | None) -> str:
    if s is None:
        return ""
    s = int(round(s))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


class JobsDock(QDockWidget):
    def __init__(self, bridge, parent: QWidget | None = None):
        super().__init__("Jobs", parent)
        self.setObjectName("jobs_dock")
        self.bridge = bridge
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(COLUMNS)
        self.tree.setRootIsDecorated(False)
        self.tree.setUniformRowHeights(True)
        header = self.tree.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, header.ResizeMode.Stretch)
        for col, width in ((1, 90), (2, 220), (3, 110), (4, 70)):
            self.tree.setColumnWidth(col, width)
        self._items: dict[int, QTreeWidgetItem] = {}
        self._bars: dict[int, QProgressBar] = {}
        self._stops: dict[int, QPushButton] = {}
        self.clear_button = QPushButton("Clear finished")
        self.clear_button.clicked.connect(self.clear_finished)
        body = QWidget()
        lay = QVBoxLayout(body)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(self.tree)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.clear_button)
        lay.addLayout(row)
        self.setWidget(body)
        bridge.job_event.connect(self._on_event)
        self._timer = QTimer(self)  # elapsed/ETA tick for running jobs
        self._timer.timeout.connect(self._tick)
        self._timer.start(500)

    def row(self, job_id: int) -> QTreeWidgetItem | None:
        return self._items.get(job_id)

    def stop_button(self, job_id: int) -> QPushButton | None:
        return self._stops.get(job_id)

    def _on_event(self, ev) -> None:
        info: JobInfo = ev.info
        item = self._items.get(info.id)
        if item is None:
            item = self._add(info)
        self._update(item, info)

    def _add(self, info: JobInfo) -> QTreeWidgetItem:
        item = QTreeWidgetItem([info.name, info.state.value, "", "", ""])
        item.setData(0, Qt.ItemDataRole.UserRole, info)
        self.tree.insertTopLevelItem(0, item)
        bar = QProgressBar()
        bar.setRange(0, 1000)
        bar.setTextVisible(True)
        stop = QPushButton("Stop")
        stop.setToolTip("Stop this job (takes effect within a second)")
        stop.clicked.connect(lambda _=False, i=info.id: self.bridge.cancel(i))
        self.tree.setItemWidget(item, 2, bar)
        self.tree.setItemWidget(item, 4, stop)
        self._items[info.id], self._bars[info.id], self._stops[info.id] = item, bar, stop
        while self.tree.topLevelItemCount() > MAX_ROWS:
            self._remove(self.tree.topLevelItem(self.tree.topLevelItemCount() - 1))
        return item

    def _update(self, item: QTreeWidgetItem, info: JobInfo) -> None:
        item.setData(0, Qt.ItemDataRole.UserRole, info)
        item.setText(1, info.state.value)
        bar = self._bars[info.id]
        f = info.progress.fraction
        if info.state is JobState.RUNNING and f is None:
            bar.setRange(0, 0)  # busy, extent unknown
        else:
            bar.setRange(0, 1000)
            bar.setValue(int(1000 * (1.0 if info.state is JobState.DONE else (f or 0.0))))
        bar.setFormat(info.progress.message or "%p%" if not info.state.finished else info.state.value)
        self._stops[info.id].setEnabled(not info.state.finished)
        self._set_time(item, info)
        if info.state is JobState.FAILED and info.error is not None:
            item.setForeground(1, QBrush(QColor("#b3261e")))
            item.setText(1, "failed")
            item.setToolTip(0, info.error.message)
            item.setToolTip(1, info.error.message)
            if item.childCount() == 0:
                child = QTreeWidgetItem([info.error.message])
                child.setForeground(0, QBrush(QColor("#b3261e")))
                child.setFirstColumnSpanned(True)
                item.addChild(child)
                item.setExpanded(True)
                self.tree.setRootIsDecorated(True)

    def _set_time(self, item: QTreeWidgetItem, info: JobInfo) -> None:
        text = format_seconds(info.elapsed)
        if info.eta is not None:
            text += f" · ETA {format_seconds(info.eta)}"
        item.setText(3, text)

    def _tick(self) -> None:
        for item in self._items.values():
            info = item.data(0, Qt.ItemDataRole.UserRole)
            if info.state is JobState.RUNNING:
                self._set_time(item, info)

    def clear_finished(self) -> None:
        for job_id, item in list(self._items.items()):
            if item.data(0, Qt.ItemDataRole.UserRole).state.finished:
                self._remove(item)

    def _remove(self, item: QTreeWidgetItem) -> None:
        info = item.data(0, Qt.ItemDataRole.UserRole)
        self._items.pop(info.id, None)
        self._bars.pop(info.id, None)
        self._stops.pop(info.id, None)
        self.tree.takeTopLevelItem(self.tree.indexOfTopLevelItem(item))
