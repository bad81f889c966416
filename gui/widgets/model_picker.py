"""A panel's model picker: the catalogue entries for that panel, marked ready or not.

Choosing a model that is not on disk shows a Download button beside the list instead of
failing later; the list refreshes whenever the catalogue changes (download, import, run).
"""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QPushButton, QWidget

from engine import catalogue

READY_STATES = ("ready", "user file")


def state_text(row) -> str:
    st = row.state
    if st.state in READY_STATES:
        return "✓ loaded" if row.loaded else "✓ ready"
    if st.state == "downloading":
        return f"⬇ {st.detail}"
    return f"{st.state}" + (f" · {st.detail}" if st.detail and st.state != "failed" else "")


class ModelPicker(QWidget):
    model_changed = Signal(str)  # a ready model was chosen

    def __init__(self, bridge, panel: str, settings, default: str | None = None, parent=None):
        super().__init__(parent)
        self.bridge, self.panel, self.settings = bridge, panel, settings
        self._key = f"{panel}/model"
        self._rows: dict[str, object] = {}
        self._download_job: int | None = None
        self.combo = QComboBox()
        self.combo.setMinimumWidth(280)
        self.download_button = QPushButton("Download")
        self.download_button.hide()
        self.download_button.clicked.connect(self.download_current)
        self.note = QLabel("")
        self.note.setStyleSheet("color: palette(mid);")
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.combo, 1)
        lay.addWidget(self.download_button)
        lay.addWidget(self.note)
        # Names at once (no states yet); states arrive from the engine.
        saved = settings.value(self._key, default or "")
        for e in catalogue.entries(panel):
            self.combo.addItem(e.name, e.id)
        self.combo.setCurrentIndex(max(0, self.combo.findData(saved)))
        self.combo.currentIndexChanged.connect(self._changed)
        bridge.catalogue_changed.connect(self.refresh)
        self.refresh()

    def current_id(self) -> str | None:
        return self.combo.currentData()

    def is_ready(self, model_id: str | None = None) -> bool:
        row = self._rows.get(model_id or self.current_id())
        return row is not None and row.state.state in READY_STATES

    def refresh(self) -> None:
        self.bridge.submit("list_models", {"panel": self.panel}, name=f"List models ({self.panel})",
                           on_result=self._populate)

    def _populate(self, rows) -> None:
        current = self.current_id()
        self._rows = {r.entry.id: r for r in rows}
        self.combo.blockSignals(True)
        self.combo.clear()
        for r in rows:
            self.combo.addItem(f"{r.entry.name}   ({state_text(r)})", r.entry.id)
            i = self.combo.count() - 1
            self.combo.setItemData(i, f"{r.entry.description}\n{r.entry.size_mb:.0f} MB · {r.entry.licence}",
                                   Qt.ItemDataRole.ToolTipRole)
            if r.state.state not in READY_STATES:
                self.combo.setItemData(i, QBrush(QColor("#777")), Qt.ItemDataRole.ForegroundRole)
        self.combo.setCurrentIndex(max(0, self.combo.findData(current)))
        self.combo.blockSignals(False)
        self._update_download_ui()

    def _changed(self) -> None:
        model_id = self.current_id()
        self._update_download_ui()
        if model_id and (self.is_ready(model_id) or not self._rows):
            self.settings.setValue(self._key, model_id)
            self.model_changed.emit(model_id)

    def _update_download_ui(self) -> None:
        row = self._rows.get(self.current_id())
        st = row.state.state if row else None
        self.download_button.setVisible(st in ("needs download", "failed") and row.entry.source.kind in
                                         ("url", "hf", "hf-snapshot"))
        self.download_button.setText("Retry download" if st == "failed" else
                                     f"Download ({row.entry.size_mb:.0f} MB)" if row else "Download")
        self.note.setText(row.state.detail if row and st in ("failed", "needs extra") else "")

    def download_current(self) -> None:
        model_id = self.current_id()
        row = self._rows.get(model_id)
        if row is None:
            return
        self.download_button.setEnabled(False)
        self.note.setText("starting download…")

        def progress(p):
            self.note.setText(p.message)

        def finished(_=None):
            self.download_button.setEnabled(True)
            self.note.setText("")

        def failed(err):
            self.download_button.setEnabled(True)
            self.note.setText(err.message)

        self._download_job = self.bridge.submit(
            "download_model", {"model_id": model_id}, name=f"Download {row.entry.name}", background=True,
            on_progress=progress, on_result=finished, on_error=failed, on_cancelled=finished)


def open_and_model_row(open_button: QWidget, picker: ModelPicker) -> QHBoxLayout:
    """The image panels' top row: the Open button, then "Model:" and the picker taking the rest."""
    row = QHBoxLayout()
    row.addWidget(open_button)
    row.addSpacing(12)
    row.addWidget(QLabel("Model:"))
    row.addWidget(picker, 1)
    return row
