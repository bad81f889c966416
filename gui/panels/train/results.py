"""A classifier's end-of-run picture (pyqtgraph): the confusion matrix, counts in its cells and
each true class's share of predictions as colour (the diagonal blue, mistakes red), beside
per-class accuracy bars that follow the matrix's rows when it is zoomed. Hovering reads a cell
or a bar; right-click exports PNG or the counts as CSV."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import QLabel, QSizePolicy, QStackedLayout, QWidget

from gui.widgets import plot_style as ps

MAX_CELL_TEXT = 30  # classes up to which every cell gets a count label (30² text items stay cheap)
MIN_CELL_PX = 16  # cells smaller than this on screen hide their counts
BAR_H = 0.7
EMPTY = "A classifier's confusion matrix and per-class accuracy appear here when its run ends."


class ResultsView(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.confusion: np.ndarray | None = None
        self.classes: list[str] = []
        self.title = ""
        self.cell_texts: list[pg.TextItem] = []
        self.setMinimumSize(320, 240)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        ps.configure()
        self.view = pg.GraphicsLayoutWidget()
        self.matrix_plot = self.view.addPlot(row=0, col=0)
        self.bars_plot = self.view.addPlot(row=0, col=1)
        self.view.ci.layout.setColumnStretchFactor(0, 3)
        self.view.ci.layout.setColumnStretchFactor(1, 2)
        self._build_matrix()
        self._build_bars()
        self.empty = QLabel(EMPTY, alignment=Qt.AlignmentFlag.AlignCenter, wordWrap=True)
        self.stack = QStackedLayout(self)
        self.stack.addWidget(self.empty)
        self.stack.addWidget(self.view)
        self.matrix_hover = ps.Hover(self.view, self.matrix_plot, self._cell_text)
        self.bars_hover = ps.Hover(self.view, self.bars_plot, self._bar_text)
        self.export = ps.ExportMenu(self, self.view, "confusion matrix", self.csv_rows, reset=self._reset_zoom)

    def _build_matrix(self) -> None:
        p = self.matrix_plot
        ps.style_plot(p, grid=False, bottom="predicted class", left="true class")
        p.vb.invertY(True)
        self.image = pg.ImageItem(axisOrder="row-major")
        p.addItem(self.image)
        p.vb.sigRangeChanged.connect(self._fit_labels)
        p.vb.sigResized.connect(self._fit_labels)

    def _build_bars(self) -> None:
        p = self.bars_plot
        ps.style_plot(p, title="per-class accuracy", bottom="correct", grid=False)
        p.vb.invertY(True)  # row 0 at the top, as in the matrix
        p.setYLink(self.matrix_plot)  # a bar stays beside its matrix row when the matrix zooms
        p.setMouseEnabled(x=False, y=False)
        p.hideAxis("left")
        p.showAxis("right")
        p.getAxis("right").setStyle(tickLength=0)
        p.getAxis("bottom").setTicks([[(v, f"{v:.0%}") for v in (0, 0.25, 0.5, 0.75, 1)]])
        p.setXRange(0, 1, padding=0.02)
        self.track = pg.BarGraphItem(x0=[], y=[], height=BAR_H, width=[], brush=ps.TRACK, pen=pg.mkPen(None))
        self.bars = pg.BarGraphItem(x0=[], y=[], height=BAR_H, width=[], brush=ps.ACCENT, pen=pg.mkPen(None))
        p.addItem(self.track)
        p.addItem(self.bars)

    # ------------------------------------------------------------------ data
    def set_result(self, confusion, classes, title: str = "") -> None:
        self.confusion = None if confusion is None else np.asarray(confusion, dtype=np.int64)
        n = 0 if self.confusion is None else len(self.confusion)
        self.classes = list(classes or [str(i) for i in range(n)])[:n]
        self.classes += [str(i) for i in range(len(self.classes), n)]
        self.title = title
        if not n:
            self.stack.setCurrentWidget(self.empty)
            return
        self.stack.setCurrentWidget(self.view)
        self._draw_matrix()
        self._draw_bars()
        self._reset_zoom()

    def shares(self) -> np.ndarray:
        """Each true class's predictions as shares of that class (rows sum to 1)."""
        return self.confusion / self.confusion.sum(1, keepdims=True).clip(min=1)

    def accuracies(self) -> np.ndarray:
        return self.confusion.diagonal() / self.confusion.sum(1).clip(min=1)

    def _draw_matrix(self) -> None:
        cm, n = self.confusion, len(self.confusion)
        share = self.shares()
        diagonal = np.eye(n, dtype=bool)
        rgba = np.where(diagonal[..., None], ps.tint(ps.CORRECT_RGB, share), ps.tint(ps.WRONG_RGB, share))
        self.image.setImage(rgba, levels=None, autoLevels=False)
        self.image.setRect(-0.5, -0.5, n, n)  # cell (i, j) centred on (j, i)
        self.matrix_plot.setTitle(self.title or "confusion matrix", size=ps.TITLE_SIZE)
        self.matrix_plot.titleLabel.setMinimumWidth(0)  # a long run name is cut, never widens the column
        for item in self.cell_texts:
            self.matrix_plot.removeItem(item)
        self.cell_texts = []
        if n <= MAX_CELL_TEXT:
            for i, j in zip(*np.nonzero(cm)):
                colour = "w" if share[i, j] > 0.6 else ps.FOREGROUND
                text = pg.TextItem(str(int(cm[i, j])), color=colour, anchor=(0.5, 0.5))
                text.setPos(j, i)
                self.matrix_plot.addItem(text)
                self.cell_texts.append(text)
        self.matrix_plot.getAxis("left").setTicks([list(enumerate(self.classes))])

    def _draw_bars(self) -> None:
        n, acc = len(self.confusion), self.accuracies()
        ys = np.arange(n)
        self.track.setOpts(x0=np.zeros(n), y=ys, width=np.ones(n), height=BAR_H)
        self.bars.setOpts(x0=np.zeros(n), y=ys, width=acc, height=BAR_H)
        self.bars_plot.getAxis("right").setTicks([[(i, f"{100 * a:.0f}%") for i, a in enumerate(acc)]])

    def _reset_zoom(self) -> None:
        if self.confusion is not None:
            n = len(self.confusion)
            self.matrix_plot.setRange(xRange=(-0.5, n - 0.5), yRange=(-0.5, n - 0.5), padding=0)

    def _fit_labels(self, *_) -> None:
        """Predicted-class names shortened to a cell's width (hovering gives them whole), and
        counts hidden when cells get too small to hold them."""
        if self.confusion is None:
            return
        cell_px = 1 / max(1e-9, self.matrix_plot.vb.viewPixelSize()[0])
        cell_py = 1 / max(1e-9, self.matrix_plot.vb.viewPixelSize()[1])
        fm = QFontMetrics(self.matrix_plot.getAxis("bottom").style.get("tickFont") or self.font())
        self.matrix_plot.getAxis("bottom").setTicks(
            [[(j, fm.elidedText(name, Qt.TextElideMode.ElideRight, int(cell_px) - 4)) for j, name in
              enumerate(self.classes)]])
        show = min(cell_px, cell_py) >= MIN_CELL_PX
        for text in self.cell_texts:
            text.setVisible(show)

    # ------------------------------------------------------------------ reading and export
    def _cell(self, x: float, y: float) -> tuple[int, int] | None:
        i, j = int(round(y)), int(round(x))
        n = 0 if self.confusion is None else len(self.confusion)
        return (i, j) if 0 <= i < n and 0 <= j < n else None

    def _cell_text(self, x: float, y: float) -> str | None:
        cell = self._cell(x, y)
        if cell is None:
            return None
        i, j = cell
        count, total = int(self.confusion[i, j]), int(self.confusion[i].sum())
        verdict = "correct" if i == j else "mistaken"
        return (f"true {self.classes[i]} → predicted {self.classes[j]}: {count:,} ({verdict})\n"
                f"{100 * self.shares()[i, j]:.1f}% of the {total:,} {self.classes[i]} images")

    def _bar_text(self, x: float, y: float) -> str | None:
        cell = self._cell(0, y)
        if cell is None:
            return None
        i = cell[0]
        right, total = int(self.confusion[i, i]), int(self.confusion[i].sum())
        return f"{self.classes[i]}: {100 * self.accuracies()[i]:.1f}% correct ({right:,} of {total:,})"

    def csv_rows(self) -> list[list]:
        """The counts, one row per true class, with its accuracy."""
        if self.confusion is None:
            return []
        rows = [["true \\ predicted", *self.classes, "accuracy"]]
        for i, name in enumerate(self.classes):
            rows.append([name, *(int(c) for c in self.confusion[i]), f"{self.accuracies()[i]:.6f}"])
        return rows
