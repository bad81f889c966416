"""Horizontal probability bars for top-k predictions, drawn in one paint pass."""
from __future__ import annotations

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPalette
from PySide6.QtWidgets import QSizePolicy, QToolTip, QWidget

ROW_H = 34
PCT_W = 64  # the percentage after each bar
LABEL_PAD = 8  # between a label and its bar


class TopKBars(QWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._rows: list[tuple[str, str, float]] = []  # (label, tooltip, probability)
        self.setMouseTracking(True)
        self.setVisible(False)  # until there are rows
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Minimum)

    def set_rows(self, rows: list[tuple[str, str, float]]) -> None:
        self._rows = list(rows)
        self.setVisible(bool(self._rows))
        self.updateGeometry()
        self.update()

    def rows(self) -> list[tuple[str, str, float]]:
        return list(self._rows)

    def _bold(self) -> QFont:
        bold = QFont(self.font())
        bold.setBold(True)
        return bold

    def _label_needed(self) -> int:
        """Width that shows every label whole (the first row is bold)."""
        bold, plain = QFontMetrics(self._bold()), self.fontMetrics()
        return max((bold if i == 0 else plain).horizontalAdvance(label) for i, (label, _, _) in enumerate(self._rows)) \
            + LABEL_PAD + 4 if self._rows else 0  # +4: elidedText rounds fractional advances up

    def _label_width(self) -> int:
        """Labels get what they need, up to 60 % of the width; the bars take the rest."""
        return min(self._label_needed(), int(self.width() * 0.6))

    def elided_labels(self) -> list[str]:
        """Labels drawn shortened at the current width (for layout checks)."""
        bold, plain = QFontMetrics(self._bold()), self.fontMetrics()
        room = self._label_width() - LABEL_PAD
        return [label for i, (label, _, _) in enumerate(self._rows)
                if (bold if i == 0 else plain).elidedText(label, Qt.TextElideMode.ElideRight, room) != label]

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(self._label_needed() + PCT_W + 200, max(1, len(self._rows)) * ROW_H + 8)

    def minimumSizeHint(self) -> QSize:  # noqa: N802
        return QSize(min(self._label_needed(), 240) + PCT_W + 80, max(1, len(self._rows)) * ROW_H + 8)

    def paintEvent(self, event) -> None:  # noqa: N802
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        pal = self.palette()
        accent = pal.color(QPalette.ColorRole.Highlight)
        track = pal.color(QPalette.ColorRole.AlternateBase)
        label_w = self._label_width()
        pct_w = PCT_W
        bar_w = max(20, self.width() - label_w - pct_w - 16)
        bold = self._bold()
        for i, (label, _, prob) in enumerate(self._rows):
            y = 4 + i * ROW_H
            p.setFont(bold if i == 0 else self.font())
            p.setPen(pal.color(QPalette.ColorRole.WindowText))
            p.drawText(QRectF(0, y, label_w - 6, ROW_H - 6),
                       Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight,
                       p.fontMetrics().elidedText(label, Qt.TextElideMode.ElideRight, label_w - LABEL_PAD))
            bar = QRectF(label_w, y + 6, bar_w, ROW_H - 18)
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(track)
            p.drawRoundedRect(bar, 4, 4)
            color = QColor(accent) if i == 0 else QColor(accent).lighter(150)
            p.setBrush(color)
            p.drawRoundedRect(QRectF(bar.x(), bar.y(), max(2.0, bar.width() * prob), bar.height()), 4, 4)
            p.setPen(pal.color(QPalette.ColorRole.WindowText))
            p.drawText(QRectF(label_w + bar_w + 6, y, pct_w, ROW_H - 6),
                       Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft, f"{100 * prob:.1f}%")

    def mouseMoveEvent(self, event) -> None:  # noqa: N802
        i = int((event.position().y() - 4) // ROW_H)
        if 0 <= i < len(self._rows):
            label, tip, prob = self._rows[i]
            QToolTip.showText(event.globalPosition().toPoint(), f"{tip}\n{100 * prob:.2f}%", self)
