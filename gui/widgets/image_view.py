"""An image that scales to fit, keeps its aspect ratio, and accepts dropped files."""
from __future__ import annotations

from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPalette, QPixmap
from PySide6.QtWidgets import QSizePolicy, QWidget

from gui.dropping import FileDrops


class ImageView(FileDrops, QWidget):
    file_dropped = Signal(str)

    def __init__(self, placeholder: str = "Drop an image here", parent: QWidget | None = None):
        super().__init__(parent)
        self._pixmap: QPixmap | None = None
        self.placeholder = placeholder
        self.setAcceptDrops(True)
        self.setMinimumSize(240, 200)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def set_pixmap(self, pixmap: QPixmap | None) -> None:
        self._pixmap = pixmap
        self.update()

    def pixmap(self) -> QPixmap | None:
        return self._pixmap

    def set_placeholder(self, text: str) -> None:
        self.placeholder = text
        self.update()

    def image_rect(self) -> QRectF:
        """Where the image is drawn, in widget coordinates (letterboxed)."""
        if self._pixmap is None or self._pixmap.isNull():
            return QRectF()
        pw, ph = self._pixmap.width(), self._pixmap.height()
        scale = min(self.width() / pw, self.height() / ph)
        w, h = pw * scale, ph * scale
        return QRectF((self.width() - w) / 2, (self.height() - h) / 2, w, h)

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt API
        p = QPainter(self)
        p.fillRect(self.rect(), self.palette().color(QPalette.ColorRole.Base))
        if self._pixmap is None or self._pixmap.isNull():
            pen = QColor(self.palette().color(QPalette.ColorRole.Mid))
            p.setPen(pen)
            p.drawRoundedRect(self.rect().adjusted(8, 8, -9, -9), 8, 8)
            p.setPen(self.palette().color(QPalette.ColorRole.PlaceholderText))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self.placeholder)
            return
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        p.drawPixmap(self.image_rect(), self._pixmap, QRectF(self._pixmap.rect()))

    def file_drop(self, path: str) -> None:
        self.file_dropped.emit(path)
