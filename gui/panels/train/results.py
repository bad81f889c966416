"""A classifier's end-of-run picture: the confusion matrix and per-class accuracy bars."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPalette
from PySide6.QtWidgets import QSizePolicy, QWidget


class ResultsView(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.confusion: np.ndarray | None = None
        self.classes: list[str] = []
        self.title = ""
        self.setMinimumSize(320, 240)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def set_result(self, confusion, classes, title: str = "") -> None:
        self.confusion = None if confusion is None else np.asarray(confusion, dtype=np.int64)
        n = 0 if self.confusion is None else len(self.confusion)
        self.classes = list(classes or [str(i) for i in range(n)])[:n]
        self.title = title
        self.update()

    def paintEvent(self, event) -> None:  # noqa: N802
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        pal = self.palette()
        p.fillRect(self.rect(), pal.color(QPalette.ColorRole.Base))
        text = pal.color(QPalette.ColorRole.Text)
        p.setPen(text)
        if self.confusion is None or not len(self.confusion):
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter,
                       "A classifier's confusion matrix and per-class accuracy appear here when its run ends.")
            return
        cm = self.confusion
        n = len(cm)
        rows = cm.sum(1, keepdims=True).clip(min=1)
        frac = cm / rows  # each true class's predictions, as shares
        p.drawText(QRectF(8, 4, self.width() - 16, 18), Qt.AlignmentFlag.AlignLeft, self.title)
        label_w = min(110, max(60, self.width() // 8))
        side = max(40.0, min(self.height() - 70.0, (self.width() - 2 * label_w - 60) * 0.55))
        cell = side / n
        x0, y0 = label_w + 8, 28.0
        small = QFont(self.font())
        small.setPointSizeF(max(6.0, min(9.0, cell * 0.32)))
        p.setFont(small)
        for i in range(n):
            for j in range(n):
                v = float(frac[i, j])
                colour = QColor.fromRgbF(1 - 0.8 * v, 1 - 0.55 * v, 1 - 0.2 * v) if i == j else \
                    QColor.fromRgbF(1 - 0.15 * v, 1 - 0.75 * v, 1 - 0.75 * v)
                r = QRectF(x0 + j * cell, y0 + i * cell, cell, cell)
                p.fillRect(r, colour)
                if cell >= 16 and cm[i, j]:
                    p.setPen(QColor("white") if v > 0.6 else text)
                    p.drawText(r, Qt.AlignmentFlag.AlignCenter, str(int(cm[i, j])))
            p.setPen(text)
            p.drawText(QRectF(2, y0 + i * cell, label_w, cell), Qt.AlignmentFlag.AlignRight |
                       Qt.AlignmentFlag.AlignVCenter, self.classes[i][:16])
        p.setPen(QColor("#999"))
        p.drawRect(QRectF(x0, y0, side, side))
        p.setPen(text)
        p.drawText(QRectF(x0, y0 + side + 2, side, 16), Qt.AlignmentFlag.AlignCenter, "predicted class →")
        # per-class accuracy bars, beside the matrix
        bx = x0 + side + 24 + label_w
        bw = max(40.0, self.width() - bx - 50)
        p.drawText(QRectF(bx - label_w - 6, 4, bw + label_w, 18), Qt.AlignmentFlag.AlignLeft, "per-class accuracy")
        acc = cm.diagonal() / rows[:, 0]
        for i in range(n):
            r = QRectF(bx, y0 + i * cell + cell * 0.15, bw * float(acc[i]), cell * 0.7)
            p.fillRect(QRectF(bx, r.top(), bw, r.height()), pal.color(QPalette.ColorRole.AlternateBase))
            p.fillRect(r, QColor("#3b7dd8"))
            p.drawText(QRectF(bx - label_w - 6, y0 + i * cell, label_w, cell),
                       Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, self.classes[i][:16])
            p.drawText(QRectF(bx + bw + 4, y0 + i * cell, 46, cell), Qt.AlignmentFlag.AlignLeft |
                       Qt.AlignmentFlag.AlignVCenter, f"{100 * acc[i]:.0f}%")
