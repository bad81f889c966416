"""Local file paths carried by a drag-and-drop."""
from __future__ import annotations

from PySide6.QtCore import QMimeData, QPoint


def dropped_paths(mime: QMimeData) -> list[str]:
    if not mime.hasUrls():
        return []
    return [u.toLocalFile() for u in mime.urls() if u.isLocalFile()]


class FileDrops:
    """Mixin (put it before the Qt base class): accepts drags that carry local files and hands the
    first path to `file_drop` (or to `file_drop_at`, with where it landed), so every view and panel
    follows the same drop rule."""

    def file_drop(self, path: str) -> None:
        raise NotImplementedError

    def file_drop_at(self, path: str, pos: QPoint) -> None:
        """A drop at `pos` (widget coordinates); for widgets whose children take drops of their own."""
        self.file_drop(path)

    def dragEnterEvent(self, event) -> None:  # noqa: N802
        if dropped_paths(event.mimeData()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802
        paths = dropped_paths(event.mimeData())
        if paths:
            event.acceptProposedAction()
            self.file_drop_at(paths[0], event.position().toPoint())


IMAGE_FILTER = "Images (*.jpg *.jpeg *.png *.webp *.bmp *.tif *.tiff *.gif *.heic *.heif);;All files (*)"


def choose_image(parent, settings, key: str) -> str | None:
    """A path from the Open image dialog, which starts in (and remembers) the folder in settings `key`."""
    import os

    from PySide6.QtWidgets import QFileDialog

    start = settings.value(key, os.path.expanduser("~"))
    path, _ = QFileDialog.getOpenFileName(parent, "Open image", start, IMAGE_FILTER)
    if path:
        settings.setValue(key, os.path.dirname(path))
    return path or None
