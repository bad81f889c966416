"""A table cell with a score's number and, beside it (never under it), a bar of its size."""
from __future__ import annotations

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPalette
from PySide6.QtWidgets import QWidget

GAP = 6  # between the number and its bar


class ScoreCell(QWidget):
    """`value` in 0..1 sets the bar; `text` is the number shown, right-aligned in its own column
    so numbers line up down the table and a bar never covers a digit."""

    def __init__(self, value: float, text: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.value = max(0.0, min(1.0, float(value)))
        self._text = text
        self.setToolTip(text)

    def text(self) -> str:
        return self._text

    def text_width(self) -> int:
        """The room the number gets: the widest text a score can have in this font."""
        return max(self.fontMetrics().horizontalAdvance("+0.000"), self.fontMetrics().horizontalAdvance("100.0%")) + 2

    def bar_rect(self) -> QRectF:
        x = self.text_width() + GAP
        return QRectF(x, self.height() * 0.3, max(0, self.width() - x - 4), self.height() * 0.4)

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(self.text_width() + GAP + 60, self.fontMetrics().height() + 6)

    def minimumSizeHint(self) -> QSize:  # noqa: N802
        return QSize(self.text_width() + GAP + 24, self.fontMetrics().height() + 2)

    def paintEvent(self, event) -> None:  # noqa: N802
        p = QPainter(self)
        pal = self.palette()
        p.setPen(pal.color(QPalette.ColorRole.Text))
        p.drawText(QRectF(0, 0, self.text_width(), self.height()),
                   Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight, self._text)
        bar = self.bar_rect()
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(pal.color(QPalette.ColorRole.AlternateBase).darker(105))
        p.drawRoundedRect(bar, 3, 3)
        p.setBrush(QColor(pal.color(QPalette.ColorRole.Highlight)))
        p.drawRoundedRect(QRectF(bar.x(), bar.y(), max(2.0, bar.width() * self.value), bar.height()), 3, 3)
