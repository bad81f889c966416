"""'All heads' small multiples: one overlay per head of a block, in a near-square grid."""
from __future__ import annotations

import math

from PySide6.QtCore import Signal
from PySide6.QtGui import QImage, QPainter
from PySide6.QtWidgets import QGridLayout, QWidget

from gui.panels.attention.overlay_view import OverlayView


class HeadsGrid(QWidget):
    patch_clicked = Signal(int)
    hovered = Signal(int)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.views: list[OverlayView] = []
        self._layout = QGridLayout(self)
        self._layout.setSpacing(4)
        self._layout.setContentsMargins(0, 0, 0, 0)

    def set_maps(self, image, maps, grid, opacity: float, cmap: str, smooth: bool, selected: int | None) -> None:
        """maps: AttentionMap per head (title, values, peak)."""
        while len(self.views) > len(maps):
            v = self.views.pop()
            self._layout.removeWidget(v)
            v.deleteLater()
        while len(self.views) < len(maps):
            v = OverlayView()
            v.patch_clicked.connect(self.patch_clicked)
            v.hovered.connect(self._hovered)
            self.views.append(v)
        cols = max(1, math.ceil(math.sqrt(len(maps))))
        for i, (v, m) in enumerate(zip(self.views, maps)):
            self._layout.addWidget(v, i // cols, i % cols)
            v.title = f"{m.title} · peak {m.peak:.2f}"
            v.set_style(opacity, cmap, smooth)
            v.set_image(image)
            v.set_map(m.values, grid)
            v.set_selected(selected)

    def set_style(self, opacity=None, cmap=None, smooth=None) -> None:
        for v in self.views:
            v.set_style(opacity, cmap, smooth)

    def _hovered(self, index: int) -> None:
        for v in self.views:  # the same patch, highlighted in every head
            if v is not self.sender():
                v.hover = None if index < 0 else index
                v.update()
        self.hovered.emit(index)

    def render_overlay(self) -> QImage:
        """All heads at full resolution, side by side in the grid's layout."""
        if not self.views:
            return QImage()
        cols = max(1, math.ceil(math.sqrt(len(self.views))))
        rows = math.ceil(len(self.views) / cols)
        tiles = [v.render_overlay() for v in self.views]
        w, h, gap = tiles[0].width(), tiles[0].height(), 4
        out = QImage(cols * w + (cols - 1) * gap, rows * h + (rows - 1) * gap, QImage.Format.Format_RGB32)
        out.fill(0xFFFFFFFF)
        p = QPainter(out)
        for i, t in enumerate(tiles):
            p.drawImage((i % cols) * (w + gap), (i // cols) * (h + gap), t)
        p.end()
        return out
