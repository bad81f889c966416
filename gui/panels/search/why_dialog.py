"""“Why this result”: the hit with a heat map of what made it match, and (for ConSE) which of
its classes carried the score."""
from __future__ import annotations

import os

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QHBoxLayout, QLabel, QProgressBar

from gui.qimage import array_to_pixmap
from gui.widgets.layouts import bold_label, vbox
from gui.widgets.topk_bars import TopKBars


class WhyDialog(QDialog):
    def __init__(self, bridge, path: str, query: str, model_id: str, folder: str | None, parent=None):
        super().__init__(parent)
        self.setWindowTitle(f"Why {os.path.basename(path)}?")
        self.bridge = bridge
        self.result = None
        self.picture = QLabel()
        self.picture.setFixedSize(336, 336)
        self.picture.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.picture.setStyleSheet("background: #222;")
        self.summary = QLabel(f"Looking at {os.path.basename(path)} for “{query}”…")
        self.summary.setWordWrap(True)
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)
        self.bars = TopKBars()
        self.bars_title = bold_label("")
        right = vbox(self.summary, self.busy, self.bars_title, self.bars, 1)
        lay = QHBoxLayout(self)
        lay.addWidget(self.picture)
        lay.addLayout(right, 1)
        self.resize(760, 380)
        self.job = bridge.submit("explain_search", {"path": path, "query": query, "model_id": model_id,
                                                    "folder": folder},
                                 name=f"Why {os.path.basename(path)}", on_result=self._show, on_error=self._failed)

    def _show(self, res) -> None:
        self.result = res
        self.busy.hide()
        self.picture.setPixmap(array_to_pixmap(res.image).scaled(
            self.picture.size(), Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation))
        self.summary.setText(res.summary)
        if res.contributions:
            self.bars_title.setText("Share of the score by class (probability × similarity to the query)")
            total = sum(max(0.0, c.share) for c in res.contributions) or 1.0
            self.bars.set_rows([(c.label, f"p {c.prob:.0%} · similarity {c.similarity:.2f}", max(0.0, c.share) / total)
                                for c in res.contributions[:5]])

    def _failed(self, err) -> None:
        self.busy.hide()
        self.summary.setText(f"⚠ {err.message}")

    def done(self, r: int) -> None:  # closing cancels the job if it is still running
        self.bridge.cancel(self.job)
        super().done(r)
