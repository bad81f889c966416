"""The Train panel's pseudo-label recipe: listed with its key settings, and a tiny run from the
panel draws the per-class pseudo-label bars and the per-round accuracy / coverage lines."""
from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from engine.data import fashion_mnist

pytestmark = pytest.mark.skipif(not fashion_mnist.is_available(),
                                reason="needs the real Fashion-MNIST: sudo apt install dataset-fashion-mnist, or the Train panel's Get Fashion-MNIST")

#: Three rounds of 15 steps on 2,048 images (10 labelled per class): seconds on a CPU. The threshold
#: is low so that this weak model takes pseudo-labels to draw.
TINY = {"epochs": 3, "steps_per_round": 15, "batch_size": 32, "embed_dim": 16, "depth": 1, "num_heads": 2,
        "train_limit": 2048, "test_limit": 200, "labels_per_class": 10, "threshold": 0.15, "lr": 5e-3, "log_every": 5,
        "eval_batch_size": 500, "checkpoint_seconds": 1e9}


def test_pseudo_label_recipe_runs_from_the_panel_and_draws_its_rounds(window, qtbot):
    panel = window.panels["train"]
    window.tabs.setCurrentWidget(panel)
    qtbot.waitUntil(lambda: "pseudo_label" in panel.infos, timeout=60_000)
    index = panel.recipe.findData("pseudo_label")
    assert index >= 0 and panel.recipe.itemText(index).startswith("Pseudo-labels")
    panel.set_dataset("fashion-mnist")
    panel.recipe.setCurrentIndex(index)
    form = panel.form
    shown = [form.key_form.itemAt(i, form.key_form.ItemRole.FieldRole).widget()
             for i in range(form.key_form.rowCount())]
    for name in ("labels_per_class", "threshold", "steps_per_round", "class_limit"):
        assert form.editors[name] in shown, name
    panel.set_config(TINY)
    assert panel.config()["labels_per_class"] == 10

    qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    name = panel.run_name
    qtbot.waitUntil(lambda: not panel.running(), timeout=120_000)
    assert "Finished" in panel.status.text(), panel.error.text()
    plots = panel.plots
    qtbot.waitUntil(lambda: len(plots.points(name, "pseudo_label_coverage")) == 3, timeout=30_000)
    assert [s for s, _ in plots.points(name, "accuracy")] == [15, 30, 45]  # one test accuracy per round
    qtbot.waitUntil(lambda: plots.drawn_points(name, "ssl", "pseudo_label_accuracy") >= 1, timeout=5_000)
    assert plots.pseudo_bars.isVisible() and plots.plots["similarity"].isVisible()
    heights = plots.pseudo_bars.opts["height"]
    assert len(heights) == 10 and sum(heights) == plots.points(name, "pseudo_labels")[-1][1]
    assert panel.results.confusion is not None and panel.results.confusion.sum() == 200
