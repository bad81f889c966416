"""The Search panel: index a photo folder in the background, then search it by text, by an
image, or by weighted +/- mixes; results in a virtualised thumbnail grid with a relevance cut-off, and "no good match" said
when no photo reaches it.

The folder is watched while the app runs; changes trigger a quiet incremental re-index.
"""
from __future__ import annotations

import os
import time

from PySide6.QtCore import QFileSystemWatcher, QSize, Qt, QTimer
from PySide6.QtWidgets import (QAbstractItemView, QFileDialog, QHBoxLayout, QLabel, QLineEdit, QListView,
                               QListWidget, QListWidgetItem, QMenu, QProgressBar, QPushButton, QSizePolicy, QSlider, QSplitter,
                               QVBoxLayout, QWidget)

from engine import catalogue
from engine.paths import shown_path
from engine.search.embedders import DEFAULT_SEARCH_MODEL
from engine.search.relevance import DEFAULT_CUTOFF
from gui.dropping import IMAGE_FILTER, FileDrops
from gui.latest import LatestRequest
from gui.panels.search import file_actions
from gui.panels.search.collection_tabs import CollectionTabs
from gui.panels.search.results_model import THUMB, PathRole, ResultsModel
from gui.widgets.error_label import ErrorLabel
from gui.widgets.layouts import bold_label, column
from gui.widgets.model_picker import ModelPicker

MAX_RESULTS = 100_000
MAX_WATCHED = 2000  # inotify watches are a shared, limited resource
NOTE_STYLE = "background: #eef4fb; color: #1a3d66; border: 1px solid #c9dcf2; border-radius: 4px; padding: 6px;"


class SearchPanel(FileDrops, QWidget):
    panel_id = "search"

    @property
    def search_job(self) -> int | None:
        """The query in flight, if any."""
        return self.searching.job

    def __init__(self, bridge, settings, parent=None):
        super().__init__(parent)
        self.bridge, self.settings = bridge, settings
        self.folder: str | None = settings.value("search/folder", None) or None
        self.index_job: int | None = None
        self.searching = LatestRequest(bridge)  # the query in flight
        self.paused = False
        self.indexed = 0
        self._index_started = 0.0
        self._dirty = False  # the folder changed while an index ran
        self.last_query = ""
        self.setAcceptDrops(True)

        row1 = self._folder_row()
        row2 = self._query_row()
        row3 = self._cutoff_row()
        split = self._results_split()

        lay = QVBoxLayout(self)
        lay.addLayout(row1)
        lay.addWidget(self.progress)
        lay.addWidget(self.index_status)
        lay.addWidget(self.note)
        lay.addLayout(row2)
        lay.addLayout(row3)
        lay.addWidget(self.error_label)
        lay.addWidget(self.no_match)
        self.views = CollectionTabs(self, split)  # Results | Map | Duplicates
        lay.addWidget(self.views, 1)
        self._watch_and_load()

    def _folder_row(self) -> QHBoxLayout:
        """The folder with Choose/Index/Pause/Stop, the model picker, the index progress, status and note."""
        self.folder_label = QLabel()
        self.folder_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.choose_button = QPushButton("Choose folder…")
        self.index_button = QPushButton("Index")
        self.pause_button = QPushButton("Pause")
        self.stop_button = QPushButton("Stop")
        self.choose_button.clicked.connect(self._choose_folder)
        self.index_button.clicked.connect(lambda: self.start_index())
        self.pause_button.clicked.connect(self._toggle_pause)
        self.stop_button.clicked.connect(self._stop_index)
        self.model_picker = ModelPicker(self.bridge, "search", self.settings, default=DEFAULT_SEARCH_MODEL)
        self.model_picker.model_changed.connect(self._model_changed)
        row1 = QHBoxLayout()
        row1.addWidget(QLabel("Folder:"))
        row1.addWidget(self.folder_label, 1)
        for b in (self.choose_button, self.index_button, self.pause_button, self.stop_button):
            row1.addWidget(b)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(False)
        self.progress.setMaximumHeight(8)
        self.index_status = QLabel("")
        self.index_status.setStyleSheet("color: palette(mid);")
        self.note = QLabel("")
        self.note.setWordWrap(True)
        self.note.setStyleSheet(NOTE_STYLE)
        return row1

    def _query_row(self) -> QHBoxLayout:
        """The query line with Search, By image… and Build query…."""
        self.query_edit = QLineEdit()
        self.query_edit.setPlaceholderText("Search: words, an image path, or a mix like "
                                           "2:golden retriever + ./pool.jpg - fruit   (or drop a photo here)")
        self.query_edit.returnPressed.connect(self.run_query)
        self.search_button = QPushButton("Search")
        self.search_button.clicked.connect(self.run_query)
        image_button = QPushButton("By image…")
        image_button.clicked.connect(self._choose_query_image)
        builder_button = QPushButton("Build query…")
        builder_button.clicked.connect(self._build_query)
        row2 = QHBoxLayout()
        row2.addWidget(self.query_edit, 1)
        for b in (self.search_button, image_button, builder_button):
            row2.addWidget(b)
        return row2

    def _cutoff_row(self) -> QHBoxLayout:
        """The relevance cut-off, result count and model; the error and no-match lines under them."""
        self.cutoff = QSlider(Qt.Orientation.Horizontal)
        self.cutoff.setRange(0, 100)
        self.cutoff.setMaximumWidth(260)
        self.cutoff.setValue(int(self.settings.value("search/relevance_cutoff", round(100 * DEFAULT_CUTOFF))))
        self.cutoff.setToolTip("Relevance 0–1, the same scale for every query and model: 1 when the query describes "
                               "a photo better than any of 1,813 everyday concepts do, lower as more of them describe "
                               f"it better. Default {DEFAULT_CUTOFF:.2f}; below it a photo is not a good match.")
        self.cutoff.valueChanged.connect(self._cutoff_changed)
        self.cutoff_label = QLabel("")
        self.result_label = QLabel("")
        self.result_label.setStyleSheet("color: palette(mid);")
        row3 = QHBoxLayout()
        row3.addWidget(QLabel("Relevance cut-off:"))
        row3.addWidget(self.cutoff)
        row3.addWidget(self.cutoff_label)
        row3.addSpacing(12)
        row3.addWidget(self.result_label, 1)
        row3.addWidget(QLabel("Model:"))
        row3.addWidget(self.model_picker)
        for label in (self.folder_label, self.result_label, self.index_status):
            label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)  # long text never widens the window
        self.error_label = ErrorLabel()
        self.no_match = QLabel("")
        self.no_match.setWordWrap(True)
        self.no_match.setStyleSheet(NOTE_STYLE)
        self.no_match.hide()
        self._best = None
        return row3

    def _results_split(self) -> QSplitter:
        """The results grid (virtualised: the view asks only for what it paints) beside the skipped files."""
        self.results = ResultsModel(self)
        self.grid = QListView()
        self.grid.setModel(self.results)
        self.grid.setViewMode(QListView.ViewMode.IconMode)
        self.grid.setResizeMode(QListView.ResizeMode.Adjust)
        self.grid.setMovement(QListView.Movement.Static)
        self.grid.setUniformItemSizes(True)
        self.grid.setLayoutMode(QListView.LayoutMode.Batched)
        self.grid.setBatchSize(200)
        self.grid.setIconSize(QSize(THUMB, THUMB))
        self.grid.setGridSize(QSize(THUMB + 24, THUMB + 40))
        self.grid.setWordWrap(True)
        self.grid.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.grid.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.grid.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.grid.customContextMenuRequested.connect(self._result_menu)
        self.grid.doubleClicked.connect(lambda idx: file_actions.open_file(idx.data(PathRole)))
        self.skipped_title = bold_label("Skipped files")
        self.skipped = QListWidget()
        self.skipped.setWordWrap(True)
        self.skipped.setToolTip("Files that could not be indexed, with the reason; they never stop the job.")
        side = column(self.skipped_title, (self.skipped, 1), margins=0)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.grid)
        split.addWidget(side)
        split.setStretchFactor(0, 4)
        split.setStretchFactor(1, 1)
        self.side = side
        return split

    def _watch_and_load(self) -> None:
        """Watch the folder for changes (re-index 3 s after the last), then show the saved folder's state."""
        self.watcher = QFileSystemWatcher(self)
        self.watcher.directoryChanged.connect(self._folder_changed)
        self._reindex_timer = QTimer(self, singleShot=True, interval=3000)
        self._reindex_timer.timeout.connect(lambda: self.start_index(quiet=True))

        self._cutoff_changed(self.cutoff.value())
        self._update_folder_ui()
        self._update_note()
        if self.folder:
            self._load_status()

    # ------------------------------------------------------------------ folder and index
    def model_id(self) -> str:
        return self.model_picker.current_id() or DEFAULT_SEARCH_MODEL

    def set_folder(self, folder: str, index: bool = True) -> None:
        self.folder = os.path.abspath(folder)
        self.settings.setValue("search/folder", self.folder)
        self.skipped.clear()
        self.results.set_results([])
        self.result_label.setText("")
        self.indexed = 0
        self._update_folder_ui()
        if index:
            self.start_index()
        else:
            self._load_status()

    def _choose_folder(self) -> None:
        start = self.folder or os.path.expanduser("~")
        folder = QFileDialog.getExistingDirectory(self, "Choose a photo folder", start)
        if folder:
            self.set_folder(folder)

    def _load_status(self) -> None:
        self.bridge.submit("search_status", {"folder": self.folder, "model_id": self.model_id()},
                           name="Index status", on_result=self._show_status)

    def _show_status(self, st) -> None:
        if st.root != self.folder or st.model_id != self.model_id():
            return
        self.indexed = st.indexed
        self._set_skipped(st.bad)
        self.index_status.setText(f"{st.indexed:,} photos indexed for {catalogue.get(st.model_id).name}"
                                  if st.indexed else "Not indexed yet with this model: click Index.")

    def start_index(self, quiet: bool = False) -> None:
        """Index (incrementally) in the background; `quiet` for watcher-triggered runs."""
        if not self.folder:
            return
        if self.index_job is not None:
            self._dirty = True
            return
        self._dirty = False
        self.paused = False
        self._index_started = time.monotonic()
        self.error_label.hide()
        self.index_status.setText("Looking for changes…" if quiet else "Scanning folder…")
        self.index_job = self.bridge.submit(
            "index_folder", {"folder": self.folder, "model_id": self.model_id()},
            name=f"Index {os.path.basename(self.folder)}", background=True,
            on_progress=self._index_progress, on_partial=self._index_partial, on_result=self._index_done,
            on_error=self._index_failed, on_cancelled=self._index_cancelled)
        self._update_folder_ui()

    def _index_progress(self, p) -> None:
        if p.fraction is None:
            self.progress.setRange(0, 0)  # busy
            self.index_status.setText(p.message.capitalize())
            return
        self.progress.setRange(0, 1000)
        self.progress.setValue(int(1000 * p.fraction))
        eta = ""
        elapsed = time.monotonic() - self._index_started
        if p.done and p.total and p.done < p.total and elapsed > 1:
            left = elapsed / p.done * (p.total - p.done)
            eta = f" · about {_duration(left)} left"
        self.index_status.setText(("Paused · " if self.paused else "Indexing: ") + p.message + eta)

    def _index_partial(self, partial) -> None:
        for path, reason in partial.get("bad", []):
            self._add_skipped(path, reason)

    def _index_done(self, res) -> None:
        self.index_job = None
        self.indexed = res.total - len(res.bad)
        self._set_skipped(res.bad)
        parts = [f"{self.indexed:,} photos indexed in {_duration(res.seconds)}"]
        if res.embedded:
            parts.append(f"{res.embedded:,} new")
        if res.reused:
            parts.append(f"{res.reused:,} moved or copied (vectors reused)")
        if res.removed:
            parts.append(f"{res.removed:,} deleted files dropped")
        if res.bad:
            parts.append(f"{len(res.bad):,} skipped")
        self.index_status.setText(" · ".join(parts))
        self._watch(res.folders)
        self._update_folder_ui()
        if self._dirty:
            self._reindex_timer.start()
        elif self.last_query and (res.embedded or res.removed or res.reused):
            self.run_query(self.last_query)

    def _index_failed(self, err) -> None:
        self.index_job = None
        self._show_error(err.message)
        self.index_status.setText("Indexing failed; what was indexed is kept.")
        self._update_folder_ui()

    def _index_cancelled(self) -> None:
        self.index_job = None
        self.index_status.setText("Stopped. What was indexed is kept; Index continues where it stopped.")
        self._update_folder_ui()

    def _toggle_pause(self) -> None:
        if self.index_job is None:
            return
        if self.paused:
            self.bridge.resume(self.index_job)
        else:
            self.bridge.pause(self.index_job)
            self.index_status.setText("Paused · " + self.index_status.text().removeprefix("Indexing: "))
        self.paused = not self.paused
        self._update_folder_ui()

    def _stop_index(self) -> None:
        if self.index_job is not None:
            if self.paused:
                self.bridge.resume(self.index_job)  # a paused job must run to see its cancel
            self.bridge.cancel(self.index_job)

    def _update_folder_ui(self) -> None:
        running = self.index_job is not None
        self.folder_label.setText(self.folder or "<i>no folder chosen</i>")
        self.index_button.setEnabled(bool(self.folder) and not running)
        self.pause_button.setEnabled(running)
        self.pause_button.setText("Resume" if self.paused else "Pause")
        self.stop_button.setEnabled(running)
        self.progress.setVisible(running)
        if not running:
            self.progress.setRange(0, 1000)

    def _watch(self, folders) -> None:
        if self.watcher.directories():
            self.watcher.removePaths(self.watcher.directories())
        if folders:
            self.watcher.addPaths(list(folders)[:MAX_WATCHED])

    def _folder_changed(self, _path: str) -> None:
        self._reindex_timer.start()  # debounce: a copy of 500 photos is one re-index, not 500

    # ------------------------------------------------------------------ skipped files
    def _set_skipped(self, bad) -> None:
        self.skipped.clear()
        for path, reason in bad:
            self._add_skipped(path, reason)
        self._update_skipped_title()

    def _add_skipped(self, path: str, reason: str) -> None:
        if self.skipped.findItems(os.path.basename(path), Qt.MatchFlag.MatchStartsWith):
            for i in range(self.skipped.count()):
                if self.skipped.item(i).data(Qt.ItemDataRole.UserRole) == path:
                    return
        item = QListWidgetItem(f"{os.path.basename(shown_path(path))}: {reason}")
        item.setData(Qt.ItemDataRole.UserRole, path)
        item.setToolTip(f"{shown_path(path)}\n{reason}")
        self.skipped.addItem(item)
        self._update_skipped_title()

    def _update_skipped_title(self) -> None:
        n = self.skipped.count()
        self.skipped_title.setText(f"Skipped files ({n})" if n else "Skipped files: none")

    def skipped_paths(self) -> list[str]:
        return [self.skipped.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.skipped.count())]

    # ------------------------------------------------------------------ queries
    def run_query(self, text: str | None = None) -> None:
        query = (text if isinstance(text, str) else self.query_edit.text()).strip()
        if not query:
            return
        if not self.folder:
            self._show_error("Choose a photo folder first, then index it.")
            return
        self.query_edit.setText(query)
        self.last_query = query
        self.error_label.hide()
        self.no_match.hide()
        self.result_label.setText("Searching…")
        self.searching.submit(
            "search", {"query": query, "folder": self.folder, "model_id": self.model_id(), "top_k": MAX_RESULTS},
            name=f"Search “{query[:40]}”", on_result=self._show_results, on_error=self._search_failed)

    def _show_results(self, res) -> None:
        self.results.set_results([(h.path, h.score) for h in res.hits])
        self._best = res.best
        self.grid.scrollToTop()
        self._terms = res.terms
        self._searched = res.searched
        self._seconds = res.seconds
        self._update_result_label()

    def _search_failed(self, err) -> None:
        self._best = None
        self.result_label.setText("")
        self._show_error(err.message)

    def _update_result_label(self) -> None:
        total = self.results.total()
        self._update_no_match()
        if not total:
            self.result_label.setText("")
            return
        shown = self.results.rowCount()
        terms = " ".join(f"{'+' if t.weight > 0 else '−'}{abs(t.weight):g}×{'🖼 ' if t.kind == 'image' else ''}"
                         f"{os.path.basename(t.value) if t.kind == 'image' else t.value}" for t in self._terms)
        self.result_label.setText(f"{shown:,} of {self._searched:,} photos at or above the cut-off · "
                                  f"{1000 * self._seconds:.0f} ms · {terms}")

    def _update_no_match(self) -> None:
        """Say so when no photo reaches the cut-off, rather than leave an empty grid unexplained."""
        best = self._best
        if best is None or self.results.rowCount():
            self.no_match.hide()
            return
        self.no_match.setText(f"No good match for “{self.last_query}” in this folder: no photo reaches relevance "
                              f"{self.cutoff.value() / 100:.2f}. The closest, {os.path.basename(shown_path(best.path))}, "
                              f"is at {best.score:.2f}; lower the cut-off to see the closest photos anyway.")
        self.no_match.show()

    def _cutoff_changed(self, value: int) -> None:
        self.settings.setValue("search/relevance_cutoff", value)
        self.cutoff_label.setText(f"≥ {value / 100:.2f}")
        self.results.set_cutoff(value / 100)
        if self.results.total():
            self._update_result_label()
        else:
            self._update_no_match()

    def _choose_query_image(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Search by image", self.folder or "", IMAGE_FILTER)
        if path:
            self.run_query(path)

    def _build_query(self) -> None:
        from gui.panels.search.query_editor import QueryEditor

        dlg = QueryEditor(self)
        if dlg.exec() and dlg.query():
            self.run_query(dlg.query())

    def _result_menu(self, pos) -> None:
        idx = self.grid.indexAt(pos)
        if not idx.isValid():
            return
        path = idx.data(PathRole)
        menu = QMenu(self)
        menu.addAction("Open", lambda: file_actions.open_file(path))
        menu.addAction("Reveal in file manager", lambda: file_actions.reveal(path))
        menu.addAction("Copy path", lambda: file_actions.copy_path(path))
        menu.addSeparator()
        menu.addAction("More like this", lambda: self.run_query(path))
        why = menu.addAction("Why this result?", lambda: self.explain(path))
        why.setEnabled(bool(self.last_query))
        menu.exec(self.grid.viewport().mapToGlobal(pos))

    def explain(self, path: str):
        """Open the “why this result” view for a hit of the last query."""
        from gui.panels.search.why_dialog import WhyDialog

        dialog = WhyDialog(self.bridge, path, self.last_query, self.model_id(), self.folder, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()
        return dialog

    # ------------------------------------------------------------------ model and messages
    def _model_changed(self, _model_id: str) -> None:
        self._update_note()
        self.results.set_results([])
        self.result_label.setText("")
        if self.folder:
            self._load_status()

    def _update_note(self) -> None:
        builder = catalogue.get(self.model_id()).builder
        if builder in ("labelspace", "conse"):
            what = ("1000 concepts and the groups above them (animals, dogs, vehicles, furniture, foods…), asked in "
                    "any language," if builder == "labelspace" else "1000 concepts (animals, objects, foods…)")
            self.note.setText(f"Offline search: a photo is described by its ImageNet classes, so it knows ImageNet's "
                              f"{what} but not open-ended phrases. For open vocabulary, download a CLIP model in "
                              "Models → Manage models… and choose it above.")
            self.note.show()
        else:
            self.note.hide()

    def _show_error(self, message: str) -> None:
        self.error_label.setText(message)
        self.error_label.show()

    # ------------------------------------------------------------------ drops: a photo becomes the query
    def file_drop(self, path: str) -> None:
        if os.path.isdir(path):
            self.set_folder(path)
        else:
            self.run_query(path)


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    m, s = divmod(seconds, 60)
    if m < 60:
        return f"{m}:{s:02d} min"
    h, m = divmod(m, 60)
    return f"{h}:{m:02d} h"
