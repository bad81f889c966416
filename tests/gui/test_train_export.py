"""Train panel: a run trained from the panel on a class folder, tested in "Test your model"
(prediction + attention map), exported with Export… and the export tested in the same box."""
from __future__ import annotations

import json

from PySide6.QtCore import Qt

from tests.engine.training import write_shapes

TINY16 = {"max_steps": 3, "batch_size": 8, "embed_dim": 16, "depth": 1, "num_heads": 2, "patch_size": 4,
          "image_size": 16, "grayscale": True, "log_every": 1, "checkpoint_seconds": 1e9}


def test_test_your_model_then_export_and_test_the_onnx_file(window, qtbot, tmp_path):
    (tmp_path / "shapes").mkdir()
    shapes = write_shapes(tmp_path / "shapes", 6, 5)
    panel = window.panels["train"]
    window.tabs.setCurrentWidget(panel)
    qtbot.waitUntil(lambda: "supervised" in panel.infos, timeout=60_000)
    panel.set_dataset("classes", shapes)
    panel.recipe.setCurrentIndex(panel.recipe.findData("supervised"))
    panel.set_config(TINY16)
    qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    name = panel.run_name
    qtbot.waitUntil(lambda: not panel.running(), timeout=120_000)
    qtbot.waitUntil(lambda: panel.runs.row_of(name) is not None and panel.runs.row_of(name).status == "finished",
                    timeout=30_000)
    panel.runs.select_run(name)
    view = panel.test_view
    assert view.run is not None and view.run.name == name and panel.export_button.isEnabled()

    image = str(next((tmp_path / "shapes" / "bars").glob("*.png")))
    panel.tabs.setCurrentWidget(view)
    view.use_run.setChecked(True)
    view.set_image(image)
    qtbot.waitUntil(lambda: view.last is not None and view.last.path == image, timeout=60_000)
    run_top = [p.index for p in view.last.top]
    assert view.last.source == "run" and len(view.bars.rows()) == 3 and "%" in view.heading.text()
    assert view.last.overlay is not None and view.show_map.isEnabled()  # a ViT: its attention rollout

    dest = tmp_path / "exported.onnx"
    panel.export_selected(str(dest))
    qtbot.waitUntil(lambda: view.last is not None and view.last.source == "onnx", timeout=120_000)
    assert "onnxruntime matches PyTorch" in panel.status.text()
    meta = json.loads(dest.with_suffix(".json").read_text())
    assert meta["check"]["passed"] and meta["labels"] == ["bars", "checks", "stripes"]
    assert [p.index for p in view.last.top] == run_top  # the export gives the run's answer
    assert panel.settings.value("train/test/onnx") == str(dest)

    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    view.set_image(str(bad))
    qtbot.waitUntil(lambda: view.error_label.isVisible(), timeout=30_000)
    assert "notes.png" in view.error_label.text() and view.heading.text() == "Could not test this image"
