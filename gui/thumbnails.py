"""Small previews decoded on Qt's thread pool, never on the GUI thread.

QImage is safe to build off the GUI thread; QPixmap is made on arrival.
"""
from __future__ import annotations

from PySide6.QtCore import QObject, QRunnable, QSize, QThreadPool, Signal
from PySide6.QtGui import QImage, QImageReader


class _Signals(QObject):
    loaded = Signal(str, QImage)


class _Load(QRunnable):
    def __init__(self, path: str, size: int, signals: _Signals):
        super().__init__()
        self.path, self.size, self.signals = path, size, signals

    def run(self) -> None:
        reader = QImageReader(self.path)
        reader.setAutoTransform(True)  # EXIF orientation
        s = reader.size()
        if s.isValid() and max(s.width(), s.height()) > self.size:
            reader.setScaledSize(s.scaled(QSize(self.size, self.size), _keep_aspect()))
        image = reader.read()
        if not image.isNull():
            self.signals.loaded.emit(self.path, image)


def _keep_aspect():
    from PySide6.QtCore import Qt

    return Qt.AspectRatioMode.KeepAspectRatio


class ThumbnailLoader(QObject):
    """loaded(path, QImage) fires on the GUI thread for each image that decoded."""

    loaded = Signal(str, QImage)

    def __init__(self, size: int = 96, parent: QObject | None = None):
        super().__init__(parent)
        self.size = size
        self._signals = _Signals()
        self._signals.loaded.connect(self.loaded)

    def request(self, paths: list[str]) -> None:
        for p in paths:
            QThreadPool.globalInstance().start(_Load(p, self.size, self._signals))
