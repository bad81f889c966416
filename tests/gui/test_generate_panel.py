"""The Generate panel end to end: real engine, built-in tiny unCLIP, real drops.

generate -> live previews -> the result lands in the gallery; a PNG dropped back restores
its settings; favourites and delete; Stop within a second; variations of a dropped image;
interpolation with its GIF export; a file dropped on an interpolation field fills that field.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QPointF, Qt

from engine.data import fashion_mnist
from tests.gui.conftest import sample
from tests.gui.test_classify_panel import drop_file

pytestmark = pytest.mark.skipif(not fashion_mnist.is_available(),
                                reason="needs the real Fashion-MNIST: sudo apt install dataset-fashion-mnist, or the Train panel's Get Fashion-MNIST")


@pytest.fixture
def panel(window, qtbot):
    p = window.panels["generate"]
    window.tabs.setCurrentWidget(p)
    p.settings.setValue("generate/neighbour_pool", 400)  # a small neighbour pool keeps the test quick
    qtbot.waitUntil(lambda: p.generators.get("fmnist-unclip-tiny") is not None, timeout=30_000)
    assert p.generators["fmnist-unclip-tiny"].ready
    return p


def test_generate_preview_gallery_restore_favourite_delete(panel, qtbot):
    panel.prompt.setText("a photo of a bag")
    panel.seed.setValue(4)
    panel.steps.setValue(12)
    panel.count.setValue(2)
    panel.model_combo.setCurrentIndex(panel.model_combo.findData("kandinsky-2-2"))
    assert panel.size.isEnabled() and panel.negative.isEnabled()  # Kandinsky's own inputs
    panel.model_combo.setCurrentIndex(panel.model_combo.findData("fmnist-unclip-tiny"))
    assert not panel.size.isEnabled() and panel.params()["size"] is None  # the tiny model is 28×28 only
    qtbot.mouseClick(panel.generate_button, Qt.MouseButton.LeftButton)
    assert panel.stop_button.isEnabled() and not panel.generate_button.isEnabled()
    qtbot.waitUntil(lambda: panel.job is None and panel.result is not None, timeout=120_000)
    assert panel.previews >= 2  # denoising previews arrived before the result
    assert panel.grid.count() == 2 and not panel.grid.dimmed
    rows = panel.class_bars.rows()
    assert len(rows) == 10 and max(rows, key=lambda r: r[1])[0] == "Bag"
    assert panel.neighbours.count() == 8
    qtbot.waitUntil(lambda: panel.gallery.count() == 2, timeout=10_000)
    paths = panel.gallery.paths()
    assert all(Path(p).is_file() for p in paths)

    # drag a PNG back: its settings return (n = 1 regenerates exactly that image)
    second = next(p for p in paths if p == panel.result.images[1].path)
    panel.prompt.setText("something else")
    panel.seed.setValue(99)
    panel.steps.setValue(50)
    drop_file(panel, second)
    qtbot.waitUntil(lambda: panel.prompt.text() == "a photo of a bag", timeout=10_000)
    assert panel.seed.value() == 5 and panel.steps.value() == 12 and panel.count.value() == 1

    # favourite one, filter, delete the other
    panel.gallery.item(0).setSelected(True)
    fav_path = panel.gallery.selected_paths()[0]
    panel.favourite_button.click()
    qtbot.waitUntil(lambda: panel.gallery.count() == 2 and panel.gallery.item(0).text().startswith("★"),
                    timeout=10_000)
    panel.favourites_only.setChecked(True)
    qtbot.waitUntil(lambda: panel.gallery.paths() == [fav_path], timeout=10_000)
    panel.favourites_only.setChecked(False)
    qtbot.waitUntil(lambda: panel.gallery.count() == 2, timeout=10_000)
    other = next(p for p in panel.gallery.paths() if p != fav_path)
    panel.gallery.clearSelection()
    panel.gallery.item(panel.gallery.paths().index(other)).setSelected(True)
    panel.delete_selected(confirm=False)
    qtbot.waitUntil(lambda: panel.gallery.paths() == [fav_path], timeout=10_000)
    assert not Path(other).exists()


def test_stop_within_a_second(panel, qtbot):
    panel.prompt.setText("a photo of a coat")
    panel.steps.setValue(1000)
    panel.count.setValue(4)
    panel.generate()
    qtbot.waitUntil(lambda: panel.previews >= 1, timeout=120_000)
    before = panel.gallery.count()
    t0 = time.monotonic()
    panel.stop_button.click()
    qtbot.waitUntil(lambda: panel.progress.format() == "stopped", timeout=5_000)
    assert time.monotonic() - t0 < 1.0
    assert panel.generate_button.isEnabled() and not panel.stop_button.isEnabled()
    qtbot.wait(300)
    assert panel.gallery.count() == before  # nothing half-made was saved


def test_variations_and_interpolation_with_gif_export(panel, qtbot, tmp_path):
    test = fashion_mnist.load_fashion_mnist("test")
    sandal = tmp_path / "sandal.png"
    Image.fromarray(test.images[int(np.flatnonzero(test.labels == 5)[0])]).save(sandal)
    drop_file(panel, str(sandal))  # a PNG without settings becomes the variation source
    qtbot.waitUntil(lambda: panel.variation_source == str(sandal), timeout=10_000)
    assert panel.tabs.currentIndex() == 1 and panel.variation_button.isEnabled()
    panel.steps.setValue(10)
    panel.count.setValue(2)
    panel.result = None
    panel.variation_button.click()
    qtbot.waitUntil(lambda: panel.job is None and panel.result is not None, timeout=120_000)
    assert panel.grid_title.text().startswith("Variations of sandal.png")
    assert [im.params["kind"] for im in panel.result.images] == ["variation"] * 2

    panel.interp_a.setText("a photo of a t-shirt")
    panel.interp_b.setText("a photo of a pair of trousers")
    panel.frames.setValue(3)
    panel.interp_button.click()
    qtbot.waitUntil(lambda: panel.interpolation is not None and panel.job is None, timeout=120_000)
    assert panel.strip.count() == 3 and panel.gif_button.isEnabled()
    dest = tmp_path / "export" / "strip.gif"
    panel.export_gif_to(str(dest))
    qtbot.waitUntil(dest.exists, timeout=10_000)
    with Image.open(dest) as gif:
        assert gif.n_frames == 4  # 3 forth, 1 back


def test_a_file_dropped_on_an_interpolation_field_fills_that_field(panel, qtbot):
    panel.tabs.setCurrentIndex(2)
    qtbot.waitUntil(panel.interp_b.isVisible, timeout=5_000)
    coffee = sample("coffee.png")
    drop_file(panel, coffee, QPointF(panel.interp_b.mapTo(panel, panel.interp_b.rect().center())))
    assert panel.interp_b.text() == coffee and panel.interp_a.text() != coffee
    assert panel.variation_source is None  # the field took it; it is not a variation source
