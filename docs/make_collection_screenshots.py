"""Screenshots of the Search panel's Map and Duplicates tabs, offscreen at 1280x800:
`python docs/make_collection_screenshots.py [--folder DIR]`.

The folder is the duplicates benchmark's set (every offline sample photo plus five planted
near-duplicates of each; benchmarks/duplicates_quality.py), indexed with the offline ConSE model.
Writes docs/screenshots/1280x800/{map,map_zoomed,map_selection,duplicates}.png.
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["PATCHWORK_HOME"] = tempfile.mkdtemp(prefix="pw-shots-")

import numpy as np  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from docs.make_screenshots import settle, wait  # noqa: E402

SIZE = (1280, 800)


def build_folder(folder: Path) -> None:
    from benchmarks.duplicates_quality import plant, sample_photos

    folder.mkdir(parents=True, exist_ok=True)
    for src in sample_photos():
        plant(src, folder, src.stem)


def main() -> None:
    folder = Path(sys.argv[sys.argv.index("--folder") + 1]) if "--folder" in sys.argv else \
        Path(tempfile.mkdtemp(prefix="pw-collection-"))
    if not any(folder.glob("*.jpg")):
        build_folder(folder)
    app = QApplication([])
    from gui.app import create_window

    window, bridge = create_window("cpu")
    window.resize(*SIZE)
    window.show()
    bridge.start()
    out = ROOT / "docs" / "screenshots" / f"{SIZE[0]}x{SIZE[1]}"
    out.mkdir(parents=True, exist_ok=True)
    panel = window.panels["search"]
    window.tabs.setCurrentWidget(panel)
    panel.set_folder(str(folder))
    wait(app, lambda: panel.index_job is None and panel.indexed > 0, 900)
    view = panel.views.map_view
    view.method_box.setCurrentIndex(max(0, view.method_box.findData("tsne")))
    panel.views.setCurrentWidget(view)
    wait(app, lambda: view.result is not None and view.result.method == view.method(), 600)
    settle(app, 40)
    shot(app, window, out / "map.png")

    # zoomed in on the cat's cluster: thumbnails in place of points
    cat = view.paths.index(next(p for p in view.paths if p.endswith("chelsea__orig.png")))
    x, y = view.xy[cat]
    view.view_box.setRange(xRange=(x - 0.25, x + 0.25), yRange=(y - 0.16, y + 0.16), padding=0)
    wait(app, lambda: view.thumbnails_in_place() > 3, 60)
    settle(app, 80)
    shot(app, window, out / "map_zoomed.png")

    # a lasso around the coffee photos' corner of the map, then the grid it fills
    view.view_box.autoRange(padding=0.05)
    coffee = view.paths.index(next(p for p in view.paths if p.endswith("coffee__orig.png")))
    cx, cy = view.xy[coffee]
    angles = np.linspace(0, 2 * np.pi, 40, endpoint=False)
    view.set_mode("lasso")
    view.select_lasso(np.column_stack([cx + 0.3 * np.cos(angles), cy + 0.22 * np.sin(angles)]))
    settle(app, 40)
    shot(app, window, out / "map_selection.png")

    dups = panel.views.duplicates_view
    panel.views.setCurrentWidget(dups)
    wait(app, lambda: dups.result is not None, 300)
    settle(app, 120)
    shot(app, window, out / "duplicates.png")
    bridge.shutdown()


def shot(app, window, path: Path) -> None:
    window.resize(*SIZE)
    settle(app, 20)
    window.grab().save(str(path))
    print("wrote", path)


if __name__ == "__main__":
    main()
