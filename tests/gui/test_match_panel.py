"""The Match panel end to end, offline: the built-in tiny ALBEF, a real Fashion-MNIST sample,
the real engine thread; captions typed by the user, a caption and a word clicked."""
from __future__ import annotations

import numpy as np
import pytest

from engine.data import fashion_mnist

pytestmark = pytest.mark.skipif(not fashion_mnist.is_available(), reason="needs the real Fashion-MNIST: sudo apt install dataset-fashion-mnist, or the Train panel's Get Fashion-MNIST")


def pixels(view) -> np.ndarray:
    img = view.pixmap().toImage()
    return np.array([[img.pixelColor(x, y).red() for x in range(0, img.width(), 7)]
                     for y in range(0, img.height(), 7)])


def test_captions_scores_and_word_maps(window, qtbot):
    panel = window.panels["match"]
    window.tabs.setCurrentWidget(panel)
    qtbot.waitUntil(lambda: panel.results_shown >= 1, timeout=60_000)  # the first sample: a T-shirt
    assert panel.model_id() == "fmnist-albef-tiny"
    assert "fashion-mnist" in panel.current_path and panel.samples.isVisible()
    assert panel.table.rowCount() == len(panel.captions()) == 6
    assert "Align before fuse" in panel.explain.text()

    panel.captions_edit.setPlainText("a photo of a sneaker.\na photo of a t-shirt.\n\na photo of a bag.")
    shown = panel.results_shown
    panel.match_button.click()
    qtbot.waitUntil(lambda: panel.results_shown == shown + 1, timeout=30_000)
    res = panel.result
    assert [c.text for c in res.captions] == ["a photo of a sneaker.", "a photo of a t-shirt.", "a photo of a bag."]
    assert panel.table.rowCount() == 3 and panel.error_label.isHidden()
    best = max(res.captions, key=lambda c: c.itm_probability)
    assert best.text == "a photo of a t-shirt."  # the first Fashion-MNIST test sample is a T-shirt
    assert "ITM's best: <b>a photo of a t-shirt.</b>" in panel.metrics.text()
    assert panel.table.cellWidget(1, 3).text().endswith("%")

    panel.table.selectRow(1)  # click a caption: its words become buttons
    words = [b.text() for b in panel.word_group.buttons()]
    assert words == ["whole caption", "a", "photo", "of", "a", "t", "-", "shirt", "."]  # WordPiece's words
    whole = pixels(panel.view)
    panel.word_group.buttons()[-2].click()  # a word: its own map over the image
    assert "for the word <b>shirt</b>" in panel.map_title.text()
    assert not np.array_equal(whole, pixels(panel.view))
    assert panel.settings.value("match/captions").count("\n") == 2  # the captions persist

    panel.captions_edit.setPlainText("   ")
    panel.match_button.click()
    qtbot.waitUntil(lambda: panel.error_label.isVisible(), timeout=30_000)
    assert "at least one caption" in panel.error_label.text()


def test_vilt_model_scores_by_itm_only(window, qtbot):
    """The built-in ViLT in the same panel: ITC columns "—" with the reason, ITM and word maps as ALBEF's."""
    panel = window.panels["match"]
    window.tabs.setCurrentWidget(panel)
    qtbot.waitUntil(lambda: panel.results_shown >= 1, timeout=60_000)  # ALBEF on the first sample, a T-shirt
    assert panel.no_itc.isHidden()
    picker, vilt = panel.model_picker, "fmnist-vilt-tiny"
    qtbot.waitUntil(lambda: picker.combo.findData(vilt) >= 0 and picker.is_ready(vilt), timeout=30_000)
    shown = panel.results_shown
    picker.combo.setCurrentIndex(picker.combo.findData(vilt))
    qtbot.waitUntil(lambda: panel.results_shown > shown and panel.result.model_id == vilt, timeout=60_000)
    res = panel.result
    assert res.family == "vilt" and all(c.itc_similarity is None and c.itc_probability is None for c in res.captions)
    assert panel.table.cellWidget(0, 1).text() == panel.table.cellWidget(0, 2).text() == "—"
    assert panel.table.cellWidget(0, 3).text().endswith("%")
    assert panel.no_itc.isVisible() and "cannot be indexed" in panel.no_itc.text()
    assert "One transformer" in panel.explain.text()
    assert "ITC's best" not in panel.metrics.text()
    assert "ITM's best: <b>a photo of a t-shirt.</b>" in panel.metrics.text()
    panel.table.selectRow(0)
    panel.word_group.buttons()[-2].click()
    assert "for the word <b>" in panel.map_title.text()

    shown = panel.results_shown
    picker.combo.setCurrentIndex(picker.combo.findData("fmnist-albef-tiny"))  # back: ITC again, no note
    qtbot.waitUntil(lambda: panel.results_shown > shown, timeout=60_000)
    assert panel.no_itc.isHidden() and panel.table.cellWidget(0, 1).text() != "—"
    assert "Align before fuse" in panel.explain.text()
