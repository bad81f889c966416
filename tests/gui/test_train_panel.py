"""The Train panel end to end: a real supervised run on Fashion-MNIST started from the panel,
live curve points, Stop, the run in the runs list, Resume to the end; the MoCo preview."""
from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from engine.data import fashion_mnist

pytestmark = pytest.mark.skipif(not fashion_mnist.is_available(),
                                reason="needs the real Fashion-MNIST: sudo apt install dataset-fashion-mnist, or the Train panel's Get Fashion-MNIST")

#: A ViT small enough for tens of steps a second on a CPU.
TINY = {"max_steps": 100, "batch_size": 32, "embed_dim": 16, "depth": 1, "num_heads": 2, "train_limit": 2048,
        "test_limit": 200, "log_every": 1, "eval_batch_size": 200, "checkpoint_seconds": 1e9}


def test_start_watch_stop_and_resume_a_run_from_the_panel(window, qtbot):
    panel = window.panels["train"]
    window.tabs.setCurrentWidget(panel)
    qtbot.waitUntil(lambda: "supervised" in panel.infos and panel.infos["supervised"].available, timeout=60_000)
    panel.set_dataset("fashion-mnist")
    panel.recipe.setCurrentIndex(panel.recipe.findData("supervised"))
    panel.set_config(TINY)
    assert panel.config()["max_steps"] == 100 and panel.start_button.isEnabled()

    qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    name = panel.run_name
    assert name and panel.stop_button.isEnabled() and not panel.start_button.isEnabled()
    qtbot.waitUntil(lambda: len(panel.plots.points(name)) >= 3, timeout=60_000)
    qtbot.mouseClick(panel.stop_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not panel.running(), timeout=30_000)
    assert "Stopped" in panel.status.text()
    qtbot.waitUntil(lambda: panel.plots.drawn_points(name) >= 3, timeout=5_000)  # the timer drew them

    qtbot.waitUntil(lambda: panel.runs.row_of(name) is not None and panel.runs.row_of(name).status == "stopped",
                    timeout=30_000)
    row = panel.runs.row_of(name)
    stopped_at = row.step
    assert row.resumable and 0 < stopped_at < 100 and row.recipe == "supervised"
    # the run just stopped is selected (by the runs list that the end of the job asks for)
    qtbot.waitUntil(lambda: [r.name for r in panel.runs.selected()] == [name], timeout=10_000)
    assert panel.resume_button.isEnabled()

    qtbot.mouseClick(panel.resume_button, Qt.MouseButton.LeftButton)
    assert panel.running()
    qtbot.waitUntil(lambda: not panel.running(), timeout=120_000)
    assert "Finished" in panel.status.text(), panel.error.text()
    qtbot.waitUntil(lambda: panel.runs.row_of(name).status == "finished", timeout=30_000)
    # the curve continues from the stop: steps before it came from the file, later ones live
    qtbot.waitUntil(lambda: len(panel.plots.points(name)) == 100, timeout=30_000)
    steps = [s for s, _ in panel.plots.points(name)]
    assert steps == sorted(steps) and steps[-1] == 100
    row = panel.runs.row_of(name)
    assert row.best_name == "accuracy" and 0 < row.best_value <= 1
    assert panel.results.confusion is not None and panel.results.confusion.sum() == 200
    assert [a.text() for a in panel.use_menu.actions()][:1] == ["Classify"]
    # "Use in… → Classify" selects the new model in the Classify panel and shows that panel
    assert panel.use_in("classify", row.model_id)
    classify = window.panels["classify"]
    assert window.tabs.currentWidget() is classify
    qtbot.waitUntil(lambda: classify.model_picker.is_ready(row.model_id), timeout=30_000)
    assert classify.model_picker.current_id() == row.model_id


def test_moco_preview_shows_two_views_and_settings_persist(window, qtbot):
    panel = window.panels["train"]
    qtbot.waitUntil(lambda: "moco_v2" in panel.infos, timeout=60_000)
    panel.set_dataset("fashion-mnist")
    panel.recipe.setCurrentIndex(panel.recipe.findData("moco_v2"))
    qtbot.waitUntil(lambda: panel.preview.view_pairs == 10, timeout=60_000)
    assert panel.preview.images == 10 and "Fashion-MNIST" in panel.preview.summary.text()
    panel.set_config({"K": 1024, "T": 0.2})
    assert panel.config() == {"K": 1024, "T": 0.2}
    assert panel.settings.value("train/recipe") == "moco_v2"
    panel.recipe.setCurrentIndex(panel.recipe.findData("supervised"))
    panel.recipe.setCurrentIndex(panel.recipe.findData("moco_v2"))
    assert panel.config() == {"K": 1024, "T": 0.2}  # remembered per recipe


def test_probe_vs_finetune_trains_both_on_a_class_folder_and_compares(window, qtbot, tmp_path):
    import numpy as np
    from PIL import Image

    yy, xx = np.mgrid[0:28, 0:28]
    rng = np.random.default_rng(0)
    for name, pattern in {"stripes": (yy // 3) % 2, "bars": (xx // 3) % 2}.items():
        (tmp_path / name).mkdir()
        for i in range(12):
            Image.fromarray((pattern * 180 + rng.integers(0, 70, (28, 28))).astype(np.uint8)).save(
                tmp_path / name / f"{i}.png")
    panel = window.panels["train"]
    qtbot.waitUntil(lambda: panel.backbone.findData("fmnist-moco-v2-resnet16") >= 0, timeout=60_000)
    panel.set_dataset("classes", str(tmp_path))
    panel.select_backbone("fmnist-moco-v2-resnet16")
    action = next(a for a in panel.compare_button.menu().actions() if "100%" in a.text())
    action.trigger()
    assert len(panel.jobs) == 2
    qtbot.waitUntil(lambda: not panel.running(), timeout=120_000)
    assert "Linear probe" in panel.status.text() and "vs fine-tune" in panel.status.text(), panel.error.text()
    qtbot.waitUntil(lambda: len(panel.plots.series) == 2, timeout=30_000)
    qtbot.waitUntil(lambda: len(panel.runs.rows) == 2 and all(r.status == "finished" for r in panel.runs.rows),
                    timeout=30_000)  # the list refreshes after each run ends
    assert sorted(r.recipe for r in panel.runs.rows) == ["finetune", "linear_probe"]
    assert all(r.best_name == "accuracy" for r in panel.runs.rows)
