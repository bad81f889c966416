"""The Search panel's Map and Duplicates tabs on a real indexed folder: the map draws one point
per photo, a box selection fills the result grid, "more like these" ranks by the selection's
mean vector, and the Duplicates tab groups planted copies (and trashes nothing unconfirmed)."""
from __future__ import annotations

import os
import shutil

import numpy as np
from PIL import Image
from PySide6.QtCore import QPointF

from tests.gui.conftest import sample

PHOTOS = ("coffee.png", "chelsea.png", "rocket.jpg", "astronaut.png")


def _folder(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in PHOTOS:
        shutil.copy(sample(name), folder / name)
    cat = Image.open(sample("chelsea.png")).convert("RGB")
    cat.resize((cat.width // 2, cat.height // 2)).save(folder / "chelsea_small.jpg", quality=80)
    return folder


def test_map_points_box_selection_more_like_and_duplicates(window, qtbot, tmp_path):
    folder = _folder(tmp_path)
    panel = window.panels["search"]
    window.tabs.setCurrentWidget(panel)
    panel.set_folder(str(folder))
    qtbot.waitUntil(lambda: panel.index_job is None and panel.indexed == 5, timeout=180_000)

    views = panel.views
    view = views.map_view
    views.setCurrentWidget(view)  # shown: the engine lays the folder out
    qtbot.waitUntil(lambda: view.result is not None, timeout=60_000)
    view.plot.grab()  # a paint: the point cloud maps every photo into the view
    assert view.cloud.drawn == 5 and view.xy.shape == (5, 2)
    assert all(label for label in view.result.labels)  # ConSE names its clusters

    # hovering over a point shows that photo
    rocket = view.paths.index(str(folder / "rocket.jpg"))
    view._mouse_moved(view.view_box.mapViewToScene(QPointF(*view.xy[rocket])))
    assert view.hover.isVisible() and view._hover_path == str(folder / "rocket.jpg")

    # a box around everything: all five photos in the result grid
    view.set_mode("box")
    view.select_box(-2, -2, 2, 2)
    assert panel.results.rowCount() == 5
    assert sorted(os.path.basename(panel.results.path_at(r)) for r in range(5)) == sorted(
        os.listdir(folder))
    # a box around one photo's point selects exactly it
    i = view.paths.index(str(folder / "rocket.jpg"))
    x, y = view.xy[i]
    view.select_box(x - 1e-4, y - 1e-4, x + 1e-4, y + 1e-4)
    assert view.selected_paths() == [str(folder / "rocket.jpg")] and panel.results.rowCount() == 1
    # a lasso (triangle) around the same point
    view.select_lasso(np.array([[x - 0.01, y - 0.01], [x + 0.01, y - 0.01], [x, y + 0.01]]))
    assert view.selected_paths() == [str(folder / "rocket.jpg")]

    # more like these: the selected photo first, then the rest by cosine
    view.more_like.emit(view.selected_paths())
    qtbot.waitUntil(lambda: views.currentIndex() == 0 and panel.results.total() == 5, timeout=60_000)
    assert "most like" in panel.result_label.text()
    assert os.path.basename(panel.results.path_at(0)) == "rocket.jpg"

    # zoomed in on one photo: its thumbnail replaces the point
    views.setCurrentWidget(view)
    view.view_box.setRange(xRange=(x - 0.01, x + 0.01), yRange=(y - 0.01, y + 0.01), padding=0)
    qtbot.waitUntil(lambda: view.thumbnails_in_place() >= 1, timeout=30_000)

    # duplicates: the cat and its half-size copy, the full-size original suggested as keeper
    dups = views.duplicates_view
    views.setCurrentWidget(dups)
    qtbot.waitUntil(lambda: dups.result is not None, timeout=60_000)
    assert len(dups.boxes) == 1
    group = dups.boxes[0].group
    assert sorted(os.path.basename(p.path) for p in group.photos) == ["chelsea.png", "chelsea_small.jpg"]
    assert os.path.basename(group.keeper) == "chelsea.png"
    assert dups.boxes[0].ticked() == [str(folder / "chelsea_small.jpg")]
    dups.confirm_trash = lambda paths: False  # the user says no: nothing moves
    assert dups.move_to_trash(dups.boxes[0].ticked()) == []
    assert (folder / "chelsea_small.jpg").exists()
