"""The MAE panel end to end, offline: the built-in tiny MAE, real Fashion-MNIST images, the real
engine thread, and a real (tiny) pretraining run started from the panel."""
from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt

from engine.data import fashion_mnist

pytestmark = pytest.mark.skipif(not fashion_mnist.is_available(), reason="needs the real Fashion-MNIST: sudo apt install dataset-fashion-mnist, or the Train panel's Get Fashion-MNIST")


def ready_panel(window, qtbot):
    """The MAE panel once it has shown its first reconstruction (a Fashion-MNIST sample)."""
    panel = window.panels["mae"]
    window.tabs.setCurrentWidget(panel)
    qtbot.waitUntil(lambda: panel.results_shown >= 1, timeout=60_000)
    return panel


def image_of(view) -> np.ndarray:
    img = view.pixmap().toImage()
    return np.array([[img.pixelColor(x, y).red() for x in range(img.width())] for y in range(img.height())])


def test_slider_moves_views_update(window, qtbot):
    panel = ready_panel(window, qtbot)
    assert panel.model_id() == "fmnist-mae-tiny"
    assert panel.current_path.endswith(".png") and "fashion-mnist" in panel.current_path
    assert panel.samples.isVisible() and any("chelsea" in p for p in panel.samples.paths())
    assert panel.result.views.len_keep == 12  # 75% of 49
    before = image_of(panel.views["masked"])
    shown = panel.results_shown
    for value in (70, 60, 55, 50):  # a quick drag: debounced into one request
        panel.ratio_slider.setValue(value)
    qtbot.waitUntil(lambda: panel.result.views.len_keep == 25, timeout=30_000)  # round(0.5 * 49)
    assert panel.results_shown == shown + 1
    assert not np.array_equal(image_of(panel.views["masked"]), before)
    assert "25 of 49" in panel.ratio_label.text() and "25</b> of 49" in panel.metrics.text()
    assert panel.strip.len_keep == 25
    assert sorted(panel.strip.kept_patches()) == sorted(np.flatnonzero(~panel.result.views.hidden).tolist())
    assert panel.error_label.isHidden()
    # the same seed gives the same picture; another seed another mask
    panel.seed.setValue(1)
    qtbot.waitUntil(lambda: panel.result.seed == 1, timeout=30_000)
    other = panel.result.views.hidden.copy()
    panel.seed.setValue(0)
    qtbot.waitUntil(lambda: panel.result.seed == 0, timeout=30_000)
    assert not np.array_equal(other, panel.result.views.hidden)
    panel.seed.setValue(1)
    qtbot.waitUntil(lambda: panel.result.seed == 1, timeout=30_000)
    assert np.array_equal(other, panel.result.views.hidden)


def test_mask_modes_and_painting(window, qtbot):
    panel = ready_panel(window, qtbot)
    panel.mode.setCurrentIndex(panel.mode.findData("grid"))
    qtbot.waitUntil(lambda: panel.result.mode == "grid", timeout=30_000)
    rows, cols = np.nonzero(~panel.result.views.hidden)
    assert len(set(rows % 2)) == 1 and len(set(cols % 2)) == 1
    panel.mode.setCurrentIndex(panel.mode.findData("painted"))
    qtbot.waitUntil(lambda: panel.result.mode == "painted", timeout=30_000)
    assert not panel.ratio_slider.isEnabled() and panel.views["original"].paintable
    start = list(panel.painted)
    view = panel.views["original"]
    rect = view.patch_rect(0)  # drag across the top row, starting on patch 0
    y = int(rect.center().y())
    first_visible = start[0]
    qtbot.mousePress(view, Qt.MouseButton.LeftButton, pos=QPoint(int(rect.center().x()), y))
    for col in range(1, 4):
        qtbot.mouseMove(view, QPoint(int(view.patch_rect(col).center().x()), y))
    qtbot.mouseRelease(view, Qt.MouseButton.LeftButton, pos=QPoint(int(view.patch_rect(3).center().x()), y))
    expected = list(start)
    expected[0:4] = [not first_visible] * 4
    if not any(expected):
        pytest.skip("the drag would hide every patch")
    assert panel.painted == expected
    qtbot.waitUntil(lambda: (~panel.result.views.hidden).reshape(-1).tolist() == expected, timeout=30_000)
    assert panel.result.views.len_keep == sum(expected)


def test_pretrain_button_refreshes_a_fixed_image_and_stops(window, qtbot):
    panel = ready_panel(window, qtbot)
    box = panel.pretrain
    box.start({"epochs": 1, "train_limit": 2048, "batch_size": 32, "eval_images": 64, "log_every": 2,
               "preview_every": 2})
    assert panel.lower_tabs.currentWidget() is box and not box.start_button.isEnabled()
    qtbot.waitUntil(lambda: box.previews_seen >= 2, timeout=60_000)
    assert box.previews["reconstruction"].pixmap() is not None and len(box.curve.points) >= 2
    assert "Live: held-out image" in box.preview_title.text()
    qtbot.mouseClick(box.stop_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not box.running(), timeout=30_000)
    assert "Stopped" in box.status.text() and box.start_button.isEnabled() and box.use_button.isVisible()
    from engine.paths import runs_dir
    from engine.runs.checkpoint import RunFolder

    card = RunFolder(runs_dir() / box.run_name).read_card()
    assert card["status"] == "stopped" and card["recipe"] == "mae"
    # the stopped run is an MAE in the picker; choosing it reconstructs with it
    qtbot.waitUntil(lambda: panel.use_model(f"run-{box.run_name}"), timeout=30_000)
    qtbot.waitUntil(lambda: panel.result is not None and panel.result.model_id == f"run-{box.run_name}",
                    timeout=60_000)
