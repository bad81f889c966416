"""The Attention panel end to end: real engine thread, real offline weights, real mouse events."""
from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage

from engine.data import fashion_mnist
from tests.gui.conftest import sample


def choose_model(panel, qtbot, model_id: str) -> None:
    combo = panel.model_picker.combo
    qtbot.waitUntil(lambda: combo.findData(model_id) >= 0 and panel.model_picker.is_ready(model_id), timeout=30_000)
    combo.setCurrentIndex(combo.findData(model_id))
    assert panel.model_id() == model_id


@pytest.mark.skipif(not fashion_mnist.is_available(), reason="needs the real Fashion-MNIST: sudo apt install "
                    "dataset-fashion-mnist, or the Train panel's Get Fashion-MNIST")
def test_click_a_patch_on_the_builtin_vit(window, qtbot, tmp_path):
    panel = window.panels["attention"]
    window.tabs.setCurrentWidget(panel)
    choose_model(panel, qtbot, "fmnist-vit-tiny")
    panel.method_combo.setCurrentIndex(panel.method_combo.findData("raw"))
    panel.all_heads.setChecked(False)
    qtbot.waitUntil(lambda: panel.fmnist_strip is not None, timeout=30_000)
    assert panel.fmnist_strip.isVisible() and not panel.photo_strip.isVisible()  # a 28-px grayscale model
    boot = panel.fmnist_strip.paths()[9]  # the first ankle boot of the test split
    qtbot.mouseClick(panel.fmnist_strip._buttons[boot], Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.result is not None and panel.result.path == boot, timeout=60_000)
    res = panel.result
    assert res.top[0].label == "Ankle boot"
    assert res.grid == (4, 4) and res.query is None
    assert panel.token_label.text().startswith("28×28×1 → 16 patches of 7×7×1=49")
    assert panel.layer_combo.count() == 1 + 6 and panel.head_combo.count() == 1 + 4
    cls_map = res.maps[0].values.copy()

    # hover: the patch under the mouse is highlighted and named
    view = panel.view
    target = 1 * 4 + 2  # row 2, column 3
    centre = view.patch_centre(target).toPoint()
    qtbot.mouseMove(view, centre)
    qtbot.waitUntil(lambda: view.hover == target, timeout=5_000)
    assert "row 2, column 3" in panel.hover_label.text()

    # click: that token's own attention row comes back from the engine
    qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=centre)
    qtbot.waitUntil(lambda: panel.result.query == target, timeout=30_000)
    assert view.selected == target
    assert panel.query_label.text() == "patch row 2, column 3"
    assert not (panel.result.maps[0].values == cls_map).all()

    # one head, then all heads side by side, still for the clicked patch
    panel.head_combo.setCurrentIndex(2)  # head 2
    qtbot.waitUntil(lambda: panel.result.head == 1, timeout=30_000)
    panel.all_heads.setChecked(True)
    qtbot.waitUntil(lambda: len(panel.result.maps) == 4, timeout=30_000)
    assert panel.stack.currentWidget() is panel.heads and len(panel.heads.views) == 4
    assert panel.result.query == target

    # a click in a CAM method switches back to raw attention for that patch
    panel.all_heads.setChecked(False)
    panel.method_combo.setCurrentIndex(panel.method_combo.findData("gradcam"))
    qtbot.waitUntil(lambda: panel.result.method == "gradcam", timeout=30_000)
    assert panel.result.class_label == "Ankle boot" and panel.result.layer == 5
    qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=view.patch_centre(0).toPoint())
    qtbot.waitUntil(lambda: panel.result.method == "raw" and panel.result.query == 0, timeout=30_000)

    out = panel.export_png(str(tmp_path / "map.png"))
    img = QImage(out)
    assert (img.width(), img.height()) == (224, 224)


def test_grad_cam_on_efficientnet_lite0_photo(window, qtbot):
    panel = window.panels["attention"]
    window.tabs.setCurrentWidget(panel)
    choose_model(panel, qtbot, "efficientnet-lite0")
    assert panel.photo_strip.isVisible()
    panel.show_path(sample("coffee.png"))
    qtbot.waitUntil(lambda: panel.result is not None and panel.result.path.endswith("coffee.png"), timeout=60_000)
    # a CNN has no attention: the panel offers only the CAMs and picks Grad-CAM
    assert panel.method() == "gradcam"
    items = panel.method_combo.model()
    enabled = {panel.method_combo.itemData(i) for i in range(panel.method_combo.count()) if items.item(i).isEnabled()}
    assert enabled == {"gradcam", "eigencam"}
    res = panel.result
    assert res.class_label == "espresso" and res.grid == (7, 7)
    assert panel.class_combo.currentText().startswith("espresso")
    assert not panel.view.clickable and panel.error_label.isHidden()
    # another class from the top-k: a new map for it
    panel.class_combo.setCurrentIndex(1)
    panel.class_combo.activated.emit(1)
    qtbot.waitUntil(lambda: panel.result.class_index == res.top[1].index, timeout=30_000)
    # display settings are drawing only and persist
    panel.opacity_slider.setValue(35)
    panel.cmap_combo.setCurrentIndex(panel.cmap_combo.findData("jet"))
    assert panel.view.opacity == 0.35 and panel.view.cmap == "jet"
    assert panel.settings.value("attention/cmap") == "jet"
    grab = panel.view.grab()
    assert not grab.isNull() and grab.width() > 100
