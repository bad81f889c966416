"""Horizontal probability bars for top-k predictions (pyqtgraph, the look of every plot): whole
class names on the left, percentages on the right, the exact value under the cursor, and a
right-click menu that exports PNG or CSV.

pyqtgraph is not imported with this module. Classify is the first panel shown and the import
(~0.3 s) would delay its first paint. A background thread imports it once the panel is built,
and the plot (~50 ms) is made hidden on the GUI thread when that import has finished, while the
first model loads: the first result then costs what any other does.
"""
from __future__ import annotations

import importlib
import threading

from PySide6.QtCore import QSize, Qt, QTimer
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import QSizePolicy, QVBoxLayout, QWidget

ROW_H = 34
PCT_W = 64  # the percentage after each bar
LABEL_PAD = 8  # between a label and its bar
BAR_H = 0.55  # of a row
STYLE_MODULE = "gui.widgets.plot_style"


def _import_style() -> None:
    try:
        importlib.import_module(STYLE_MODULE)
    except Exception:  # noqa: BLE001 - the GUI thread imports it again when it draws, and that one reports
        pass


_prefetch: threading.Thread | None = None


def prefetch_pyqtgraph() -> threading.Thread:
    """Import pyqtgraph on a background thread (plain Python work: no Qt object is made), once."""
    global _prefetch
    if _prefetch is None:
        _prefetch = threading.Thread(target=_import_style, name="import pyqtgraph", daemon=True)
        _prefetch.start()
    return _prefetch


class TopKBars(QWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._rows: list[tuple[str, str, float]] = []  # (label, tooltip, probability)
        self._drawn: list[str] = []  # the labels as drawn (shortened where there is no room)
        self.plot_widget = None  # a pg.PlotWidget, made with the first rows
        self.hover = self.export = None
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.setVisible(False)  # until there are rows
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Minimum)
        QTimer.singleShot(0, self, self._prepare)  # after the panel is built

    def _prepare(self) -> None:
        """Make the plot once pyqtgraph's import (off the GUI thread) has finished."""
        if self.plot_widget is not None:
            return
        if prefetch_pyqtgraph().is_alive():
            QTimer.singleShot(50, self, self._prepare)
        else:
            self._build()

    def set_rows(self, rows: list[tuple[str, str, float]]) -> None:
        self._rows = list(rows)
        if self._rows and self.plot_widget is None:
            self._build()
        self.setVisible(bool(self._rows))
        self._draw()
        self.updateGeometry()

    def rows(self) -> list[tuple[str, str, float]]:
        return list(self._rows)

    # ------------------------------------------------------------------ sizes
    def _label_needed(self) -> int:
        """Width that shows every label whole."""
        fm = QFontMetrics(self.font())
        return max(fm.horizontalAdvance(label) for label, _, _ in self._rows) + LABEL_PAD + 4 if self._rows else 0

    def _label_width(self) -> int:
        """Labels get what they need, up to 60 % of the width; the bars take the rest."""
        return min(self._label_needed(), int(self.width() * 0.6))

    def elided_labels(self) -> list[str]:
        """Labels drawn shortened at the current width (for layout checks)."""
        return [label for (label, _, _), drawn in zip(self._rows, self._drawn) if drawn != label]

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(self._label_needed() + PCT_W + 200, max(1, len(self._rows)) * ROW_H + 8)

    def minimumSizeHint(self) -> QSize:  # noqa: N802
        return QSize(min(self._label_needed(), 240) + PCT_W + 80, max(1, len(self._rows)) * ROW_H + 8)

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._draw()

    # ------------------------------------------------------------------ drawing
    def _build(self) -> None:
        import pyqtgraph as pg

        from gui.widgets import plot_style as ps

        ps.configure()
        self.plot_widget = pw = pg.PlotWidget()
        pw.setMinimumSize(0, 0)
        plot = pw.getPlotItem()
        ps.style_plot(plot, grid=False)
        plot.layout.setContentsMargins(0, 2, 4, 2)
        plot.setMouseEnabled(x=False, y=False)
        plot.hideAxis("bottom")
        plot.showAxis("right")
        plot.vb.invertY(True)
        for side in ("left", "right"):
            axis = plot.getAxis(side)
            axis.setStyle(tickFont=self.font(), tickLength=0, tickTextOffset=LABEL_PAD - 2)
            axis.setPen(pg.mkPen(None))
            axis.setTextPen(ps.FOREGROUND)
        plot.getAxis("right").setWidth(PCT_W)
        self.track = pg.BarGraphItem(x0=[], y=[], height=BAR_H, width=[], brush=ps.TRACK, pen=pg.mkPen(None))
        self.bars = pg.BarGraphItem(x0=[], y=[], height=BAR_H, width=[], brush=ps.ACCENT, pen=pg.mkPen(None))
        plot.addItem(self.track)
        plot.addItem(self.bars)
        self.hover = ps.Hover(pw, plot, self._text_at)
        self.export = ps.ExportMenu(self, pw, "top-k classes", self.csv_rows)
        self.layout().addWidget(pw)

    def _draw(self) -> None:
        if self.plot_widget is None or not self._rows:
            return
        from gui.widgets import plot_style as ps

        plot = self.plot_widget.getPlotItem()
        n = len(self._rows)
        ys = list(range(n))
        probs = [max(0.0, min(1.0, float(p))) for _, _, p in self._rows]
        self.track.setOpts(x0=[0] * n, y=ys, width=[1] * n, height=BAR_H)
        self.bars.setOpts(x0=[0] * n, y=ys, width=[max(p, 0.004) for p in probs], height=BAR_H,
                          brushes=[ps.ACCENT] + [ps.ACCENT_LIGHT] * (n - 1))
        label_w = self._label_width()
        fm = QFontMetrics(self.font())
        self._drawn = [fm.elidedText(label, Qt.TextElideMode.ElideRight, label_w - LABEL_PAD)
                       for label, _, _ in self._rows]
        plot.getAxis("left").setWidth(label_w)
        plot.getAxis("left").setTicks([list(zip(ys, self._drawn))])
        plot.getAxis("right").setTicks([[(i, f"{100 * p:.1f}%") for i, (_, _, p) in enumerate(self._rows)]])
        plot.setXRange(0, 1, padding=0)
        plot.setYRange(-0.5, n - 0.5, padding=0)

    def _text_at(self, x: float, y: float) -> str | None:
        i = int(round(y))
        if not 0 <= i < len(self._rows):
            return None
        label, tip, prob = self._rows[i]
        return f"{label}: {100 * prob:.2f}%" + (f"\n{tip}" if tip and tip != label else "")

    def csv_rows(self) -> list[list]:
        return [["class", "probability", "description"]] + [[label, f"{prob:.6f}", tip]
                                                             for label, tip, prob in self._rows]
