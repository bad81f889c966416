"""Geometry shared by the views that draw an image on a ViT's patch grid (Attention, MAE)."""
from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, QSize
from PySide6.QtGui import QPainter


class PatchGrid:
    """Mixin for a QWidget that draws an image letterboxed under a title band, divided into the
    model's `grid` (rows, cols) of patches numbered row-major: the image's rectangle, the patch under
    a point, a patch's rectangle and the grid lines, so hit-testing matches what is drawn."""

    grid: tuple[int, int] | None = None

    def image_rect(self) -> QRectF:
        raise NotImplementedError

    def letterbox(self, size: QSize, top: float) -> QRectF:
        """Where an image of `size` is drawn: as large as fits below a `top`-pixel band, centred."""
        pw, ph = size.width(), size.height()
        scale = min(self.width() / pw, (self.height() - top) / ph)
        w, h = pw * scale, ph * scale
        return QRectF((self.width() - w) / 2, top + (self.height() - top - h) / 2, w, h)

    def patch_at(self, pos: QPointF) -> int | None:
        r = self.image_rect()
        if self.grid is None or r.isEmpty() or not r.contains(pos):
            return None
        gh, gw = self.grid
        row = min(gh - 1, int((pos.y() - r.top()) / r.height() * gh))
        col = min(gw - 1, int((pos.x() - r.left()) / r.width() * gw))
        return row * gw + col

    def patch_rect(self, index: int, r: QRectF | None = None) -> QRectF:
        r = self.image_rect() if r is None else r
        gh, gw = self.grid
        cw, ch = r.width() / gw, r.height() / gh
        return QRectF(r.left() + (index % gw) * cw, r.top() + (index // gw) * ch, cw, ch)

    def draw_grid_lines(self, p: QPainter, r: QRectF) -> None:
        """The borders between patches over image rectangle `r`, in the painter's current pen."""
        gh, gw = self.grid
        for i in range(1, gw):
            x = r.left() + r.width() * i / gw
            p.drawLine(QPointF(x, r.top()), QPointF(x, r.bottom()))
        for i in range(1, gh):
            y = r.top() + r.height() * i / gh
            p.drawLine(QPointF(r.left(), y), QPointF(r.right(), y))
