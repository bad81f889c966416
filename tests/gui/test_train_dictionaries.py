"""The Train panel lists SimCLR and InstDisc with their key settings, and an InstDisc run started
from the panel draws the similarity histograms and the instance-accuracy curve MoCo gets."""
from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from engine.data import fashion_mnist

pytestmark = pytest.mark.skipif(not fashion_mnist.is_available(),
                                reason="needs the real Fashion-MNIST: sudo apt install dataset-fashion-mnist, or the Train panel's Get Fashion-MNIST")

TINY = {"max_steps": 6, "batch_size": 32, "width": 4, "train_limit": 512, "K": 64, "log_every": 1, "knn_bank": 256,
        "knn_test": 100, "knn_k": 10, "eval_batch_size": 128, "checkpoint_seconds": 1e9}


def test_panel_lists_simclr_and_instdisc_and_runs_instdisc(window, qtbot):
    panel = window.panels["train"]
    window.tabs.setCurrentWidget(panel)
    qtbot.waitUntil(lambda: all(n in panel.infos and panel.infos[n].available for n in ("simclr", "instdisc")),
                    timeout=60_000)
    panel.set_dataset("fashion-mnist")
    panel.recipe.setCurrentIndex(panel.recipe.findData("simclr"))
    assert panel.recipe.currentText().startswith("SimCLR") and {"backbone", "T"} <= set(panel.form.editors)
    panel.recipe.setCurrentIndex(panel.recipe.findData("instdisc"))
    assert panel.recipe.currentText().startswith("InstDisc")
    assert {"K", "m", "T"} <= set(panel.form.editors)
    panel.set_config(TINY)
    assert panel.config()["K"] == 64 and panel.start_button.isEnabled()

    qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    name = panel.run_name
    qtbot.waitUntil(lambda: not panel.running(), timeout=120_000)
    assert "Finished" in panel.status.text(), panel.error.text()
    # live records may be throttled; the finished run's history fills in the rest
    qtbot.waitUntil(lambda: len(panel.plots.points(name, "bank_staleness")) == 6, timeout=30_000)
    assert len(panel.plots.points(name, "acc")) == 6
    assert panel.plots.hist_pos.yData is not None and panel.plots.hist_pos.yData.sum() > 0
    assert panel.plots.plots["ssl"].isVisible()
    qtbot.waitUntil(lambda: panel.plots.drawn_points(name, "ssl", "bank_fill") == 6, timeout=5_000)  # dotted curve
    qtbot.waitUntil(lambda: panel.runs.row_of(name) is not None and panel.runs.row_of(name).status == "finished",
                    timeout=30_000)
    assert panel.runs.row_of(name).recipe == "instdisc"
