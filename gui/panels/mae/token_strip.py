"""The token-order strip: the shuffle and unshuffle of MAE's masking, drawn.

Top row: the L patch tokens in shuffled order (ids_shuffle, sorted by random noise); the first
len_keep are the only tokens the encoder sees. Bottom row: the decoder's input after
ids_restore has put every token back at its patch: encoded tokens where they came from, the
shared mask token [M] everywhere else. A line joins each token's two positions.
"""
from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPalette, QPen, QPixmap
from PySide6.QtWidgets import QSizePolicy, QToolTip, QWidget

KEPT = QColor("#2e9d5b")
MASK_TOKEN = QColor(150, 150, 150)
LABEL_W = 130  # left margin for the row labels


class TokenStrip(QWidget):
    hovered = Signal(int)  # patch index under the mouse, -1 when none

    def __init__(self, parent=None):
        super().__init__(parent)
        self.ids_shuffle: list[int] = []
        self.ids_restore: list[int] = []
        self.len_keep = 0
        self.grid: tuple[int, int] = (0, 0)
        self._pixmap: QPixmap | None = None
        self.highlight: int | None = None
        self.setMouseTracking(True)
        self.setFixedHeight(150)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def set_order(self, ids_shuffle, ids_restore, len_keep: int, grid: tuple[int, int],
                  original: QPixmap | None) -> None:
        self.ids_shuffle = [int(i) for i in ids_shuffle]
        self.ids_restore = [int(i) for i in ids_restore]
        self.len_keep = int(len_keep)
        self.grid = tuple(grid)
        self._pixmap = original
        self.update()

    def kept_patches(self) -> list[int]:
        """The patch indices the encoder saw, in the order it saw them (ids_shuffle[:len_keep])."""
        return self.ids_shuffle[:self.len_keep]

    def set_highlight(self, index: int | None) -> None:
        if index != self.highlight:
            self.highlight = index
            self.update()

    # ------------------------------------------------------------------ geometry
    def _cell(self) -> float:
        n = max(1, len(self.ids_shuffle))
        return max(1.0, (self.width() - LABEL_W - 8) / n)

    def _rows(self) -> tuple[QRectF, QRectF]:
        c = self._cell()
        h = min(28.0, max(8.0, c))
        top = QRectF(LABEL_W, 22, c * len(self.ids_shuffle), h)
        bottom = QRectF(LABEL_W, self.height() - h - 6, c * len(self.ids_shuffle), h)
        return top, bottom

    def _source(self, patch: int) -> QRectF:
        gh, gw = self.grid
        pw, ph = self._pixmap.width() / gw, self._pixmap.height() / gh
        return QRectF((patch % gw) * pw, (patch // gw) * ph, pw, ph)

    # ------------------------------------------------------------------ drawing
    def paintEvent(self, event) -> None:  # noqa: N802
        p = QPainter(self)
        pal = self.palette()
        p.fillRect(self.rect(), pal.color(QPalette.ColorRole.Base))
        if not self.ids_shuffle:
            p.setPen(pal.color(QPalette.ColorRole.PlaceholderText))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "The token order appears with the first reconstruction")
            return
        n, keep, c = len(self.ids_shuffle), self.len_keep, self._cell()
        top, bottom = self._rows()
        text = pal.color(QPalette.ColorRole.Text)
        p.setPen(text)
        p.drawText(QRectF(4, top.top() - 8, LABEL_W - 8, top.height() + 16), Qt.AlignmentFlag.AlignVCenter,
                   "shuffled\n(ids_shuffle)")
        p.drawText(QRectF(4, bottom.top() - 8, LABEL_W - 8, bottom.height() + 16), Qt.AlignmentFlag.AlignVCenter,
                   "decoder input\n(ids_restore)")
        # lines first, so the cells cover their ends: token j goes back to patch ids_shuffle[j]
        for j, patch in enumerate(self.ids_shuffle):
            a = QPointF(top.left() + (j + 0.5) * c, top.bottom())
            b = QPointF(bottom.left() + (patch + 0.5) * c, bottom.top())
            hot = self.highlight == patch
            colour = QColor(KEPT if j < keep else MASK_TOKEN)
            colour.setAlpha(255 if hot else (150 if j < keep else 35))
            p.setPen(QPen(colour, 2.0 if hot else 1.0))
            p.drawLine(a, b)
        for j, patch in enumerate(self.ids_shuffle):  # top row: shuffled tokens
            cell = QRectF(top.left() + j * c, top.top(), c, top.height())
            self._draw_token(p, cell, patch, kept=j < keep, mask_token=False)
        for i in range(n):  # bottom row: patch order; hidden positions hold the mask token
            cell = QRectF(bottom.left() + i * c, bottom.top(), c, bottom.height())
            self._draw_token(p, cell, i, kept=self.ids_restore[i] < keep, mask_token=self.ids_restore[i] >= keep)
        # the len_keep divider and the captions
        x = top.left() + keep * c
        p.setPen(QPen(text, 2))
        p.drawLine(QPointF(x, top.top() - 4), QPointF(x, top.bottom() + 4))
        p.setPen(text)
        p.drawText(QRectF(top.left(), 2, top.width(), 18), Qt.AlignmentFlag.AlignLeft,
                   f"the encoder sees only ids_shuffle[:len_keep]: {keep} tokens, left of the bar; the other "
                   f"{n - keep} are dropped, and the decoder gets a mask token [M] in their place")

    def _draw_token(self, p: QPainter, cell: QRectF, patch: int, kept: bool, mask_token: bool) -> None:
        inner = cell.adjusted(0.5, 0.5, -0.5, -0.5) if cell.width() > 3 else cell
        if mask_token:
            p.fillRect(inner, MASK_TOKEN)
            if cell.width() >= 14:
                p.setPen(QColor(255, 255, 255))
                p.drawText(inner, Qt.AlignmentFlag.AlignCenter, "M")
        elif self._pixmap is not None and self.grid[0]:
            p.drawPixmap(inner, self._pixmap, self._source(patch))
            if not kept:  # a dropped token in the top row: dimmed
                p.fillRect(inner, QColor(255, 255, 255, 170))
        if kept and cell.width() > 3:
            p.setPen(QPen(KEPT, 1.5))
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawRect(inner)
        if patch == self.highlight:
            p.setPen(QPen(QColor("#00e5ff"), 2))
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawRect(cell)

    # ------------------------------------------------------------------ hover
    def patch_at(self, pos: QPointF) -> tuple[int, str] | None:
        if not self.ids_shuffle:
            return None
        top, bottom = self._rows()
        c = self._cell()
        for row, rect in (("top", top), ("bottom", bottom)):
            if rect.adjusted(0, -2, 0, 2).contains(pos):
                k = min(len(self.ids_shuffle) - 1, int((pos.x() - rect.left()) / c))
                return (self.ids_shuffle[k], row) if row == "top" else (k, row)
        return None

    def mouseMoveEvent(self, event) -> None:  # noqa: N802
        hit = self.patch_at(event.position())
        if hit is None:
            self.hovered.emit(-1)
            QToolTip.hideText()
            return
        patch, _ = hit
        gw = self.grid[1]
        j = self.ids_restore[patch]
        fate = "kept: the encoder sees it" if j < self.len_keep else "hidden: replaced by the mask token"
        QToolTip.showText(event.globalPosition().toPoint(),
                          f"patch {patch} (row {patch // gw}, column {patch % gw})\n"
                          f"ids_restore[{patch}] = {j}: shuffled position {j}\n{fate}", self)
        self.hovered.emit(patch)

    def leaveEvent(self, event) -> None:  # noqa: N802
        self.hovered.emit(-1)
        super().leaveEvent(event)
