"""The Search panel end to end: index a real folder (good, duplicated and broken files) with the
offline label-space model, type a query, scroll the grid, cut off by relevance, search by an
image, "no good match", and pick up a new file through the folder watcher."""
from __future__ import annotations

import os
import shutil

from PySide6.QtCore import Qt

from tests.gui.conftest import sample
from tests.gui.test_classify_panel import drop_file

PHOTOS = ("coffee.png", "chelsea.png", "rocket.jpg", "astronaut.png", "motorcycle_left.png", "horse.png")


def _folder(tmp_path, copies: int = 20):
    folder = tmp_path / "photos"
    (folder / "nested").mkdir(parents=True)
    for name in PHOTOS:
        shutil.copy(sample(name), folder / name)
    for i in range(copies):  # moved/copied photos: same content, vectors reused by hash
        shutil.copy(sample(PHOTOS[i % 3]), folder / "nested" / f"copy_{i:03d}{os.path.splitext(PHOTOS[i % 3])[1]}")
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "notes.png").write_text("not a picture")
    return folder


def test_index_query_scroll_cutoff_image_query_and_watch(window, qtbot, tmp_path):
    folder = _folder(tmp_path)
    window.tabs.setCurrentWidget(window.panels["search"])
    panel = window.panels["search"]
    assert panel.note.isVisible() and "ImageNet" in panel.note.text()  # ConSE says what it knows

    drop_file(panel, str(folder))  # a dropped folder is the one to index
    assert panel.folder == str(folder)
    qtbot.waitUntil(lambda: panel.index_job is None and panel.indexed > 0, timeout=120_000)
    assert panel.indexed == len(PHOTOS) + 20
    assert sorted(os.path.basename(p) for p in panel.skipped_paths()) == ["empty.jpg", "notes.png"]
    assert "Skipped files (2)" == panel.skipped_title.text()

    qtbot.keyClicks(panel.query_edit, "espresso")
    qtbot.keyClick(panel.query_edit, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: panel.results.rowCount() > 0, timeout=60_000)
    assert panel.results.total() == panel.indexed  # every photo ranked; the default cut-off shows the matches
    assert 0 < panel.results.rowCount() < panel.indexed and not panel.no_match.isVisible()
    first = os.path.basename(panel.results.path_at(0))
    assert first == "coffee.png" or first.startswith("copy_") and first.endswith(".png")
    scores = panel.results.scores()
    assert scores == sorted(scores, reverse=True)

    # the grid scrolls and thumbnails load lazily for what comes into view
    panel.cutoff.setValue(0)
    bar = panel.grid.verticalScrollBar()
    qtbot.waitUntil(lambda: bar.maximum() > 0, timeout=10_000)
    bar.setValue(bar.maximum())
    last = panel.results.path_at(panel.results.rowCount() - 1)
    qtbot.waitUntil(lambda: panel.results.icon_loaded(last), timeout=30_000)

    # the cut-off keeps a best-first prefix
    mid = scores[len(scores) // 2]
    panel.cutoff.setValue(int(mid * 100) + 1)
    assert 0 < panel.results.rowCount() < len(scores)
    assert all(panel.results.data(panel.results.index(i), Qt.ItemDataRole.UserRole + 1) >= mid
               for i in range(panel.results.rowCount()))
    panel.cutoff.setValue(0)

    # "why this result": Grad-CAM of the class that carried the score
    dialog = panel.explain(str(folder / "coffee.png"))
    qtbot.waitUntil(lambda: dialog.result is not None, timeout=60_000)
    assert "espresso" in dialog.summary.text() and not dialog.picture.pixmap().isNull()
    assert dialog.bars.rows()[0][0] == "espresso"
    dialog.grab().save(str(tmp_path / "why.png"))
    dialog.close()

    # an image as the query (dropped on the panel): the photo itself and its copies come first
    drop_file(panel, str(folder / "rocket.jpg"))
    qtbot.waitUntil(lambda: panel.results.rowCount() > 0 and panel.last_query.endswith("rocket.jpg")
                    and panel.search_job is None, timeout=60_000)
    top = [os.path.basename(panel.results.path_at(i)) for i in range(8)]
    assert top[0] in ("rocket.jpg",) or top[0].endswith(".jpg")
    assert panel.results.scores()[0] > 0.99

    # a +/- query in the typed syntax
    panel.run_query("2:espresso - cat")
    qtbot.waitUntil(lambda: panel.search_job is None and "cat" in panel.result_label.text(), timeout=60_000)
    assert "−1×cat" in panel.result_label.text()

    # nothing in the folder is a piano: the panel says so instead of showing the least bad photos
    panel.cutoff.setValue(40)  # the default
    panel.run_query("a grand piano")
    qtbot.waitUntil(lambda: panel.search_job is None and panel.last_query == "a grand piano", timeout=60_000)
    assert panel.results.rowCount() == 0 and panel.no_match.isVisible()
    assert "No good match for “a grand piano”" in panel.no_match.text()
    panel.cutoff.setValue(0)  # the closest photos, on request
    assert panel.results.rowCount() > 0 and not panel.no_match.isVisible()

    # the watcher notices a new photo and re-indexes quietly
    shutil.copy(sample("hubble_deep_field.jpg"), folder / "nested" / "new_photo.jpg")
    qtbot.waitUntil(lambda: panel.indexed == len(PHOTOS) + 21, timeout=60_000)
