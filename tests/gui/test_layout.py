"""Every panel readable at 1280×800 and 1920×1080 (offscreen): the panel fits its tab without
scrolling, its key widgets lie fully in view, plots are tall enough for a few y ticks, and text
is not shortened where there is room.

One window for the module, its engine never started: the panels are filled with the plain data
the engine would send (results, records, runs), so the checks take seconds, not model runs.
"""
from __future__ import annotations

import os

import numpy as np
import pytest
from PySide6.QtCore import QRect
from PySide6.QtWidgets import QAbstractButton, QLabel

SIZES = ((1280, 800), (1920, 1080))
MIN_PLOT_HEIGHT = 150
#: The longest first name of an ImageNet class (resources/labels/imagenet1k.txt) among a top-5.
TOP5 = [("American Staffordshire terrier", "", 0.62), ("black and gold garden spider", "", 0.2),
        ("soft-coated wheaten terrier", "", 0.1), ("espresso", "", 0.05), ("cup", "", 0.03)]
FMNIST = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def image(side: int = 28, channels: int = 3) -> np.ndarray:
    rng = np.random.default_rng(side)
    return rng.integers(0, 255, (side, side, channels), dtype=np.uint8)


# ---------------------------------------------------------------------------- the panels' data
def fill_classify(panel) -> None:
    from gui.qimage import array_to_pixmap

    panel.image_view.set_pixmap(array_to_pixmap(image(400)))
    panel.heading.setText("Top-5 classes · coffee.png")
    panel.bars.set_rows(TOP5)


def fill_attention(panel) -> None:
    panel.heading.setText("Top-5 classes · coffee.png")
    panel.bars.set_rows(TOP5)


def fill_match(panel) -> None:
    from engine.match.jobs import CaptionMatch, MatchResult

    texts = ["a photo of a sneaker.", "a photo of a sandal.", "a photo of an ankle boot.", "a photo of a t-shirt.",
             "a black and white photo of a running shoe."]
    captions = []
    for i, text in enumerate(texts):
        words = tuple(text.rstrip(".").split())
        captions.append(CaptionMatch(text, 0.5 - 0.1 * i, 0.9 / (i + 1), 0.97 / (i + 1), words,
                                     np.zeros((len(words), 4, 4), np.float32), np.zeros((4, 4), np.float32),
                                     np.stack([image(112)] * len(words)), image(112)))
    panel.current_path = "/samples/test-00009.png"
    panel.show_result(MatchResult(panel.current_path, "fmnist-albef-tiny", image(112), (4, 4), tuple(captions),
                                  layer=1, seconds=0.5))


def fill_generate(panel) -> None:
    panel.grid.set_images([image(28)] * 8, [f"seed {i}" for i in range(8)])
    panel.class_bars.set_rows([(name, 0.1, 0.2) for name in FMNIST], highlight="Sneaker")
    panel.neighbours.set_images([image(28)] * 8, ["Ankle boot", "Sneaker", "Sneaker", "Sneaker", "Sneaker",
                                                     "Sneaker", "Ankle boot", "Sneaker"])
    panel.strip.set_images([image(28)] * 10)
    from engine.generate.gallery import GalleryItem

    panel.gallery.set_items([GalleryItem(f"/gallery/{seed}.png", {"seed": seed, "prompt": "a photo of a sneaker"},
                                         seed % 2 == 1, 0.0) for seed in (0, 7, 2**31 - 1, 123456)])


def fill_train(panel) -> None:
    from engine.runs.listing import RunInfo

    for step in range(0, 61, 4):  # a MoCo run: loss, lr, throughput, instance accuracy and queue fill
        panel.plots.add_record("moco", {"kind": "train", "step": step, "total_steps": 60, "loss": 6 - step / 20,
                                        "lr": 1e-3 * (1 - step / 60), "samples_per_s": 700 + step, "acc": step / 60,
                                        "queue_fill": min(1.0, step / 30), "pos_sim": 0.5})
    panel.plots.add_record("moco", {"kind": "eval", "step": 60, "knn_acc": 0.62, "knn_acc_random_init": 0.55})
    panel.plots.redraw()
    panel.runs.set_runs([RunInfo("moco", "/runs/moco", "moco_v2", "fashion-mnist", "running", False, 0, 60,
                                 "2026-12-04T23:00:00")])
    panel.tabs.setCurrentWidget(panel.plots)


FILL = {"classify": fill_classify, "attention": fill_attention, "match": fill_match, "generate": fill_generate,
        "train": fill_train}
#: Widgets that must be wholly in view (attribute paths on the panel).
KEY_WIDGETS = {
    "classify": ("open_button", "image_view", "bars", "samples"),
    "attention": ("open_button", "stack", "heading", "bars"),
    "search": ("choose_button", "query_edit", "search_button", "grid"),
    "mae": ("ratio_slider", "mode", "metrics", "lower_tabs", "views.original", "views.error"),
    "match": ("view", "captions_edit", "match_button", "table"),
    "generate": ("prompt", "generate_button", "progress", "grid", "class_bars", "neighbours", "tabs"),
    "train": ("kind", "start_button", "stop_button", "progress", "plots", "runs"),
}


@pytest.fixture(scope="module")
def layout_window(qapp, tmp_path_factory):
    old_home = os.environ.get("PATCHWORK_HOME")
    os.environ["PATCHWORK_HOME"] = str(tmp_path_factory.mktemp("layout-home"))
    from gui.bridge import EngineBridge
    from gui.main_window import MainWindow
    from gui.settings import open_settings

    bridge = EngineBridge("cpu")  # never started: nothing computes, requests wait in the queue
    win = MainWindow(bridge, open_settings())
    win.show()
    for panel_id, fill in FILL.items():
        fill(win.panels[panel_id])
    yield win
    win.close()
    bridge.shutdown()
    if old_home is None:
        os.environ.pop("PATCHWORK_HOME", None)
    else:
        os.environ["PATCHWORK_HOME"] = old_home


def show(app, win, panel_id: str, size: tuple[int, int]):
    panel = win.panels[panel_id]
    win.resize(*size)
    win.tabs.setCurrentWidget(panel)
    for _ in range(4):  # layouts settle over a few passes (pyqtgraph's scene too)
        app.processEvents()
    return panel


# ---------------------------------------------------------------------------- what is checked
def widget_at(panel, path: str):
    obj = panel
    for part in path.split("."):
        obj = obj[part] if isinstance(obj, dict) else getattr(obj, part)
    return obj


def outside_view(widget) -> str | None:
    """Why `widget` is not wholly visible in its window (hidden, or cut by an ancestor such as a
    scroll area's viewport), or None."""
    if not widget.isVisible():
        return "hidden"
    rect = QRect(widget.rect())
    child, parent = widget, widget.parentWidget()
    while parent is not None:
        rect.translate(child.pos())
        if not parent.rect().contains(rect):
            return f"cut by {type(parent).__name__} {parent.objectName()!r}: {rect} not in {parent.rect()}"
        if parent.isWindow():
            return None
        child, parent = parent, parent.parentWidget()
    return None


def shortened_texts(panel) -> list[str]:
    """Visible labels and buttons whose text does not fit them."""
    bad = []
    for label in panel.findChildren(QLabel):
        text = label.text()
        if not label.isVisible() or not text or label.pixmap() is not None and not label.pixmap().isNull():
            continue
        room = label.contentsRect()
        if label.wordWrap():
            if label.heightForWidth(room.width()) > label.height() + 2:
                bad.append(f"label {text[:40]!r}: needs {label.heightForWidth(room.width())} px, has {label.height()}")
        elif "<" not in text and "\n" not in text and label.fontMetrics().horizontalAdvance(text) > room.width():
            bad.append(f"label {text!r}: {label.fontMetrics().horizontalAdvance(text)} px in {room.width()}")
    for button in panel.findChildren(QAbstractButton):
        if button.isVisible() and button.text() and button.width() < button.minimumSizeHint().width():
            bad.append(f"button {button.text()!r}: {button.width()} px, needs {button.minimumSizeHint().width()}")
    return bad


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_every_panel_fits_its_tab_and_shows_its_key_widgets_whole(layout_window, qapp, size):
    problems = []
    for panel_id, paths in KEY_WIDGETS.items():
        panel = show(qapp, layout_window, panel_id, size)
        viewport = layout_window.tabs.currentWidget().parentWidget()  # the tab's scroll-area viewport
        if panel.width() > viewport.width() or panel.height() > viewport.height():
            problems.append(f"{panel_id}: needs {panel.width()}×{panel.height()} in a {viewport.width()}×"
                            f"{viewport.height()} tab (it scrolls)")
        for path in paths:
            why = outside_view(widget_at(panel, path))
            if why:
                problems.append(f"{panel_id}.{path}: {why}")
        problems += [f"{panel_id}: {p}" for p in shortened_texts(panel)]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_custom_drawn_texts_are_whole(layout_window, qapp, size):
    """Top-5 class names, the neighbours' and images' captions, the caption column and the scores."""
    panels = {pid: show(qapp, layout_window, pid, size) for pid in ("classify", "attention", "generate", "match")}
    assert panels["classify"].bars.elided_labels() == []
    show(qapp, layout_window, "attention", size)
    assert panels["attention"].bars.elided_labels() == []
    show(qapp, layout_window, "generate", size)
    assert panels["generate"].neighbours.elided_captions() == []
    assert panels["generate"].grid.elided_captions() == []
    assert panels["generate"].gallery.cut_captions() == []
    match = show(qapp, layout_window, "match", size)
    table = match.table
    for row in range(table.rowCount()):
        text = table.item(row, 0).text()
        assert table.fontMetrics().horizontalAdvance(text) + 8 <= table.columnWidth(0), text
        for col in (1, 2, 3):
            cell = table.cellWidget(row, col)
            assert cell.bar_rect().left() >= cell.text_width(), "a bar drawn over the number"
            assert cell.bar_rect().width() >= 20 and cell.fontMetrics().horizontalAdvance(cell.text()) <= cell.text_width()


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_training_plots_are_tall_enough_for_their_axes(layout_window, qapp, size):
    panel = show(qapp, layout_window, "train", size)
    plots = [p for p in panel.plots.plots.values() if p.isVisible()]
    assert len(plots) == 6  # a MoCo run shows the contrastive row too
    view = panel.plots.view
    for plot in plots:
        height = plot.geometry().height()
        assert height >= MIN_PLOT_HEIGHT, f"{plot.titleLabel.text}: {height:.0f} px"
        box = plot.mapRectToScene(plot.boundingRect())
        assert box.right() <= view.viewport().width() + 1, f"{plot.titleLabel.text}: cut at the right"
        assert plot.titleLabel.item.boundingRect().width() <= plot.geometry().width(), plot.titleLabel.text
        axis = plot.getAxis("left")
        lo, hi = plot.viewRange()[1]
        ticks = sum(len(values) for _, values in axis.tickValues(lo, hi, axis.height())[:2])
        assert ticks >= 3, f"{plot.titleLabel.text}: {ticks} y ticks"
    assert "62.0%" in panel.plots.plots["metric"].titleLabel.text  # one evaluation is read, not a speck


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_mae_views_fill_their_boxes(layout_window, qapp, size):
    """The five views are square images: a box much wider than tall wastes the width (110 px
    images in 250 px boxes before)."""
    panel = show(qapp, layout_window, "mae", size)
    for key, view in panel.views.items():
        assert view.height() >= 0.9 * view.width(), f"{key}: {view.width()}×{view.height()}"


def drawn_tick_texts(axis) -> list[tuple[str, float, float]]:
    """(text, left, right) of each tick label as pyqtgraph lays it out, in the axis's coordinates."""
    from PySide6.QtGui import QImage, QPainter

    image = QImage(8, 8, QImage.Format.Format_ARGB32)
    painter = QPainter(image)
    try:
        _, _, texts = axis.generateDrawSpecs(painter)
    finally:
        painter.end()
    return [(text, rect.left(), rect.right()) for rect, _, text in texts]


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_confusion_matrix_names_whole_and_counts_shown(layout_window, qapp, size):
    """Ten Fashion-MNIST classes: every true-class name whole inside its axis, every count in its cell."""
    panel = layout_window.panels["train"]
    confusion = np.full((10, 10), 3) + np.diag(np.arange(60, 100, 4))
    panel.results.set_result(confusion, FMNIST, "fmnist-vit · accuracy 78.0%")
    panel.tabs.setCurrentWidget(panel.results)
    try:
        show(qapp, layout_window, "train", size)
        axis = panel.results.matrix_plot.getAxis("left")
        texts = drawn_tick_texts(axis)
        assert [t for t, _, _ in texts] == FMNIST
        assert all(left >= 0 and right <= axis.width() for _, left, right in texts), (texts, axis.width())
        assert len(panel.results.cell_texts) == 100 and all(t.isVisible() for t in panel.results.cell_texts)
        assert panel.results.matrix_plot.vb.height() >= 10 * 16, "cells too small for their counts"
    finally:
        panel.tabs.setCurrentWidget(panel.plots)

