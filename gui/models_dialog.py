"""Models manager: every catalogue entry with size, licence, state and panels;
Download / Cancel / Delete / Import file / Unload."""
from __future__ import annotations

import os

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (QAbstractItemView, QDialog, QFileDialog, QHBoxLayout, QHeaderView, QInputDialog,
                               QLabel, QProgressBar, QPushButton, QTableWidget, QTableWidgetItem, QVBoxLayout)

from gui.widgets.model_picker import state_text

COLUMNS = ("Model", "Family", "Used by", "Size", "Licence", "Source", "State")
STATE_COL = COLUMNS.index("State")
DOWNLOADABLE = ("url", "hf", "hf-snapshot")
WEIGHT_FILTER = "Weights (*.safetensors *.pt *.pth *.bin);;All files (*)"


class ModelsDialog(QDialog):
    def __init__(self, bridge, settings, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Models")
        self.setObjectName("models_dialog")
        self.resize(1180, 600)
        self.bridge, self.settings = bridge, settings
        self.rows: list = []
        self.downloads: dict[str, int] = {}  # model id -> job id
        self._bars: dict[str, QProgressBar] = {}

        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.setWordWrap(False)
        header = self.table.horizontalHeader()
        header.setStretchLastSection(False)
        header.setMinimumSectionSize(60)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col in range(1, len(COLUMNS)):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(STATE_COL, QHeaderView.ResizeMode.Fixed)
        self.table.setColumnWidth(STATE_COL, 210)  # room for a progress bar, no more
        self.table.itemSelectionChanged.connect(self._update_buttons)

        self.description = QLabel("")
        self.description.setWordWrap(True)
        self.message = QLabel("")
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.download_button = QPushButton("Download")
        self.cancel_button = QPushButton("Cancel download")
        self.delete_button = QPushButton("Delete files")
        self.unload_button = QPushButton("Unload")
        self.import_button = QPushButton("Import file…")
        close = QPushButton("Close")
        self.download_button.clicked.connect(self.download_selected)
        self.cancel_button.clicked.connect(self.cancel_selected)
        self.delete_button.clicked.connect(self.delete_selected)
        self.unload_button.clicked.connect(self.unload_selected)
        self.import_button.clicked.connect(self.choose_import)
        close.clicked.connect(self.accept)
        buttons = QHBoxLayout()
        for b in (self.download_button, self.cancel_button, self.delete_button, self.unload_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        buttons.addWidget(self.import_button)
        buttons.addWidget(close)

        lay = QVBoxLayout(self)
        lay.addWidget(QLabel("Offline models are ready at once; pretrained ones download only when you ask, "
                             "into the libraries' own caches (HF_HOME, TORCH_HOME)."))
        lay.addWidget(self.table, 1)
        lay.addWidget(self.description)
        lay.addWidget(self.message)
        lay.addLayout(buttons)
        bridge.catalogue_changed.connect(self.refresh)
        self.refresh()

    # ---------------------------------------------------------------- listing
    def refresh(self) -> None:
        self.bridge.submit("list_models", name="List models", on_result=self._populate)

    def _populate(self, rows) -> None:
        selected = self.selected_id()
        self.rows = list(rows)
        self._bars.clear()
        self.table.setRowCount(len(rows))
        for i, r in enumerate(rows):
            e = r.entry
            cells = (e.name, e.family, ", ".join(e.panels), f"{e.size_mb:,.0f} MB" if e.size_mb >= 1 else
                     f"{e.size_mb:.1f} MB", e.licence, _source_text(e.source), state_text(r))
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, e.id)
                item.setToolTip(e.description if col == 0 else (r.state.detail or text))
                self.table.setItem(i, col, item)
            self._color_state(i, r.state.state)
            if e.id in self.downloads:
                self._show_bar(i, e.id)
            if e.id == selected:
                self.table.selectRow(i)
        self._update_buttons()

    def _color_state(self, i: int, state: str) -> None:
        color = {"ready": "#1b7f3b", "user file": "#1b7f3b", "failed": "#b3261e", "downloading": "#1a5fb4"}.get(
            state, "#777")
        self.table.item(i, STATE_COL).setForeground(QBrush(QColor(color)))

    def _show_bar(self, i: int, model_id: str) -> QProgressBar:
        bar = self._bars.get(model_id)
        if bar is None:
            bar = QProgressBar()
            bar.setRange(0, 1000)
            bar.setFormat("starting…")
            self._bars[model_id] = bar
            self.table.setCellWidget(i, STATE_COL, bar)
        return bar

    def row_of(self, model_id: str) -> int:
        for i, r in enumerate(self.rows):
            if r.entry.id == model_id:
                return i
        return -1

    def selected_id(self) -> str | None:
        items = self.table.selectedItems()
        return items[0].data(Qt.ItemDataRole.UserRole) if items else None

    def select(self, model_id: str) -> None:
        self.table.selectRow(self.row_of(model_id))

    def _selected_row(self):
        i = self.row_of(self.selected_id() or "")
        return self.rows[i] if i >= 0 else None

    def _update_buttons(self) -> None:
        r = self._selected_row()
        st = r.state.state if r else None
        kind = r.entry.source.kind if r else None
        self.download_button.setEnabled(bool(r) and kind in DOWNLOADABLE and st in ("needs download", "failed")
                                        and r.entry.id not in self.downloads)
        self.cancel_button.setEnabled(bool(r) and r.entry.id in self.downloads)
        self.delete_button.setEnabled(bool(r) and ((kind in DOWNLOADABLE and st == "ready") or kind == "user"))
        self.unload_button.setEnabled(bool(r) and r.loaded)
        self.description.setText(f"<b>{r.entry.name}</b> — {r.entry.description}" if r else "")

    # ---------------------------------------------------------------- actions
    def download_selected(self) -> None:
        r = self._selected_row()
        if r is None:
            return
        model_id = r.entry.id
        self.downloads[model_id] = self.bridge.submit(
            "download_model", {"model_id": model_id}, name=f"Download {r.entry.name}", background=True,
            on_progress=lambda p, m=model_id: self._progress(m, p),
            on_result=lambda _res, m=model_id: self._download_done(m, None),
            on_error=lambda err, m=model_id: self._download_done(m, err.message),
            on_cancelled=lambda m=model_id: self._download_done(m, "download cancelled; it resumes where it stopped"))
        self._show_bar(self.row_of(model_id), model_id)
        self._update_buttons()

    def _progress(self, model_id: str, p) -> None:
        i = self.row_of(model_id)
        if i >= 0:
            bar = self._show_bar(i, model_id)
            bar.setValue(int(1000 * (p.fraction or 0)))
            bar.setFormat(p.message or "%p%")

    def _download_done(self, model_id: str, error: str | None) -> None:
        self.downloads.pop(model_id, None)
        i = self.row_of(model_id)
        if i >= 0:
            self.table.removeCellWidget(i, STATE_COL)
        self._bars.pop(model_id, None)
        self.message.setText(f"⚠ {error}" if error else "")
        self.refresh()

    def cancel_selected(self) -> None:
        job = self.downloads.get(self.selected_id() or "")
        if job is not None:
            self.bridge.cancel(job)

    def delete_selected(self) -> None:
        r = self._selected_row()
        if r is None:
            return
        request = "delete_user_model" if r.entry.source.kind == "user" else "delete_model"
        self.bridge.submit(request, {"model_id": r.entry.id}, name=f"Delete {r.entry.name}",
                           on_error=lambda err: self.message.setText(f"⚠ {err.message}"))

    def unload_selected(self) -> None:
        r = self._selected_row()
        if r is not None:
            self.bridge.submit("unload_models", {"model_id": r.entry.id}, name=f"Unload {r.entry.name}",
                               on_result=lambda _: self.refresh())

    def choose_import(self) -> None:
        start = self.settings.value("models/import_dir", os.path.expanduser("~"))
        path, _ = QFileDialog.getOpenFileName(self, "Import model weights", start, WEIGHT_FILTER)
        if path:
            self.settings.setValue("models/import_dir", os.path.dirname(path))
            self.import_file(path)

    def import_file(self, path: str, arch_choice: str | None = None) -> int:
        def failed(err, p=path):
            if "could not recognise the architecture" in err.message and arch_choice is None:
                self._ask_architecture(p, err.message)
            else:
                self.message.setText(f"⚠ {err.message}")

        self.message.setText(f"Importing {os.path.basename(path)}…")
        return self.bridge.submit(
            "import_model", {"path": path, "arch_choice": arch_choice}, name=f"Import {os.path.basename(path)}",
            on_result=lambda model_id: (self.message.setText(f"Imported as {model_id}."), self.refresh()),
            on_error=failed)

    def _ask_architecture(self, path: str, reason: str) -> None:
        from engine.catalogue.jobs import ARCH_CHOICES

        choice, ok = QInputDialog.getItem(self, "Choose the architecture", f"{reason}\n\nWhich model is it?",
                                          list(ARCH_CHOICES), 0, False)
        if ok and choice:
            self.import_file(path, choice)
        else:
            self.message.setText(f"⚠ {reason}")


def _source_text(src) -> str:
    return {"package": "PyPI package", "resources": "built in", "url": "download", "hf": "Hugging Face",
            "hf-snapshot": "Hugging Face", "user": "your file", "run": "trained here"}.get(src.kind, src.kind)
