"""The Classify panel end to end: real drops, real weights, real engine thread."""
from __future__ import annotations

from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication

from tests.gui.conftest import sample


def drop_file(widget, path: str, pos: QPointF | None = None) -> None:
    """Deliver a real drag-enter + drop of a local file onto `widget` (at `pos`, else its centre)."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(path)])
    pos = QPointF(widget.width() / 2, widget.height() / 2) if pos is None else pos
    enter = QDragEnterEvent(pos, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, enter)
    assert enter.isAccepted()
    drop = QDropEvent(pos, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, drop)


def test_dropping_coffee_shows_espresso_first(window, qtbot):
    panel = window.panels["classify"]
    drop_file(panel.image_view, sample("coffee.png"))
    qtbot.waitUntil(lambda: bool(panel.top_labels()), timeout=60_000)
    assert panel.top_labels()[0] == "espresso"
    assert len(panel.top_labels()) == 5
    assert panel.image_view.pixmap() is not None and not panel.image_view.pixmap().isNull()
    assert panel.error_label.isHidden()


def test_corrupt_file_shows_error_and_panel_keeps_working(window, qtbot, tmp_path):
    panel = window.panels["classify"]
    good = open(sample("rocket.jpg"), "rb").read()
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(good[: len(good) // 3])  # a truncated JPEG
    drop_file(panel, str(bad))
    qtbot.waitUntil(lambda: panel.error_label.isVisible(), timeout=60_000)
    assert "broken.jpg" in panel.error_label.text()
    assert "truncated" in panel.error_label.text() or "corrupt" in panel.error_label.text()
    assert panel.top_labels() == []

    not_image = tmp_path / "notes.png"
    not_image.write_text("this is not a picture")
    drop_file(panel, str(not_image))
    qtbot.waitUntil(lambda: "not an image" in panel.error_label.text(), timeout=30_000)

    drop_file(panel.image_view, sample("coffee.png"))
    qtbot.waitUntil(lambda: panel.top_labels()[:1] == ["espresso"], timeout=60_000)
    assert panel.error_label.isHidden()


def test_sample_strip_lists_skimage_photos_and_classifies_on_click(window, qtbot):
    panel = window.panels["classify"]
    assert panel.samples.isVisible()
    paths = panel.samples.paths()
    assert any(p.endswith("chelsea.png") for p in paths)
    chelsea = next(p for p in paths if p.endswith("chelsea.png"))
    qtbot.mouseClick(panel.samples._buttons[chelsea], Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(panel.top_labels()), timeout=60_000)
    assert set(panel.top_labels()[:2]) & {"tabby", "tiger cat", "Egyptian cat"}


def test_sample_strip_hides_without_skimage(qtbot, monkeypatch):
    import gui.samples as samples
    from gui.widgets.sample_strip import SampleStrip

    monkeypatch.setattr(samples.importlib.util, "find_spec", lambda name: None)
    assert samples.sample_photos() == []
    from PySide6.QtWidgets import QVBoxLayout, QWidget

    parent = QWidget()
    qtbot.addWidget(parent)
    strip = SampleStrip(samples.sample_photos())
    QVBoxLayout(parent).addWidget(strip)
    parent.show()
    assert parent.isVisible() and not strip.isVisible()


def test_switching_model_keeps_image_and_reruns(window, qtbot):
    panel = window.panels["classify"]
    panel.classify_path(sample("coffee.png"))
    qtbot.waitUntil(lambda: bool(panel.top_labels()), timeout=60_000)
    seen = []
    window.bridge.job_event.connect(  # other panels (MAE, Attention) also answer at start-up
        lambda ev: seen.append(ev) if ev.kind == "result" and ev.info.kind == "classify" else None)
    panel._model_changed()  # what a change of the combo box triggers
    qtbot.waitUntil(lambda: bool(seen), timeout=60_000)
    assert panel.current_path.endswith("coffee.png")
    assert seen[0].payload.path.endswith("coffee.png")
