"""Regenerate the README screenshots offscreen:
`python docs/make_screenshots.py [--size WxH ...] [panel ...]`.

Each panel is shown with a real result (sample photos, real weights), then grabbed once per window
size (default 1280x800 and 1920x1080) into docs/screenshots/WxH/. With panel names (classify,
attention, search, mae, train, train_pseudo_label, train_test_model, generate, match, match_vilt) only those are made;
classify also makes models.png. A panel is shown before its result is asked for: panels run their first sample only
once they are shown.
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


DEFAULT_SIZES = ((1280, 800), (1920, 1080))
SIZES: list[tuple[int, int]] = []


def parse_args(argv: list[str]) -> tuple[list[tuple[int, int]], list[str]]:
    """(window sizes, panel names) from `--size WxH` options and names."""
    sizes, names, it = [], [], iter(argv)
    for arg in it:
        if arg == "--size":
            w, _, h = next(it, "").partition("x")
            if not (w.isdigit() and h.isdigit()):
                raise SystemExit("--size takes WIDTHxHEIGHT, e.g. --size 1280x800")
            sizes.append((int(w), int(h)))
        else:
            names.append(arg)
    return sizes or list(DEFAULT_SIZES), names


def save(app: QApplication, widget, out: Path, name: str, rounds: int = 20, resize: bool = True) -> None:
    """Grab `widget` at every window size into docs/screenshots/WxH/name (a dialog keeps its own size)."""
    for w, h in SIZES:
        if resize:
            widget.resize(w, h)
        settle(app, rounds)
        folder = out / f"{w}x{h}"
        folder.mkdir(parents=True, exist_ok=True)
        widget.grab().save(str(folder / name))
        print("wrote", folder / name)


def main() -> None:
    sizes, names = parse_args(sys.argv[1:])
    SIZES[:] = sizes
    app = QApplication([])
    from gui.app import create_window

    window, bridge = create_window("cpu")
    window.resize(*SIZES[0])
    window.show()
    bridge.start()
    out = ROOT / "docs" / "screenshots"
    shots = {"classify": classify_screenshot, "attention": attention_screenshot, "search": search_screenshot,
             "mae": mae_screenshot, "train": train_screenshot, "train_pseudo_label": train_pseudo_label_screenshot,
             "train_test_model": train_test_model_screenshot, "generate": generate_screenshot,
             "match": match_screenshot, "match_vilt": match_vilt_screenshot}
    unknown = set(names) - set(shots)
    if unknown:
        raise SystemExit(f"no screenshot for {', '.join(sorted(unknown))}; choose from {', '.join(shots)}")
    for name, shot in shots.items():
        if not names or name in names:
            shot(app, window, out)
    bridge.shutdown()


def settle(app: QApplication, rounds: int) -> None:
    """Let thumbnails, the status bar and the last redraws land."""
    for _ in range(rounds):
        app.processEvents()
        time.sleep(0.02)


def coffee_photo() -> str:
    from gui.samples import sample_photos

    return next(p for p, _ in sample_photos() if p.endswith("coffee.png"))


def classify_screenshot(app: QApplication, window, out: Path) -> None:
    """Classify: EfficientNet-Lite0 on the coffee photo; then the models dialog."""
    bridge = window.bridge
    panel = window.panels["classify"]
    window.tabs.setCurrentWidget(panel)
    panel.classify_path(coffee_photo())
    wait(app, lambda: bool(panel.top_labels()))
    wait(app, lambda: bridge.status is not None and bridge.status.loaded_models)
    settle(app, 30)
    save(app, window, out, "classify.png")

    from engine.catalogue import entries

    dialog = window.show_models_dialog()
    wait(app, lambda: dialog.table.rowCount() == len(entries()))
    dialog.select("timm-vit-base")
    settle(app, 20)
    save(app, dialog, out, "models.png", resize=False)
    dialog.hide()


def attention_screenshot(app: QApplication, window, out: Path) -> None:
    """Attention: the built-in Fashion-MNIST ViT, all heads of the last block for a clicked patch;
    then Grad-CAM for "espresso" with EfficientNet-Lite0 on the coffee photo."""
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
    settle(app, 30)
    save(app, window, out, "attention.png")
    att.all_heads.setChecked(False)
    att.model_picker.combo.setCurrentIndex(att.model_picker.combo.findData("efficientnet-lite0"))
    coffee = coffee_photo()
    att.show_path(coffee)
    wait(app, lambda: att.result.path == coffee and att.result.method == "gradcam", 120)
    settle(app, 30)
    save(app, window, out, "attention-cnn.png")


def search_screenshot(app: QApplication, window, out: Path) -> None:
    """Search: the sample photos and a broken file indexed offline (label space), "a cup of coffee"; then a
    query with no answer in the folder."""
    import shutil

    from gui.samples import sample_photos

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
    settle(app, 60)  # thumbnails
    save(app, window, out, "search.png", rounds=60)
    search.run_query("a grand piano")  # nothing in the folder is one: "no good match"
    wait(app, lambda: search.search_job is None and search.last_query == "a grand piano")
    save(app, window, out, "search_no_match.png", rounds=30)


def mae_screenshot(app: QApplication, window, out: Path) -> None:
    """MAE: the built-in tiny MAE on a Fashion-MNIST coat, 75% random masking; then a live pretraining run."""
    mae_panel = window.panels["mae"]
    window.tabs.setCurrentWidget(mae_panel)
    wait(app, lambda: mae_panel.samples is not None and len(mae_panel.samples.paths()) > 6, 120)
    coat = next(p for p in mae_panel.samples.paths() if "fashion-mnist" in p and p.endswith("test-00006.png"))
    mae_panel.mode.setCurrentIndex(mae_panel.mode.findData("random"))
    mae_panel.ratio_slider.setValue(75)
    mae_panel.set_image(coat)
    wait(app, lambda: mae_panel.result is not None and mae_panel.result.path == coat
         and mae_panel.result.mode == "random", 120)
    settle(app, 40)
    save(app, window, out, "mae.png")
    box = mae_panel.pretrain
    box.start({"epochs": 1, "train_limit": 8192, "batch_size": 64, "log_every": 4, "preview_every": 8,
               "eval_images": 256})
    wait(app, lambda: box.previews_seen >= 6, 600)
    save(app, window, out, "mae_pretrain.png")
    box.stop()
    wait(app, lambda: not box.running(), 120)


def train_screenshot(app: QApplication, window, out: Path) -> None:
    """Train: a short MoCo v2 run on Fashion-MNIST, its two-view preview, curves and runs list."""
    panel = window.panels["train"]
    window.tabs.setCurrentWidget(panel)
    wait(app, lambda: "moco_v2" in panel.infos, 120)
    panel.set_dataset("fashion-mnist")
    panel.recipe.setCurrentIndex(panel.recipe.findData("moco_v2"))
    panel.set_config({"max_steps": 128, "batch_size": 64, "width": 8, "K": 1024, "train_limit": 4096,
                      "knn_bank": 2000, "knn_test": 500, "log_every": 4})
    wait(app, lambda: panel.preview.view_pairs > 0, 120)
    panel.start()
    wait(app, lambda: not panel.running(), 900)
    settle(app, 60)  # the history reload and the last redraw
    save(app, window, out, "train.png")



def train_test_model_screenshot(app: QApplication, window, out: Path) -> None:
    """Train → Test your model: a short supervised ViT on Fashion-MNIST tested on a test image
    (prediction + attention rollout), then exported to ONNX and the export tested on the same image."""
    panel = window.panels["train"]
    window.tabs.setCurrentWidget(panel)
    wait(app, lambda: "supervised" in panel.infos, 120)
    panel.set_dataset("fashion-mnist")
    panel.recipe.setCurrentIndex(panel.recipe.findData("supervised"))
    panel.set_config({"max_steps": 300, "batch_size": 64, "embed_dim": 48, "depth": 2, "num_heads": 3,
                      "train_limit": 8192, "test_limit": 1000, "log_every": 10})
    panel.start()
    name = panel.run_name
    wait(app, lambda: not panel.running(), 900)
    if "Finished" not in panel.status.text():
        raise SystemExit(f"the run did not finish: {panel.status.text()} {panel.error.text()}")
    wait(app, lambda: panel.runs.row_of(name) is not None and panel.runs.row_of(name).status == "finished", 60)
    panel.runs.select_run(name)
    view = panel.test_view
    panel.tabs.setCurrentWidget(view)
    wait(app, lambda: view.samples_holder.strip is not None and view.samples_holder.strip.paths(), 60)
    image = view.samples_holder.strip.paths()[0]
    view.use_run.setChecked(True)
    view.set_image(image)
    wait(app, lambda: view.last is not None and view.last.path == image and view.last.source == "run", 120)
    save(app, window, out, "train_test_model.png")
    dest = Path(tempfile.mkdtemp(prefix="pw-export-")) / f"{name}.onnx"
    panel.export_selected(str(dest))
    wait(app, lambda: view.last is not None and view.last.source == "onnx", 300)
    save(app, window, out, "train_test_onnx.png")


def train_pseudo_label_screenshot(app: QApplication, window, out: Path) -> None:
    """Train: a short pseudo-label run (4 rounds): per-class pseudo-label bars, per-round accuracy and
    coverage, then its confusion matrix. The README's figures come from the longer command given there."""
    panel = window.panels["train"]
    window.tabs.setCurrentWidget(panel)
    wait(app, lambda: "pseudo_label" in panel.infos, 120)
    panel.set_dataset("fashion-mnist")
    panel.recipe.setCurrentIndex(panel.recipe.findData("pseudo_label"))
    panel.set_config({"epochs": 4, "steps_per_round": 40, "batch_size": 64, "embed_dim": 32, "depth": 2,
                      "train_limit": 4096, "test_limit": 1000, "labels_per_class": 20, "threshold": 0.5,
                      "class_limit": 100, "log_every": 5})
    panel.start()
    wait(app, lambda: not panel.running(), 900)
    settle(app, 60)  # the history reload and the last redraw
    save(app, window, out, "train_pseudo_label.png")
    panel.tabs.setCurrentWidget(panel.results)  # the run's confusion matrix and per-class accuracy
    save(app, window, out, "train_confusion.png")


def generate_screenshot(app: QApplication, window, out: Path) -> None:
    """Generate: the built-in tiny unCLIP, 8 sneakers, the embedding explained, an interpolation strip."""
    panel = window.panels["generate"]
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
    settle(app, 40)
    save(app, window, out, "generate.png")


def match_screenshot(app: QApplication, window, out: Path, model_id: str = "fmnist-albef-tiny",
                     name: str = "match.png") -> None:
    """Match: the built-in tiny ALBEF on a Fashion-MNIST sneaker, class captions, one word's Grad-CAM."""
    panel = window.panels["match"]
    window.tabs.setCurrentWidget(panel)
    wait(app, lambda: panel.samples is not None and len(panel.samples.paths()) > 6 and panel.results_shown, 120)
    combo = panel.model_picker.combo
    if panel.model_id() != model_id:
        wait(app, lambda: combo.findData(model_id) >= 0 and panel.model_picker.is_ready(model_id), 60)
        combo.setCurrentIndex(combo.findData(model_id))
    sneaker = next(p for p in panel.samples.paths() if "fashion-mnist" in p and p.endswith("test-00009.png"))
    panel.captions_edit.setPlainText("a photo of a sneaker.\na photo of a sandal.\na photo of an ankle boot.\n"
                                     "a photo of a t-shirt.\na black and white photo of a running shoe.")
    shown = panel.results_shown
    panel.set_image(sneaker)
    wait(app, lambda: panel.results_shown > shown and panel.result.path == sneaker
         and panel.result.model_id == model_id, 120)
    panel.table.selectRow(0)
    panel.word_group.buttons()[-2].click()  # the word "sneaker"
    settle(app, 40)
    save(app, window, out, name)


def match_vilt_screenshot(app: QApplication, window, out: Path) -> None:
    """Match with the built-in tiny ViLT: ITM only (ITC columns "—"), one word's Grad-CAM."""
    match_screenshot(app, window, out, "fmnist-vilt-tiny", "match_vilt.png")


if __name__ == "__main__":
    main()
