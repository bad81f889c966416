"""Live training curves with pyqtgraph: loss, metric, learning rate, throughput, and for
MoCo the positive/negative similarity histograms and queue fill (InstDisc: bank fill); for
pseudo-labelling the per-class counts of the pseudo-labels and their accuracy and coverage.

Each run shown is a series with its own colour; its curves are created once and updated
with setData from bounded buffers on a timer (4 Hz), never rebuilt per record. Records
arrive from the engine (live) or from a run's metrics.jsonl (history, comparisons). Hovering
reads the nearest point; right-click resets the zoom or exports PNG / every buffer as CSV.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QVBoxLayout, QWidget

from gui.widgets import plot_style as ps
from gui.widgets.plot_style import COLOURS, TITLE_SIZE

MAX_POINTS = 5000
#: Eval metrics plotted, in order of preference; the first present names the metric plot.
METRICS = (("accuracy", "test accuracy"), ("knn_acc", "kNN accuracy"), ("zero_shot_accuracy", "zero-shot accuracy"),
           ("recall_at_1", "recall@1"), ("masked_mse", "hidden-patch MSE"))
HIST_BINS = 40
MIN_PLOT_HEIGHT = 170  # px per row of plots: room for a title, a few y ticks and the step axis
PERCENT_METRICS = {"accuracy", "knn_acc", "zero_shot_accuracy", "recall_at_1"}
SSL_TITLE = "Instance accuracy · <span style='font-style:italic'>queue / bank fill (dotted)</span>"
SIMILARITY_TITLE = ("Contrastive: <span style='color:#2ca02c'>positives</span> vs "
                    "<span style='color:#d62728'>negatives</span>, cosine")
#: Pseudo-labelling's per-round lines (eval records), drawn in the bottom-right plot.
PSEUDO_LINES = ("pseudo_label_accuracy", "pseudo_label_coverage")


class Series:
    """One run's buffers and curves."""

    def __init__(self, name: str, colour: str):
        self.name, self.colour = name, colour
        self.train: dict[str, list[tuple[float, float]]] = {}
        self.eval: dict[str, list[tuple[float, float]]] = {}
        self.curves: dict[str, pg.PlotDataItem] = {}
        self.dirty = True

    def add_train(self, step: float, values: dict) -> None:
        for key, value in values.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(value):
                buf = self.train.setdefault(key, [])
                if buf and step <= buf[-1][0]:  # a resumed run re-sends from its checkpoint
                    while buf and buf[-1][0] >= step:
                        buf.pop()
                buf.append((step, float(value)))
                del buf[:-MAX_POINTS]
        self.dirty = True

    def add_eval(self, step: float, values: dict) -> None:
        for key, value in values.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(value):
                buf = self.eval.setdefault(key, [])
                buf[:] = [p for p in buf if p[0] < step]
                buf.append((step, float(value)))
        self.dirty = True


class LivePlots(QWidget):
    """A 3×2 grid of plots; series are added per run (live or from history)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        ps.configure()
        self.view = pg.GraphicsLayoutWidget()
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.view)
        self.plots: dict[str, pg.PlotItem] = {}
        self.hovers: dict[str, ps.Hover] = {}
        self.pseudo_names: list[str] = []
        self.clip_matrix = np.zeros((0, 0))
        for row, pair in enumerate((("loss", "metric"), ("lr", "throughput"), ("similarity", "ssl"))):
            for col, key in enumerate(pair):
                p = self.view.addPlot(row=row, col=col)
                ps.style_plot(p)
                self.plots[key] = p
                self.hovers[key] = ps.Hover(self.view, p, lambda x, y, k=key: self.text_at(k, x, y))
        for key, title in (("loss", "training loss"), ("metric", "held-out metric"), ("lr", "learning rate"),
                           ("throughput", "samples / s"), ("similarity", SIMILARITY_TITLE), ("ssl", SSL_TITLE)):
            self.set_title(key, title)
        for key in ("loss", "metric", "lr", "throughput", "ssl"):
            self.plots[key].setLabel("bottom", "step")
        self.plots["similarity"].setLabel("bottom", "cosine similarity")
        self.plots["ssl"].setYRange(0, 1.02)
        # Run names, shown when curves of several runs are overlaid
        self.legend = self.plots["loss"].addLegend(offset=(-5, 5), brush=(255, 255, 255, 200), labelTextSize="8pt")
        self.series: dict[str, Series] = {}
        self._colours: dict[str, str] = {}
        self.metric_key: str | None = None
        self.baseline = pg.InfiniteLine(angle=0, pen=pg.mkPen("#999", style=pg.QtCore.Qt.PenStyle.DashLine),
                                        label="random init", labelOpts={"position": 0.1, "color": "#777"})
        self.baseline.hide()
        self.plots["metric"].addItem(self.baseline)
        self.hist_pos = pg.PlotDataItem(stepMode="center", fillLevel=0, pen=pg.mkPen("#2ca02c", width=1.5),
                                        brush=(44, 160, 44, 80), name="positives")
        self.hist_neg = pg.PlotDataItem(stepMode="center", fillLevel=0, pen=pg.mkPen("#d62728", width=1.5),
                                        brush=(214, 39, 40, 60), name="negatives")
        self.plots["similarity"].addItem(self.hist_neg)
        self.plots["similarity"].addItem(self.hist_pos)
        self.hist_edges = np.linspace(-1, 1, HIST_BINS + 1)
        # CLIP/LiT: the batch's image-text similarity matrix as a heat map (row i: image i over texts)
        self.sim_image = pg.ImageItem(axisOrder="row-major")
        self.sim_image.setLookupTable(pg.colormap.get("inferno").getLookupTable(nPts=256))
        self.sim_image.hide()
        self.plots["similarity"].addItem(self.sim_image)
        # Pseudo-labelling: how many pseudo-labels each class has (bars)
        self.pseudo_bars = pg.BarGraphItem(x=[], height=[], width=0.8, brush=ps.ACCENT, pen=pg.mkPen(None))
        self.pseudo_bars.hide()
        self.plots["similarity"].addItem(self.pseudo_bars)
        self._ssl_rows(False)
        self.export = ps.ExportMenu(self, self.view, "training curves", self.csv_rows, reset=self.reset_zoom)
        self.timer = QTimer(self)
        self.timer.setInterval(250)
        self.timer.timeout.connect(self.redraw)
        self.timer.start()

    def set_title(self, key: str, text: str) -> None:
        """A plot's title that never widens its column: a long one is cut at the plot's edge
        instead of pushing the next plot out of view."""
        plot = self.plots[key]
        plot.setTitle(text, size=TITLE_SIZE)
        plot.titleLabel.setMinimumWidth(0)
        plot.titleLabel.setMaximumWidth(16_777_215)

    def _ssl_rows(self, show: bool) -> None:
        for key in ("similarity", "ssl"):
            self.plots[key].setVisible(show)
        self.view.ci.layout.setRowStretchFactor(2, 1 if show else 0)
        self.view.setMinimumHeight((3 if show else 2) * MIN_PLOT_HEIGHT)

    # ------------------------------------------------------------------ series
    def clear(self) -> None:
        for name in list(self.series):
            self.remove(name)
        self._colours.clear()
        self.metric_key = None
        self.baseline.hide()
        self.hist_pos.setData([], [])
        self.hist_neg.setData([], [])
        self._moco_view()
        self._ssl_rows(False)

    def _moco_view(self) -> None:
        """The similarity plot back to MoCo's histograms (after a CLIP run drew its matrix)."""
        p = self.plots["similarity"]
        self.sim_image.hide()
        self.pseudo_bars.hide()
        p.getAxis("bottom").setTicks(None)
        self.set_title("ssl", SSL_TITLE)
        p.enableAutoRange()
        p.setAspectLocked(False)
        p.invertY(False)
        self.set_title("similarity", SIMILARITY_TITLE)
        p.setLabel("bottom", "cosine similarity")
        p.setLabel("left", "")

    def ensure(self, name: str) -> Series:
        if name not in self.series:
            used = [x.colour for x in self.series.values()]
            free = [c for c in COLOURS if c not in used] or COLOURS
            self.series[name] = Series(name, self._colours.get(name) or free[0])
            self._colours[name] = self.series[name].colour  # a run keeps its colour when it is reloaded
        return self.series[name]

    def remove(self, name: str) -> None:
        s = self.series.pop(name, None)
        if s is None:
            return
        for key, c in s.curves.items():
            plot = self.plots[key.split(":")[0]]
            plot.removeItem(c)
        self.legend.removeItem(name)

    def add_record(self, name: str, record: dict) -> None:
        """One record from the loop (kind "train" or "eval"), possibly with a live view."""
        s = self.ensure(name)
        step = float(record.get("step", 0))
        if record.get("kind") == "train":
            s.add_train(step, {k: v for k, v in record.items() if k not in ("step", "epoch", "total_steps", "eta_s")})
        elif record.get("kind") == "eval":
            s.add_eval(step, {k: v for k, v in record.items() if k not in ("step", "epoch")})
            base = record.get("knn_acc_random_init")
            if isinstance(base, (int, float)):
                self.baseline.setValue(base)
                self.baseline.show()
        matrix = record.get("similarity")
        if isinstance(matrix, np.ndarray) and matrix.ndim == 2:
            self.show_similarity_matrix(matrix)
        sims = record.get("similarities")
        if isinstance(sims, dict):
            if self.sim_image.isVisible() or self.pseudo_bars.isVisible():
                self._moco_view()
            self.hist_pos.setData(self.hist_edges, np.asarray(sims.get("positive", []), float))
            self.hist_neg.setData(self.hist_edges, np.asarray(sims.get("negative", []), float))
            self._ssl_rows(True)
        if "queue_fill" in record or "pos_sim" in record:
            self._ssl_rows(True)
        counts = record.get("pseudo_label_counts")
        if counts is not None:
            names = record.get("pseudo_label_classes") or list(record.get("per_class") or {})
            self.show_pseudo_counts(np.asarray(counts, float), [str(n) for n in names])

    def show_pseudo_counts(self, counts: np.ndarray, classes: list[str]) -> None:
        """Pseudo-labelling: the per-class counts of the pseudo-labels (one easy class taking
        most of them is the classic failure), beside their accuracy and coverage per round."""
        p = self.plots["similarity"]
        self.hist_pos.setData([], [])
        self.hist_neg.setData([], [])
        self.sim_image.hide()
        x = np.arange(len(counts))
        self.pseudo_bars.setOpts(x=x, height=counts, width=0.8)
        self.pseudo_bars.show()
        names = classes if len(classes) == len(counts) else [str(i) for i in x]
        self.pseudo_names = names  # whole, for hovering
        p.getAxis("bottom").setTicks([[(i, n[:3]) for i, n in enumerate(names)]])  # ten names fit at 3 letters
        self.set_title("similarity", f"Pseudo-labels per class ({int(counts.sum()):,} in all)")
        p.setLabel("bottom", "")
        p.enableAutoRange()
        self.set_title("ssl", "Pseudo-label accuracy · <span style='font-style:italic'>pool coverage (dotted)"
                              "</span>")
        self._ssl_rows(True)

    def show_similarity_matrix(self, matrix: np.ndarray) -> None:
        """CLIP's softmax over the batch's texts for each image: learning lights up the diagonal."""
        p = self.plots["similarity"]
        self.hist_pos.setData([], [])
        self.hist_neg.setData([], [])
        self.sim_image.setImage(np.asarray(matrix, np.float32), levels=(0.0, max(1e-6, float(matrix.max()))))
        self.sim_image.show()
        rows, cols = matrix.shape
        self.sim_image.setRect(0, 0, cols, rows)  # one unit per text / image
        p.disableAutoRange()
        p.setRange(xRange=(0, cols), yRange=(0, rows), padding=0.02)
        self.set_title("similarity", "CLIP batch: image i vs text j (the diagonal lights up)")
        p.setLabel("bottom", "text j")
        p.setLabel("left", "image i")
        p.invertY(True)
        p.setAspectLocked(True)
        self._ssl_rows(True)
        self.plots["ssl"].setVisible(False)
        self.clip_matrix = matrix

    def load_history(self, name: str, history: dict) -> None:
        """Replace a series with a run's full history (what metrics.jsonl holds)."""
        self.remove(name)
        for r in history.get("train", []):
            self.add_record(name, {**r, "kind": "train"})
        for r in history.get("eval", []):
            self.add_record(name, {**r, "kind": "eval"})

    # ------------------------------------------------------------------ drawing
    def _curve(self, s: Series, plot_key: str, field: str, style=None) -> pg.PlotDataItem:
        key = f"{plot_key}:{field}"
        if key not in s.curves:
            pen = pg.mkPen(s.colour, width=2, style=style or pg.QtCore.Qt.PenStyle.SolidLine)
            named = plot_key == "loss"
            # held-out metrics come a few times a run: large dots, so one evaluation is not a speck
            curve = self.plots[plot_key].plot([], [], pen=pen, name=s.name if named else None,
                                              symbol="o" if plot_key == "metric" else None,
                                              symbolSize=9 if plot_key == "metric" else 6,
                                              symbolBrush=s.colour, symbolPen=None)
            s.curves[key] = curve
        return s.curves[key]

    def _metric_title(self, key: str) -> str:
        """The metric's name and, for one run, its latest value: readable even from a single point."""
        title = dict(METRICS)[key]
        if len(self.series) != 1:
            return title
        points = next(iter(self.series.values())).eval.get(key)
        if not points:
            return title
        step, value = points[-1]
        shown = f"{100 * value:.1f}%" if key in PERCENT_METRICS else f"{value:.4g}"
        return f"{title}: {shown} at step {step:,.0f}"

    def _metric_key(self) -> str | None:
        present = set()
        for s in self.series.values():
            present |= set(s.eval)
        for key, title in METRICS:
            if key in present:
                return key
        return None

    def redraw(self) -> None:
        if not any(s.dirty for s in self.series.values()):
            return
        self.legend.setVisible(len(self.series) > 1)
        key = self._metric_key()
        if key is not None:
            self.metric_key = key
            self.set_title("metric", self._metric_title(key))
        for s in self.series.values():
            if not s.dirty:
                continue
            s.dirty = False
            for plot_key, field in (("loss", "loss"), ("lr", "lr"), ("throughput", "samples_per_s")):
                if field in s.train:
                    xs, ys = zip(*s.train[field])
                    curve = self._curve(s, plot_key, field)
                    curve.setData(np.asarray(xs), np.asarray(ys))
                    curve.setSymbol("o" if len(xs) < 3 else None)  # a short run's few points stay visible
            if self.metric_key and self.metric_key in s.eval:
                xs, ys = zip(*s.eval[self.metric_key])
                self._curve(s, "metric", self.metric_key).setData(np.asarray(xs), np.asarray(ys))
            dot = pg.QtCore.Qt.PenStyle.DotLine
            for field, style in (("acc", pg.QtCore.Qt.PenStyle.SolidLine), ("queue_fill", dot), ("bank_fill", dot)):
                if field in s.train and ("queue_fill" in s.train or "pos_sim" in s.train):
                    xs, ys = zip(*s.train[field])
                    self._curve(s, "ssl", field, style).setData(np.asarray(xs), np.asarray(ys))
            for field, style in zip(PSEUDO_LINES, (pg.QtCore.Qt.PenStyle.SolidLine, dot)):
                if field in s.eval:
                    xs, ys = zip(*s.eval[field])
                    curve = self._curve(s, "ssl", field, style)
                    curve.setData(np.asarray(xs), np.asarray(ys))
                    curve.setSymbol("o")  # one point per round

    # ------------------------------------------------------------------ reading and export
    def text_at(self, plot_key: str, x: float, y: float) -> str | None:
        """What the cursor points at in one plot: a curve's nearest point (run, step, value), a
        pseudo-label bar or a CLIP matrix cell."""
        if plot_key == "similarity" and self.pseudo_bars.isVisible():
            counts, i = self.pseudo_bars.opts["height"], int(round(x))
            return f"{self.pseudo_names[i]}: {int(counts[i]):,} pseudo-labels" if 0 <= i < len(counts) else None
        if plot_key == "similarity" and self.sim_image.isVisible():
            rows, cols = self.clip_matrix.shape
            i, j = int(np.floor(y)), int(np.floor(x))
            return f"image {i} · text {j}: {self.clip_matrix[i, j]:.3f}" if 0 <= i < rows and 0 <= j < cols else None
        hit = ps.nearest_point(self.plots[plot_key], x, y)
        if hit is None:
            return None
        item, px, py = hit
        if item is self.hist_pos or item is self.hist_neg:
            return f"{item.name()}: cosine {px:.2f} · {py:,.0f}"
        for s in self.series.values():
            for key, curve in s.curves.items():
                if curve is item:
                    field = key.split(":", 1)[1]
                    return f"{s.name} · step {px:,.0f} · {field} {ps.format_value(py)}"
        return None

    def reset_zoom(self) -> None:
        for plot in self.plots.values():
            plot.enableAutoRange()
        if self.sim_image.isVisible():
            rows, cols = self.clip_matrix.shape
            self.plots["similarity"].setRange(xRange=(0, cols), yRange=(0, rows), padding=0.02)

    def csv_rows(self) -> list[list]:
        """Every buffered point of every run shown: run, kind, field, step, value."""
        rows = [["run", "kind", "field", "step", "value"]]
        for s in self.series.values():
            for kind, buffers in (("train", s.train), ("eval", s.eval)):
                for field, points in buffers.items():
                    rows += [[s.name, kind, field, f"{step:g}", f"{value:.6g}"] for step, value in points]
        return rows

    # ------------------------------------------------------------------ for tests and the panel
    def points(self, name: str, field: str = "loss") -> list[tuple[float, float]]:
        s = self.series.get(name)
        if s is None:
            return []
        return list(s.train.get(field) or s.eval.get(field) or [])

    def drawn_points(self, name: str, plot_key: str = "loss", field: str = "loss") -> int:
        """How many points the curve on screen holds (after the last redraw)."""
        s = self.series.get(name)
        curve = s.curves.get(f"{plot_key}:{field}") if s else None
        if curve is None or curve.xData is None:
            return 0
        return len(curve.xData)
