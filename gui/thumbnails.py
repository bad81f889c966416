"""Small previews decoded on Qt's thread pool, never on the GUI thread, with a disk cache.

QImage is safe to build off the GUI thread; QPixmap is made on arrival. Qt's own reader
handles the common formats with EXIF orientation; anything it cannot read (HEIC/HEIF)
goes through Pillow via engine.images. Cached thumbnails are keyed by path, size and
mtime, so an edited photo gets a fresh one.
"""
from __future__ import annotations

import os
import threading
from hashlib import blake2b
from pathlib import Path

from PySide6.QtCore import QObject, QRunnable, QSize, Qt, QThreadPool, Signal
from PySide6.QtGui import QImage, QImageReader


class _Signals(QObject):
    loaded = Signal(str, QImage)
    failed = Signal(str)


def cache_path(folder: Path, path: str, size: int) -> Path | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    key = blake2b(f"{path}\0{st.st_size}\0{st.st_mtime_ns}\0{size}".encode("utf-8", "surrogateescape"),
                  digest_size=12).hexdigest()
    return folder / key[:2] / f"{key}.jpg"


def _read_with_qt(path: str, size: int) -> QImage:
    reader = QImageReader(path)
    reader.setAutoTransform(True)  # EXIF orientation
    s = reader.size()
    if s.isValid() and max(s.width(), s.height()) > size:
        reader.setScaledSize(s.scaled(QSize(size, size), Qt.AspectRatioMode.KeepAspectRatio))
    return reader.read()


def _read_with_pillow(path: str, size: int) -> QImage:
    from engine.errors import BadImageError
    from engine.images import open_image
    from gui.qimage import array_to_qimage

    try:
        img = open_image(path, draft=(size, size))
    except BadImageError:
        return QImage()
    import numpy as np

    img.thumbnail((size, size))
    return array_to_qimage(np.asarray(img.convert("RGB")))


class _Load(QRunnable):
    def __init__(self, path: str, size: int, signals: _Signals, cache: Path | None):
        super().__init__()
        self.path, self.size, self.signals, self.cache = path, size, signals, cache

    def run(self) -> None:
        try:
            self._run()
        except RuntimeError:  # the loader was deleted (panel closed, app quitting): nobody to tell
            pass

    def _run(self) -> None:
        cached = cache_path(self.cache, self.path, self.size) if self.cache else None
        if cached is not None and cached.exists():
            image = QImage(str(cached))
            if not image.isNull():
                self.signals.loaded.emit(self.path, image)
                return
        image = _read_with_qt(self.path, self.size)
        if image.isNull():
            image = _read_with_pillow(self.path, self.size)
        if image.isNull():
            self.signals.failed.emit(self.path)
            return
        if cached is not None:
            self._store(image, cached)
        self.signals.loaded.emit(self.path, image)

    @staticmethod
    def _store(image: QImage, cached: Path) -> None:
        """Write the disk-cache copy; a cache that cannot be written only costs a later decode.
        The temporary name is this thread's own: two views may ask for the same photo at once."""
        tmp = cached.with_name(f".{cached.stem}.{os.getpid()}-{threading.get_ident()}.tmp.jpg")
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            if image.save(str(tmp), "JPEG", 85):
                os.replace(tmp, cached)  # atomic: a half-written thumbnail is never read
        except OSError:
            pass
        finally:
            if tmp.exists():
                tmp.unlink(missing_ok=True)


class ThumbnailLoader(QObject):
    """loaded(path, QImage) fires on the GUI thread for each image that decoded; failed(path) otherwise.

    `cache`: a folder for the disk cache (None: decode every time).
    """

    loaded = Signal(str, QImage)
    failed = Signal(str)

    def __init__(self, size: int = 96, parent: QObject | None = None, cache: Path | None = None):
        super().__init__(parent)
        self.size = size
        self.cache = cache
        self._signals = _Signals()
        self._signals.loaded.connect(self.loaded)
        self._signals.failed.connect(self.failed)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(max(2, min(4, os.cpu_count() or 2)))

    def request(self, paths: list[str]) -> None:
        for p in paths:
            self.pool.start(_Load(p, self.size, self._signals, self.cache))

    def clear_queue(self) -> None:
        """Drop requests not yet started (results scrolled away or replaced)."""
        self.pool.clear()
