"""One look for every plot (pyqtgraph): colours, title size, the value under the cursor as a
tooltip, and a right-click menu that exports the plot as PNG or its numbers as CSV.

Importing this module imports pyqtgraph (~0.3 s): widgets on the first panel shown import it
only when they first draw something (see gui/widgets/topk_bars.py).
"""
from __future__ import annotations

import csv
import math
import os
import re
from collections.abc import Callable, Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, QPoint, QPointF, Qt
from PySide6.QtGui import QPen
from PySide6.QtWidgets import QFileDialog, QMenu, QMessageBox, QToolTip, QWidget

#: One colour per run or series, in order (matplotlib's "tab10").
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2")
BACKGROUND, FOREGROUND = "w", "#333"
ACCENT = "#3b7dd8"  # bars: the one that matters
ACCENT_LIGHT = "#9dbdec"  # bars: the others
TRACK = "#eceff3"  # the 100 % track behind a bar
CORRECT_RGB = (59, 125, 216)  # a confusion matrix's diagonal
WRONG_RGB = (214, 39, 40)  # its off-diagonal cells
TITLE_SIZE = "10pt"
GRID_ALPHA = 0.25
LINE_WIDTH = 2
HOVER_PX = 24  # how near (pixels) the cursor must be to a curve's point to read it


def configure() -> None:
    """pyqtgraph's global options (white background, antialiasing); idempotent."""
    pg.setConfigOptions(antialias=True, background=BACKGROUND, foreground=FOREGROUND)


def style_plot(plot: pg.PlotItem, title: str = "", bottom: str = "", left: str = "", grid: bool = True) -> None:
    """Title size, grid and labels shared by every plot; pyqtgraph's own menu and "A" button are
    replaced by ExportMenu (one menu for every plot)."""
    if title:
        plot.setTitle(title, size=TITLE_SIZE)
    if grid:
        plot.showGrid(x=True, y=True, alpha=GRID_ALPHA)
    if bottom:
        plot.setLabel("bottom", bottom)
    if left:
        plot.setLabel("left", left)
    plot.setMenuEnabled(False)
    plot.hideButtons()


def curve_pen(colour: str, style: Qt.PenStyle = Qt.PenStyle.SolidLine) -> QPen:
    return pg.mkPen(colour, width=LINE_WIDTH, style=style)


def tint(rgb: tuple[int, int, int], share: np.ndarray) -> np.ndarray:
    """RGBA cells going from white (share 0) to `rgb` (share 1), uint8, shape share.shape + (4,)."""
    share = np.clip(np.asarray(share, np.float64), 0, 1)[..., None]
    colour = 255 - share * (255 - np.asarray(rgb, np.float64))
    alpha = np.full(share.shape, 255.0)
    return np.concatenate([colour, alpha], -1).round().astype(np.uint8)


# ---------------------------------------------------------------------------- reading values
class Hover(QObject):
    """Shows `text_at(x, y)` (data coordinates of `plot`) as a tooltip while the cursor moves over
    the plot or its axes; `text` keeps the last one shown ("" when nothing is under the cursor)."""

    def __init__(self, view: pg.GraphicsView, plot: pg.PlotItem, text_at: Callable[[float, float], str | None]):
        super().__init__(view)
        self.view, self.plot, self.text_at = view, plot, text_at
        self.text = ""
        view.scene().sigMouseMoved.connect(self._moved)

    def _moved(self, scene_pos: QPointF) -> None:
        inside = self.plot.isVisible() and self.plot.sceneBoundingRect().contains(scene_pos)
        text = ""
        if inside:
            p = self.plot.vb.mapSceneToView(scene_pos)
            text = self.text_at(p.x(), p.y()) or ""
        if text:  # shown again on every move: it follows the cursor and comes back after Qt hid it
            where = self.view.mapToGlobal(self.view.mapFromScene(scene_pos)) + QPoint(14, 10)
            QToolTip.showText(where, text, self.view)
        elif self.text and inside:  # outside, another plot's Hover may be showing its own
            QToolTip.hideText()
        self.text = text


def nearest_point(plot: pg.PlotItem, x: float, y: float, max_px: float = HOVER_PX):
    """(curve, x, y) of the drawn point nearest to (x, y) within max_px pixels, or None."""
    sx, sy = plot.vb.viewPixelSize()
    best, best_d = None, max_px
    for item in plot.listDataItems():
        if not item.isVisible() or item.xData is None or not len(item.xData):
            continue
        xs, ys = np.asarray(item.xData, float), np.asarray(item.yData, float)
        if len(xs) != len(ys):  # a step histogram: one more edge than values
            xs = (xs[:-1] + xs[1:]) / 2
        d = np.hypot((xs - x) / (sx or 1), (ys - y) / (sy or 1))
        i = int(np.nanargmin(d)) if np.isfinite(d).any() else -1
        if i >= 0 and d[i] <= best_d:
            best, best_d = (item, float(xs[i]), float(ys[i])), float(d[i])
    return best


def format_value(value: float) -> str:
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    return f"{value:,.0f}" if abs(value) >= 1000 and value == round(value) else f"{value:.4g}"


# ---------------------------------------------------------------------------- export
def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "plot"


class ExportMenu(QObject):
    """The right-click menu of a plot: Export PNG… (what is on screen), Export CSV… (the numbers
    behind it, from `csv_rows()`), and Reset zoom where the plot zooms."""

    def __init__(self, widget: QWidget, view: pg.GraphicsView, name: str,
                 csv_rows: Callable[[], Sequence[Sequence]], reset: Callable[[], None] | None = None):
        super().__init__(widget)
        self.widget, self.name, self.csv_rows, self.reset = widget, name, csv_rows, reset
        viewport = view.viewport()
        viewport.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        viewport.customContextMenuRequested.connect(lambda pos: self.menu().exec(viewport.mapToGlobal(pos)))

    def menu(self) -> QMenu:
        menu = QMenu(self.widget)
        if self.reset is not None:
            menu.addAction("Reset zoom", self.reset)
            menu.addSeparator()
        menu.addAction("Export PNG…", lambda: self._ask("PNG image (*.png)", ".png", self.save_png))
        menu.addAction("Export CSV…", lambda: self._ask("CSV table (*.csv)", ".csv", self.save_csv))
        return menu

    def save_png(self, path: str) -> str | None:
        """Write the plot as shown; returns a one-line error or None."""
        if not self.widget.grab().save(path, "PNG"):
            return f"Could not write {path}"
        return None

    def save_csv(self, path: str) -> str | None:
        rows = self.csv_rows()
        try:
            with open(path, "w", newline="", encoding="utf-8") as f:
                csv.writer(f).writerows(rows)
        except OSError as e:
            return f"Could not write {path}: {e.strerror or e}"
        return None

    def _ask(self, file_filter: str, ext: str, save: Callable[[str], str | None]) -> None:
        start = os.path.join(os.path.expanduser("~"), slug(self.name) + ext)
        path, _ = QFileDialog.getSaveFileName(self.widget, f"Export {self.name}", start, file_filter)
        if path:
            error = save(path if path.endswith(ext) else path + ext)
            if error:
                QMessageBox.warning(self.widget, "Export", error)
