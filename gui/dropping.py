"""Local file paths carried by a drag-and-drop."""
from __future__ import annotations

from PySide6.QtCore import QMimeData


def dropped_paths(mime: QMimeData) -> list[str]:
    if not mime.hasUrls():
        return []
    return [u.toLocalFile() for u in mime.urls() if u.isLocalFile()]
