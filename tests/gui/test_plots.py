"""The pyqtgraph plots read back what they were given: a mouse move over a bar, a matrix cell or
a curve point shows its value, the confusion matrix labels its cells with the counts, and the
export menu writes a PNG and the numbers as CSV."""
from __future__ import annotations

import csv
import subprocess
import sys

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QImage, QMouseEvent
from PySide6.QtWidgets import QApplication, QToolTip

TOP3 = [("American Staffordshire terrier", "a dog", 0.62), ("espresso", "", 0.25), ("cup", "", 0.13)]
CLASSES = ["T-shirt/top", "Trouser", "Ankle boot"]
CONFUSION = np.array([[7, 2, 1], [0, 9, 0], [3, 0, 5]])


def hover(qtbot, view, plot, x: float, y: float) -> None:
    """Move the mouse over data point (x, y) of `plot` in the GraphicsView `view`."""
    qtbot.wait(40)  # pyqtgraph drops mouse moves closer than 1/60 s apart
    pos = QPointF(view.mapFromScene(plot.vb.mapViewToScene(QPointF(x, y))))
    event = QMouseEvent(QEvent.Type.MouseMove, pos, QPointF(view.viewport().mapToGlobal(pos.toPoint())),
                        Qt.MouseButton.NoButton, Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(view.viewport(), event)


def read_csv(path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def shown(qtbot, widget, size=(700, 300)):
    qtbot.addWidget(widget)
    widget.resize(*size)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def test_topk_bars_hover_each_row_and_export(qtbot, tmp_path):
    from gui.widgets.topk_bars import TopKBars

    bars = shown(qtbot, TopKBars())
    bars.set_rows(TOP3)
    qtbot.wait(20)
    plot = bars.plot_widget.getPlotItem()
    assert [label for _, label in plot.getAxis("left")._tickLevels[0]] == [r[0] for r in TOP3]
    assert [label for _, label in plot.getAxis("right")._tickLevels[0]] == ["62.0%", "25.0%", "13.0%"]
    assert list(bars.bars.opts["width"]) == pytest.approx([0.62, 0.25, 0.13])
    hover(qtbot, bars.plot_widget, plot, 0.1, 1)
    assert bars.hover.text == "espresso: 25.00%" and QToolTip.text() == "espresso: 25.00%"
    QToolTip.hideText()  # as Qt does when the mouse leaves: the same row brings it back
    qtbot.waitUntil(lambda: not QToolTip.isVisible())
    hover(qtbot, bars.plot_widget, plot, 0.3, 1)
    assert QToolTip.isVisible() and QToolTip.text() == "espresso: 25.00%"
    hover(qtbot, bars.plot_widget, plot, 0.9, 0)  # past the end of the bar: still that row
    assert bars.hover.text == "American Staffordshire terrier: 62.00%\na dog"
    assert [a.text() for a in bars.export.menu().actions()] == ["Export PNG…", "Export CSV…"]
    assert bars.export.save_csv(str(tmp_path / "top.csv")) is None
    assert read_csv(tmp_path / "top.csv")[1:] == [[label, f"{p:.6f}", tip] for label, tip, p in TOP3]
    assert bars.export.save_png(str(tmp_path / "top.png")) is None
    assert QImage(str(tmp_path / "top.png")).width() == bars.width()
    bars.set_rows([])
    assert not bars.isVisible()


def test_topk_bars_import_pyqtgraph_off_the_first_paint_and_build_before_the_first_rows(qtbot):
    """Classify (the first panel shown) does not import pyqtgraph with its module; the bars' plot is
    made once a background import has finished, so the first result does not wait for either."""
    probe = "import sys, gui.app, gui.panels.classify.panel; print('pyqtgraph' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "False", out.stderr[-2000:]
    from gui.widgets.topk_bars import TopKBars

    bars = TopKBars()
    qtbot.addWidget(bars)
    assert bars.plot_widget is None
    qtbot.waitUntil(lambda: bars.plot_widget is not None, timeout=30_000)
    assert not bars.isVisible() and bars.rows() == []


def test_confusion_matrix_shows_counts_and_reads_cells(qtbot, tmp_path):
    from gui.panels.train.results import ResultsView

    view = shown(qtbot, ResultsView(), (900, 500))
    view.set_result(CONFUSION, CLASSES, "run · accuracy 70.0%")
    qtbot.wait(20)
    cells = {(int(t.pos().y()), int(t.pos().x())): t.toPlainText() for t in view.cell_texts}
    assert cells == {(i, j): str(c) for (i, j), c in np.ndenumerate(CONFUSION) if c}
    assert all(t.isVisible() for t in view.cell_texts)
    # the image: the diagonal blue, mistakes red, darker with a larger share of the true class
    rgba = view.image.image
    assert rgba[1, 1, 2] > rgba[1, 1, 0] and rgba[2, 0, 0] > rgba[2, 0, 2]
    assert rgba[1, 1, 0] < rgba[0, 0, 0]  # 9 of 9 is darker than 7 of 10
    hover(qtbot, view.view, view.matrix_plot, 0, 2)
    assert view.matrix_hover.text == ("true Ankle boot → predicted T-shirt/top: 3 (mistaken)\n"
                                      "37.5% of the 8 Ankle boot images")
    hover(qtbot, view.view, view.bars_plot, 0.2, 0)
    assert view.bars_hover.text == "T-shirt/top: 70.0% correct (7 of 10)"
    assert list(view.bars.opts["width"]) == pytest.approx([0.7, 1.0, 0.625])
    assert view.export.save_csv(str(tmp_path / "cm.csv")) is None
    assert read_csv(tmp_path / "cm.csv") == [["true \\ predicted", *CLASSES, "accuracy"],
                                             ["T-shirt/top", "7", "2", "1", "0.700000"],
                                             ["Trouser", "0", "9", "0", "1.000000"],
                                             ["Ankle boot", "3", "0", "5", "0.625000"]]
    assert "Reset zoom" in [a.text() for a in view.export.menu().actions()]
    view.matrix_plot.setRange(xRange=(0, 1.5), yRange=(0, 1.5), padding=0)  # zoomed in: bars follow the rows
    for row in (0, 1):
        on_screen = [plot.vb.mapViewToScene(QPointF(0, row)).y() for plot in (view.matrix_plot, view.bars_plot)]
        assert on_screen[0] == pytest.approx(on_screen[1], abs=1)
    view.set_result(None, [])
    assert view.stack.currentWidget() is view.empty


def test_mae_loss_curve_hover_reads_the_nearest_point(qtbot, tmp_path):
    from gui.panels.mae.pretrain import LossCurve

    curve = shown(qtbot, LossCurve(), (500, 200))
    for step in range(0, 200, 10):
        curve.add(step, 1.0 / (1 + step))
    curve.redraw()
    qtbot.wait(20)
    assert list(curve.line.xData) == list(range(0, 200, 10))
    hover(qtbot, curve.view, curve.plot, 50, 1.0 / 51)
    assert curve.hover.text == f"step 50 · loss {1 / 51:.4f}"
    assert curve.export.save_csv(str(tmp_path / "loss.csv")) is None
    missing = tmp_path / "no such folder" / "loss.csv"
    error = curve.export.save_csv(str(missing))
    assert error.startswith(f"Could not write {missing}") and "\n" not in error  # one line naming the file
    assert read_csv(tmp_path / "loss.csv")[:2] == [["step", "loss"], ["0", "1"]]


def test_train_curves_hover_names_the_run(qtbot):
    from gui.panels.train.plots import LivePlots

    plots = shown(qtbot, LivePlots(), (900, 500))
    for step in range(0, 101, 10):
        plots.add_record("run-a", {"kind": "train", "step": step, "loss": 2.0 - step / 100})
    plots.redraw()
    qtbot.wait(20)
    hover(qtbot, plots.view, plots.plots["loss"], 40, 1.6)
    assert plots.hovers["loss"].text == "run-a · step 40 · loss 1.6"
    rows = plots.csv_rows()
    assert rows[0] == ["run", "kind", "field", "step", "value"] and ["run-a", "train", "loss", "40", "1.6"] in rows
