"""A small editor for weighted +/- queries; it writes the same syntax the query line accepts
(`2:golden retriever + ./pool.jpg - fruit`), so the two stay interchangeable."""
from __future__ import annotations

from PySide6.QtWidgets import (QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFileDialog, QHBoxLayout,
                               QLabel, QLineEdit, QPushButton, QVBoxLayout, QWidget)

from gui.dropping import IMAGE_FILTER


class _TermRow(QWidget):
    def __init__(self, first: bool, parent=None):
        super().__init__(parent)
        self.sign = QComboBox()
        self.sign.addItems(["+", "−"])
        self.sign.setEnabled(not first)
        self.weight = QDoubleSpinBox()
        self.weight.setRange(0.1, 10.0)
        self.weight.setSingleStep(0.5)
        self.weight.setValue(1.0)
        self.weight.setPrefix("× ")
        self.text = QLineEdit()
        self.text.setPlaceholderText("words, or an image file")
        browse = QPushButton("Image…")
        browse.clicked.connect(self._browse)
        self.remove = QPushButton("✕")
        self.remove.setFixedWidth(28)
        self.remove.setEnabled(not first)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        for w in (self.sign, self.weight, self.text, browse, self.remove):
            lay.addWidget(w, 1 if w is self.text else 0)

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Image term", "", IMAGE_FILTER)
        if path:
            self.text.setText(path)

    def term(self) -> str:
        value = self.text.text().strip()
        if not value:
            return ""
        w = self.weight.value()
        return value if abs(w - 1.0) < 1e-9 else f"{w:g}:{value}"


class QueryEditor(QDialog):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Build a query")
        self.rows: list[_TermRow] = []
        self.body = QVBoxLayout()
        add = QPushButton("Add term")
        add.clicked.connect(lambda: self.add_row())
        self.preview = QLabel("")
        self.preview.setStyleSheet("font-family: monospace;")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(QLabel("Each term adds (+) or subtracts (−) its embedding, times its weight."))
        lay.addLayout(self.body)
        lay.addWidget(add)
        lay.addWidget(self.preview)
        lay.addWidget(buttons)
        self.add_row()
        self.resize(620, 200)

    def add_row(self, text: str = "", weight: float = 1.0, minus: bool = False) -> _TermRow:
        row = _TermRow(first=not self.rows)
        row.text.setText(text)
        row.weight.setValue(weight)
        row.sign.setCurrentIndex(1 if minus else 0)
        for sig in (row.text.textChanged, row.weight.valueChanged, row.sign.currentIndexChanged):
            sig.connect(self._update)
        row.remove.clicked.connect(lambda: self._remove(row))
        self.rows.append(row)
        self.body.addWidget(row)
        self._update()
        return row

    def _remove(self, row: _TermRow) -> None:
        self.rows.remove(row)
        row.deleteLater()
        self._update()

    def query(self) -> str:
        out = ""
        for i, row in enumerate(self.rows):
            term = row.term()
            if not term:
                continue
            if not out:
                out = term
            else:
                out += (" - " if row.sign.currentIndex() == 1 else " + ") + term
        return out

    def _update(self) -> None:
        self.preview.setText(self.query() or "(empty)")
