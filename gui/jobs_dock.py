"""The jobs dock: a one-line summary of the user's jobs that opens into the full list (progress,
elapsed time / ETA, Stop, errors) on a click or when a job fails.

Jobs the engine marks internal (listing models, runs, samples, previews) are hidden unless
"Show all jobs" is ticked; the tick is kept in the settings.
"""
from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (QCheckBox, QDockWidget, QHBoxLayout, QLabel, QProgressBar, QPushButton,
                               QSizePolicy, QToolButton, QTreeWidget, QTreeWidgetItem, QWidget)

from engine.jobs import JobInfo, JobState

COLUMNS = ("Job", "State", "Progress", "Time", "")
MAX_ROWS = 100
ERROR_COLOUR = "#b3261e"
EXPANDED_HEIGHT = 190  # the list's height when opened, px


def format_seconds(s: float | None) -> str:
    if s is None:
        return ""
    s = int(round(s))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


class ClickableLabel(QLabel):
    clicked = Signal()

    def mousePressEvent(self, event) -> None:  # noqa: N802
        self.clicked.emit()
        super().mousePressEvent(event)


def summary_text(infos: list[JobInfo]) -> tuple[str, bool]:
    """(one line about the shown jobs, True if it reports a failure), newest job first in `infos`."""
    running = [i for i in infos if i.state is JobState.RUNNING]
    queued = sum(i.state is JobState.QUEUED for i in infos)
    failed = [i for i in infos if i.state is JobState.FAILED]
    parts = []
    if running:
        job = running[0]
        text = f"{job.name}: {job.progress.message}" if job.progress.message else job.name
        more = len(running) - 1
        parts.append(text + (f" (+{more} more running)" if more else ""))
    if queued:
        parts.append(f"{queued} queued")
    if failed:
        err = failed[0].error.message if failed[0].error else "failed"
        parts.append(f"⚠ {failed[0].name} failed: {err}" + (f" (+{len(failed) - 1} more)" if len(failed) > 1 else ""))
    if not parts:
        done = [i for i in infos if i.state.finished]
        if done:
            last = done[0]
            parts.append(f"No jobs running · last: {last.name} ({last.state.value}, {format_seconds(last.elapsed)})")
        else:
            parts.append("No jobs running")
    return " · ".join(parts), bool(failed)


class JobsDock(QDockWidget):
    """Title bar: ▸/▾, the summary line, the running job's progress, "Show all jobs", Clear finished.
    Below it, only while opened: the list."""

    def __init__(self, bridge, settings=None, parent: QWidget | None = None):
        super().__init__("Jobs", parent)
        self.setObjectName("jobs_dock")
        self.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetClosable)
        self.bridge, self.settings = bridge, settings
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
        self.setTitleBarWidget(self._build_summary_row())
        self.setWidget(self.tree)
        self.expanded = True
        self.set_expanded(False)
        bridge.job_event.connect(self._on_event)
        self._timer = QTimer(self)  # elapsed/ETA tick for running jobs
        self._timer.timeout.connect(self._tick)
        self._timer.start(500)

    def _build_summary_row(self) -> QWidget:
        self.toggle_button = QToolButton()
        self.toggle_button.setAutoRaise(True)
        self.toggle_button.setToolTip("Show or hide the list of jobs")
        self.toggle_button.clicked.connect(lambda: self.set_expanded(not self.expanded))
        title = QLabel("<b>Jobs</b>")
        self.summary = ClickableLabel("No jobs running")
        self.summary.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.summary.setToolTip("Click to show or hide the list of jobs")
        self.summary.clicked.connect(lambda: self.set_expanded(not self.expanded))
        self.summary_bar = QProgressBar()
        self.summary_bar.setRange(0, 1000)
        self.summary_bar.setTextVisible(False)
        self.summary_bar.setFixedSize(120, 12)
        self.summary_bar.hide()
        self.show_all = QCheckBox("Show all jobs")
        self.show_all.setToolTip("Also list the jobs panels run for themselves (listing models, runs, samples, "
                                 "previews)")
        if self.settings is not None:
            self.show_all.setChecked(str(self.settings.value("jobs/show_all", "false")).lower() == "true")
        self.show_all.toggled.connect(self._show_all_toggled)
        self.clear_button = QPushButton("Clear finished")
        self.clear_button.clicked.connect(self.clear_finished)
        row = QWidget()
        lay = QHBoxLayout(row)
        lay.setContentsMargins(4, 1, 4, 1)
        for w in (self.toggle_button, title):
            lay.addWidget(w)
        lay.addWidget(self.summary, 1)
        for w in (self.summary_bar, self.show_all, self.clear_button):
            lay.addWidget(w)
        return row

    # ------------------------------------------------------------------ open / closed
    def set_expanded(self, expanded: bool) -> None:
        """Closed, the dock is its one summary line; opened, the list below it too."""
        if expanded == self.expanded:
            return
        self.expanded = expanded
        self.toggle_button.setArrowType(Qt.ArrowType.DownArrow if expanded else Qt.ArrowType.RightArrow)
        # The list is squeezed to nothing rather than hidden: a dock with a hidden widget stops
        # spanning the window's width.
        self.tree.setMaximumHeight(16_777_215 if expanded else 0)
        line = self.titleBarWidget().sizeHint().height()
        if expanded:
            self.setMaximumHeight(16_777_215)
            window = self.parent()
            if hasattr(window, "resizeDocks"):
                window.resizeDocks([self], [line + EXPANDED_HEIGHT], Qt.Orientation.Vertical)
        else:
            self.setMaximumHeight(line)

    def _show_all_toggled(self, on: bool) -> None:
        if self.settings is not None:
            self.settings.setValue("jobs/show_all", "true" if on else "false")
        for item in self._items.values():
            item.setHidden(self._hidden(item.data(0, Qt.ItemDataRole.UserRole)))
        self._update_summary()

    def _hidden(self, info: JobInfo) -> bool:
        return info.internal and not self.show_all.isChecked()

    def shown_jobs(self) -> list[JobInfo]:
        """The jobs the list shows, newest first."""
        infos = [self.tree.topLevelItem(i).data(0, Qt.ItemDataRole.UserRole)
                 for i in range(self.tree.topLevelItemCount())]
        return [i for i in infos if not self._hidden(i)]

    def _update_summary(self) -> None:
        infos = self.shown_jobs()
        text, failed = summary_text(infos)
        self.summary.setText(text)
        self.summary.setStyleSheet(f"color: {ERROR_COLOUR};" if failed else "")
        running = next((i for i in infos if i.state is JobState.RUNNING), None)
        self.summary_bar.setVisible(running is not None)
        if running is not None:
            f = running.progress.fraction
            self.summary_bar.setRange(0, 0 if f is None else 1000)
            self.summary_bar.setValue(int(1000 * (f or 0.0)))

    # ------------------------------------------------------------------ rows
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
        self._update_summary()

    def _add(self, info: JobInfo) -> QTreeWidgetItem:
        item = QTreeWidgetItem([info.name, info.state.value, "", "", ""])
        item.setData(0, Qt.ItemDataRole.UserRole, info)
        self.tree.insertTopLevelItem(0, item)
        item.setHidden(self._hidden(info))
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
        if info.state is JobState.FAILED and info.error is not None and item.childCount() == 0:
            item.setForeground(1, QBrush(QColor(ERROR_COLOUR)))
            item.setText(1, "failed")
            item.setToolTip(0, info.error.message)
            item.setToolTip(1, info.error.message)
            child = QTreeWidgetItem([info.error.message])
            child.setForeground(0, QBrush(QColor(ERROR_COLOUR)))
            child.setFirstColumnSpanned(True)
            item.addChild(child)
            item.setExpanded(True)
            self.tree.setRootIsDecorated(True)
            if not self._hidden(info):
                self.set_expanded(True)  # a failure of the user's own work is never just a line

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
        self._update_summary()

    def _remove(self, item: QTreeWidgetItem) -> None:
        info = item.data(0, Qt.ItemDataRole.UserRole)
        self._items.pop(info.id, None)
        self._bars.pop(info.id, None)
        self._stops.pop(info.id, None)
        self.tree.takeTopLevelItem(self.tree.indexOfTopLevelItem(item))
