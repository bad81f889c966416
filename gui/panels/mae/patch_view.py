"""One view of the MAE panel: an image on a patch grid, with an optional highlighted patch
and, on the original, a mask the user paints with the mouse."""
from __future__ import annotations

from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPalette, QPen, QPixmap
from PySide6.QtWidgets import QSizePolicy, QWidget

from gui.dropping import FileDrops
from gui.widgets.patch_grid import PatchGrid


class PatchView(PatchGrid, FileDrops, QWidget):
    """Draws a pixmap letterboxed and square-pixelled (small images are enlarged without blur)."""

    file_dropped = Signal(str)
    painted = Signal(list)  # painting: the new visible mask (bools, row-major), on every change
    paint_finished = Signal()
    hovered = Signal(int)  # patch index under the mouse, -1 when none

    def __init__(self, title: str, placeholder: str = "", parent=None):
        super().__init__(parent)
        self.title = title
        self.placeholder = placeholder
        self._pixmap: QPixmap | None = None
        self.grid: tuple[int, int] | None = None
        self.show_grid = False
        self.highlight: int | None = None
        self.paintable = False
        self.visible_mask: list[bool] | None = None  # painting state, True = visible
        self._paint_value: bool | None = None
        self.setAcceptDrops(True)
        self.setMouseTracking(True)
        self.setMinimumSize(120, 120)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    # ------------------------------------------------------------------ state
    def set_pixmap(self, pixmap: QPixmap | None, grid: tuple[int, int] | None = None) -> None:
        self._pixmap = pixmap
        if grid is not None:
            self.grid = grid
        self.update()

    def pixmap(self) -> QPixmap | None:
        return self._pixmap

    def set_highlight(self, index: int | None) -> None:
        if index != self.highlight:
            self.highlight = index
            self.update()

    def set_paintable(self, on: bool, visible: list[bool] | None = None) -> None:
        self.paintable = on
        self.visible_mask = list(visible) if visible is not None else self.visible_mask
        self.setCursor(Qt.CursorShape.CrossCursor if on else Qt.CursorShape.ArrowCursor)
        self.update()

    def image_rect(self) -> QRectF:
        if self._pixmap is None or self._pixmap.isNull():
            return QRectF()
        return self.letterbox(self._pixmap.size(), 20.0)  # room for the title

    # ------------------------------------------------------------------ drawing
    def paintEvent(self, event) -> None:  # noqa: N802 - Qt API
        p = QPainter(self)
        p.fillRect(self.rect(), self.palette().color(QPalette.ColorRole.Base))
        p.setPen(self.palette().color(QPalette.ColorRole.Text))
        f = p.font()
        f.setBold(True)
        p.setFont(f)
        p.drawText(QRectF(0, 0, self.width(), 18), Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop,
                   self.title)
        f.setBold(False)
        p.setFont(f)
        if self._pixmap is None or self._pixmap.isNull():
            p.setPen(self.palette().color(QPalette.ColorRole.Mid))
            p.drawRoundedRect(self.rect().adjusted(6, 22, -7, -7), 8, 8)
            p.setPen(self.palette().color(QPalette.ColorRole.PlaceholderText))
            p.drawText(self.rect().adjusted(6, 22, -7, -7), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                       self.placeholder)
            return
        r = self.image_rect()
        # enlarge small images pixel by pixel (a 28-px image stays crisp); smooth otherwise
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, r.width() < 2 * self._pixmap.width())
        p.drawPixmap(r, self._pixmap, QRectF(self._pixmap.rect()))
        if self.grid is None:
            return
        gh, gw = self.grid
        if self.paintable and self.visible_mask is not None and len(self.visible_mask) == gh * gw:
            p.setPen(Qt.PenStyle.NoPen)
            for i, vis in enumerate(self.visible_mask):
                if not vis:
                    p.fillRect(self.patch_rect(i), QColor(128, 128, 128, 200))
        if self.show_grid or self.paintable:
            p.setPen(QPen(QColor(255, 255, 255, 90), 1))
            self.draw_grid_lines(p, r)
        if self.highlight is not None and 0 <= self.highlight < gh * gw:
            p.setPen(QPen(QColor("#00e5ff"), 2))
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawRect(self.patch_rect(self.highlight).adjusted(1, 1, -1, -1))

    # ------------------------------------------------------------------ painting a mask
    def mousePressEvent(self, event) -> None:  # noqa: N802
        index = self.patch_at(event.position())
        if not self.paintable or index is None or self.visible_mask is None:
            return super().mousePressEvent(event)
        # the first patch decides: dragging from a visible patch hides, from a hidden one reveals
        self._paint_value = not self.visible_mask[index]
        if event.button() == Qt.MouseButton.RightButton:
            self._paint_value = True
        self._paint(index)

    def mouseMoveEvent(self, event) -> None:  # noqa: N802
        index = self.patch_at(event.position())
        self.hovered.emit(-1 if index is None else index)
        if self._paint_value is not None and index is not None:
            self._paint(index)

    def mouseReleaseEvent(self, event) -> None:  # noqa: N802
        if self._paint_value is not None:
            self._paint_value = None
            self.paint_finished.emit()
        super().mouseReleaseEvent(event)

    def leaveEvent(self, event) -> None:  # noqa: N802
        self.hovered.emit(-1)
        super().leaveEvent(event)

    def _paint(self, index: int) -> None:
        if self.visible_mask[index] == self._paint_value:
            return
        if not self._paint_value and sum(self.visible_mask) <= 1:
            return  # the encoder needs at least one visible patch
        self.visible_mask[index] = self._paint_value
        self.update()
        self.painted.emit(list(self.visible_mask))

    # ------------------------------------------------------------------ drops
    def file_drop(self, path: str) -> None:
        self.file_dropped.emit(path)
