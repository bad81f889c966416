"""An image with a map drawn over it on its patch grid: hover highlights a patch, click picks it.

Pure drawing: the map arrives from the engine already scaled to [0, 1]; here it becomes an
8-bit indexed image whose colour table is the chosen colour map (the same tables the CLI
writes with), drawn over the photo with the chosen opacity, like `engine.attention.overlay`.
"""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPalette, QPen, QPixmap, qRgb
from PySide6.QtWidgets import QSizePolicy, QWidget

from engine.attention.overlay import lut, to_uint8
from gui.dropping import FileDrops
from gui.qimage import array_to_qimage
from gui.widgets.patch_grid import PatchGrid


def heat_image(values: np.ndarray, cmap: str) -> QImage:
    """(h, w) map in [0, 1] -> indexed QImage coloured by `cmap`."""
    a = np.ascontiguousarray(to_uint8(values))
    h, w = a.shape
    img = QImage(a.data, w, h, a.strides[0], QImage.Format.Format_Indexed8).copy()
    img.setColorTable([qRgb(int(r), int(g), int(b)) for r, g, b in lut(cmap)])
    return img


class OverlayView(PatchGrid, FileDrops, QWidget):
    file_dropped = Signal(str)
    hovered = Signal(int)  # patch index under the mouse, -1 when none
    patch_clicked = Signal(int)  # row-major patch index

    def __init__(self, placeholder: str = "", title: str = "", parent=None):
        super().__init__(parent)
        self.placeholder = placeholder
        self.title = title
        self._base: QPixmap | None = None
        self._base_image: QImage | None = None
        self._values: np.ndarray | None = None
        self._heat: QImage | None = None
        self.grid: tuple[int, int] | None = None
        self.opacity = 0.6
        self.cmap = "inferno"
        self.smooth = True
        self.clickable = True
        self.hover: int | None = None
        self.selected: int | None = None
        self.setMouseTracking(True)
        self.setAcceptDrops(True)
        self.setMinimumSize(96, 96)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    # ------------------------------------------------------------------ state
    def set_image(self, rgb: np.ndarray | None) -> None:
        self._base_image = None if rgb is None else array_to_qimage(rgb)
        self._base = None if rgb is None else QPixmap.fromImage(self._base_image)
        self.update()

    def set_map(self, values: np.ndarray | None, grid: tuple[int, int] | None = None) -> None:
        self._values = values
        self.grid = grid if grid is not None else (values.shape if values is not None else None)
        self._heat = None if values is None else heat_image(values, self.cmap)
        if self.hover is not None and self.grid and self.hover >= self.grid[0] * self.grid[1]:
            self.hover = None
        self.update()

    def set_style(self, opacity: float | None = None, cmap: str | None = None, smooth: bool | None = None) -> None:
        if opacity is not None:
            self.opacity = opacity
        if smooth is not None:
            self.smooth = smooth
        if cmap is not None and cmap != self.cmap:
            self.cmap = cmap
            if self._values is not None:
                self._heat = heat_image(self._values, cmap)
        self.update()

    def set_selected(self, index: int | None) -> None:
        self.selected = index
        self.update()

    def has_image(self) -> bool:
        return self._base is not None

    def value_at(self, index: int) -> float | None:
        if self._values is None or self.grid is None:
            return None
        return float(self._values.reshape(-1)[index])

    # ------------------------------------------------------------------ geometry
    def image_rect(self) -> QRectF:
        if self._base is None:
            return QRectF()
        return self.letterbox(self._base.size(), 18.0 if self.title else 0.0)

    def patch_centre(self, index: int) -> QPointF:
        return self.patch_rect(index).center()

    # ------------------------------------------------------------------ drawing
    def _draw_overlay(self, p: QPainter, target: QRectF) -> None:
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
        p.drawPixmap(target, self._base, QRectF(self._base.rect()))
        if self._heat is not None and self.opacity > 0:
            p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, self.smooth)
            heat = self._heat
            if self.smooth:  # bilinear upsampling in Qt, from patch centres
                heat = heat.convertToFormat(QImage.Format.Format_RGB32).scaled(
                    max(1, int(target.width())), max(1, int(target.height())),
                    Qt.AspectRatioMode.IgnoreAspectRatio, Qt.TransformationMode.SmoothTransformation)
            p.setOpacity(self.opacity)
            p.drawImage(target, heat, QRectF(heat.rect()))
            p.setOpacity(1.0)

    def paintEvent(self, event) -> None:  # noqa: N802
        p = QPainter(self)
        pal = self.palette()
        p.fillRect(self.rect(), pal.color(QPalette.ColorRole.Base))
        if self.title:
            f = QFont(self.font())
            f.setPointSizeF(max(7.0, f.pointSizeF() - 1))
            p.setFont(f)
            p.setPen(pal.color(QPalette.ColorRole.WindowText))
            p.drawText(QRectF(0, 0, self.width(), 18), Qt.AlignmentFlag.AlignCenter, self.title)
        if self._base is None:
            p.setPen(QColor(pal.color(QPalette.ColorRole.Mid)))
            p.drawRoundedRect(self.rect().adjusted(8, 8, -9, -9), 8, 8)
            p.setPen(pal.color(QPalette.ColorRole.PlaceholderText))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self.placeholder)
            return
        r = self.image_rect()
        self._draw_overlay(p, r)
        if self.grid is None or not self.clickable:
            return
        if max(self.grid) <= 32:  # faint patch borders: the tokens the model actually has
            p.setPen(QPen(QColor(255, 255, 255, 28), 1))
            self.draw_grid_lines(p, r)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        if self.selected is not None:
            p.setPen(QPen(QColor("#00e5ff"), 2.5))
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawRect(self.patch_rect(self.selected, r).adjusted(1, 1, -1, -1))
        if self.hover is not None:
            p.setPen(QPen(QColor(255, 255, 255, 230), 1.5))
            p.setBrush(QColor(255, 255, 255, 50))
            p.drawRect(self.patch_rect(self.hover, r))

    def render_overlay(self) -> QImage:
        """The overlay at the image's own resolution, without hover marks: what Export writes."""
        img = QImage(self._base.size(), QImage.Format.Format_RGB32)
        p = QPainter(img)
        self._draw_overlay(p, QRectF(img.rect()))
        p.end()
        return img

    # ------------------------------------------------------------------ mouse
    def mouseMoveEvent(self, event) -> None:  # noqa: N802
        index = self.patch_at(event.position()) if self.clickable else None
        if index != self.hover:
            self.hover = index
            self.hovered.emit(-1 if index is None else index)
            self.update()

    def leaveEvent(self, event) -> None:  # noqa: N802
        if self.hover is not None:
            self.hover = None
            self.hovered.emit(-1)
            self.update()

    def mousePressEvent(self, event) -> None:  # noqa: N802
        if event.button() != Qt.MouseButton.LeftButton or not self.clickable:
            return
        index = self.patch_at(event.position())
        if index is not None:
            self.patch_clicked.emit(index)

    def file_drop(self, path: str) -> None:
        self.file_dropped.emit(path)


class ColourBar(QWidget):
    """The colour map from 0 to the map's peak, so a colour can be read as a value."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.cmap = "inferno"
        self.peak: float | None = None
        self.caption = ""
        self.setFixedHeight(34)

    def set_values(self, cmap: str | None = None, peak: float | None = None, caption: str | None = None) -> None:
        if cmap is not None:
            self.cmap = cmap
        if peak is not None:
            self.peak = peak
        if caption is not None:
            self.caption = caption
        self.update()

    def paintEvent(self, event) -> None:  # noqa: N802
        p = QPainter(self)
        ramp = np.ascontiguousarray(np.linspace(0.0, 1.0, 256, dtype=np.float32)[None, :])  # (1, 256)
        img = heat_image(ramp, self.cmap)
        bar = QRectF(40, 2, max(10, self.width() - 80), 12)
        p.drawImage(bar, img, QRectF(img.rect()))
        p.setPen(self.palette().color(QPalette.ColorRole.WindowText))
        p.drawText(QRectF(0, 0, 36, 16), Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, "0")
        top = "peak" if self.peak is None else f"{self.peak:.3g}"
        p.drawText(QRectF(bar.right() + 4, 0, 76, 16), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, top)
        p.setPen(self.palette().color(QPalette.ColorRole.PlaceholderText))
        p.drawText(QRectF(0, 16, self.width(), 18), Qt.AlignmentFlag.AlignCenter, self.caption)
