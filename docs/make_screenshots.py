"""Regenerate the README screenshots offscreen: `python docs/make_screenshots.py`.

Each panel is shown with a real result (sample photos, real weights), then grabbed.
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["PATCHWORK_HOME"] = tempfile.mkdtemp(prefix="pw-shots-")

from PySide6.QtWidgets import QApplication  # noqa: E402


def wait(app: QApplication, cond, timeout: float = 60.0) -> None:
    t0 = time.time()
    while not cond():
        if time.time() - t0 > timeout:
            raise TimeoutError("screenshot state not reached")
        app.processEvents()
        time.sleep(0.01)


def main() -> None:
    app = QApplication([])
    from gui.app import create_window
    from gui.samples import sample_photos

    window, bridge = create_window("cpu")
    window.resize(1200, 800)
    window.show()
    bridge.start()
    out = ROOT / "docs" / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    if sys.argv[1:] == ["match"]:  # just the Match panel: `python docs/make_screenshots.py match`
        match_screenshot(app, window, out)
        bridge.shutdown()
        return

    panel = window.panels["classify"]
    coffee = next(p for p, _ in sample_photos() if p.endswith("coffee.png"))
    panel.classify_path(coffee)
    wait(app, lambda: bool(panel.top_labels()))
    wait(app, lambda: bridge.status is not None and bridge.status.loaded_models)
    for _ in range(30):  # let thumbnails and the status bar settle
        app.processEvents()
        time.sleep(0.02)
    window.tabs.setCurrentWidget(panel)
    window.grab().save(str(out / "classify.png"))
    print("wrote", out / "classify.png")

    from engine.catalogue import entries

    dialog = window.show_models_dialog()
    wait(app, lambda: dialog.table.rowCount() == len(entries()))
    dialog.select("timm-vit-base")
    for _ in range(20):
        app.processEvents()
        time.sleep(0.02)
    dialog.grab().save(str(out / "models.png"))
    print("wrote", out / "models.png")
    dialog.hide()

    # Attention: the built-in Fashion-MNIST ViT, all heads of the last block for a clicked patch;
    # then Grad-CAM for "espresso" with EfficientNet-Lite0 on the coffee photo
    att = window.panels["attention"]
    window.tabs.setCurrentWidget(att)
    wait(app, lambda: att.fmnist_strip is not None, 120)
    att.model_picker.combo.setCurrentIndex(att.model_picker.combo.findData("fmnist-vit-tiny"))
    att.method_combo.setCurrentIndex(att.method_combo.findData("raw"))
    att.all_heads.setChecked(True)
    boot = att.fmnist_strip.paths()[9]
    att.show_path(boot)
    wait(app, lambda: att.result is not None and att.result.path == boot and len(att.result.maps) == 4, 120)
    att.click_patch(6)
    wait(app, lambda: att.result.query == 6 and len(att.result.maps) == 4)
    for _ in range(30):
        app.processEvents()
        time.sleep(0.02)
    window.grab().save(str(out / "attention.png"))
    print("wrote", out / "attention.png")
    att.all_heads.setChecked(False)
    att.model_picker.combo.setCurrentIndex(att.model_picker.combo.findData("efficientnet-lite0"))
    att.show_path(coffee)
    wait(app, lambda: att.result.path == coffee and att.result.method == "gradcam", 120)
    for _ in range(30):
        app.processEvents()
        time.sleep(0.02)
    window.grab().save(str(out / "attention-cnn.png"))
    print("wrote", out / "attention-cnn.png")

    import shutil

    search = window.panels["search"]
    photos = Path(tempfile.mkdtemp(prefix="pw-photos-"))
    for path, _ in sample_photos():
        shutil.copy(path, photos)
    (photos / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a JPEG")
    window.tabs.setCurrentWidget(search)
    search.set_folder(str(photos))
    wait(app, lambda: search.index_job is None and search.indexed > 0, 180)
    search.run_query("a cup of coffee")
    wait(app, lambda: search.results.total() > 0)
    for _ in range(60):  # thumbnails
        app.processEvents()
        time.sleep(0.02)
    window.grab().save(str(out / "search.png"))
    print("wrote", out / "search.png")

    # MAE: the built-in tiny MAE on a Fashion-MNIST coat, 75% random masking; then a live pretraining run
    mae_panel = window.panels["mae"]
    window.resize(1280, 980)
    window.tabs.setCurrentWidget(mae_panel)
    wait(app, lambda: mae_panel.samples is not None and len(mae_panel.samples.paths()) > 6, 120)
    coat = next(p for p in mae_panel.samples.paths() if "fashion-mnist" in p and p.endswith("test-00006.png"))
    mae_panel.mode.setCurrentIndex(mae_panel.mode.findData("random"))
    mae_panel.ratio_slider.setValue(75)
    mae_panel.set_image(coat)
    wait(app, lambda: mae_panel.result is not None and mae_panel.result.path == coat
         and mae_panel.result.mode == "random", 120)
    for _ in range(40):
        app.processEvents()
        time.sleep(0.02)
    window.grab().save(str(out / "mae.png"))
    print("wrote", out / "mae.png")
    box = mae_panel.pretrain
    box.start({"epochs": 1, "train_limit": 8192, "batch_size": 64, "log_every": 4, "preview_every": 8,
               "eval_images": 256})
    wait(app, lambda: box.previews_seen >= 6, 600)
    window.grab().save(str(out / "mae_pretrain.png"))
    print("wrote", out / "mae_pretrain.png")
    box.stop()
    wait(app, lambda: not box.running(), 120)
    train_screenshot(app, window, out)
    generate_screenshot(app, window, out)
    match_screenshot(app, window, out)
    bridge.shutdown()


def train_screenshot(app: QApplication, window, out: Path) -> None:
    """Train: a short MoCo v2 run on Fashion-MNIST, its two-view preview, curves and runs list."""
    panel = window.panels["train"]
    window.resize(1400, 1060)
    window.tabs.setCurrentWidget(panel)
    wait(app, lambda: "moco_v2" in panel.infos, 120)
    panel.set_dataset("fashion-mnist")
    panel.recipe.setCurrentIndex(panel.recipe.findData("moco_v2"))
    panel.set_config({"max_steps": 128, "batch_size": 64, "width": 8, "K": 1024, "train_limit": 4096,
                      "knn_bank": 2000, "knn_test": 500, "log_every": 4})
    wait(app, lambda: panel.preview.view_pairs > 0, 120)
    panel.start()
    wait(app, lambda: not panel.running(), 900)
    for _ in range(60):  # the history reload and the last redraw
        app.processEvents()
        time.sleep(0.02)
    window.grab().save(str(out / "train.png"))
    print("wrote", out / "train.png")



def generate_screenshot(app: QApplication, window, out: Path) -> None:
    """Generate: the built-in tiny unCLIP, 8 sneakers, the embedding explained, an interpolation strip."""
    panel = window.panels["generate"]
    window.resize(1400, 980)
    window.tabs.setCurrentWidget(panel)
    wait(app, lambda: panel.generators.get("fmnist-unclip-tiny") is not None, 120)
    panel.interp_a.setText("a photo of a sneaker")
    panel.interp_b.setText("a photo of an ankle boot")
    panel.frames.setValue(10)
    panel.steps.setValue(50)
    panel.interpolate()
    wait(app, lambda: panel.interpolation is not None and panel.job is None, 600)
    panel.prompt.setText("a photo of a sneaker")
    panel.seed.setValue(0)
    panel.count.setValue(8)
    panel.generate()
    wait(app, lambda: panel.job is None and panel.result is not None, 600)
    panel.tabs.setCurrentIndex(2)
    for _ in range(40):
        app.processEvents()
        time.sleep(0.02)
    window.grab().save(str(out / "generate.png"))
    print("wrote", out / "generate.png")


def match_screenshot(app: QApplication, window, out: Path) -> None:
    """Match: the built-in tiny ALBEF on a Fashion-MNIST sneaker, class captions, one word's Grad-CAM."""
    panel = window.panels["match"]
    window.resize(1280, 900)
    window.tabs.setCurrentWidget(panel)
    wait(app, lambda: panel.samples is not None and len(panel.samples.paths()) > 6 and panel.results_shown, 120)
    sneaker = next(p for p in panel.samples.paths() if "fashion-mnist" in p and p.endswith("test-00009.png"))
    panel.captions_edit.setPlainText("a photo of a sneaker.\na photo of a sandal.\na photo of an ankle boot.\n"
                                     "a photo of a t-shirt.\na black and white photo of a running shoe.")
    shown = panel.results_shown
    panel.set_image(sneaker)
    wait(app, lambda: panel.results_shown > shown and panel.result.path == sneaker, 120)
    panel.table.selectRow(0)
    panel.word_group.buttons()[-2].click()  # the word "sneaker"
    for _ in range(40):
        app.processEvents()
        time.sleep(0.02)
    window.grab().save(str(out / "match.png"))
    print("wrote", out / "match.png")


if __name__ == "__main__":
    main()
