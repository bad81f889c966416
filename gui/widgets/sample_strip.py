"""A row of clickable sample-photo thumbnails; hidden when there are none."""
from __future__ import annotations

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon, QImage, QPixmap
from PySide6.QtWidgets import QHBoxLayout, QLabel, QScrollArea, QToolButton, QWidget

from gui.thumbnails import ThumbnailLoader


class SampleStrip(QWidget):
    chosen = Signal(str)

    def __init__(self, samples: list[tuple[str, str]], title: str = "Try a sample:", parent=None):
        super().__init__(parent)
        self._buttons: dict[str, QToolButton] = {}
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(QLabel(title))
        for path, caption in samples:
            b = QToolButton()
            b.setText(caption)
            b.setToolTip(path)
            b.setIconSize(QSize(72, 72))
            b.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextUnderIcon)
            b.setAutoRaise(True)
            b.setFixedSize(96, 100)
            b.clicked.connect(lambda _=False, p=path: self.chosen.emit(p))
            lay.addWidget(b)
            self._buttons[path] = b
        lay.addStretch(1)
        self.setVisible(bool(samples))
        self._loader = ThumbnailLoader(96, self)
        self._loader.loaded.connect(self._set_icon)
        if samples:
            self._loader.request([p for p, _ in samples])

    def paths(self) -> list[str]:
        return list(self._buttons)

    def _set_icon(self, path: str, image: QImage) -> None:
        if path in self._buttons:
            self._buttons[path].setIcon(QIcon(QPixmap.fromImage(image)))


class SampleShelf(QScrollArea):
    """A horizontally scrolling SampleStrip of the Fashion-MNIST samples (a list the engine sends
    later) followed by the scikit-image photos; hidden while it holds none."""
    chosen = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWidgetResizable(True)
        self.setFrameShape(QScrollArea.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setFixedHeight(122)
        self.strip: SampleStrip | None = None
        self.set_samples([])

    def set_samples(self, fmnist: list[tuple[str, str]]) -> SampleStrip:
        from gui.samples import sample_photos

        strip = SampleStrip(list(fmnist) + sample_photos(), "Try:")
        strip.chosen.connect(self.chosen)
        self.setWidget(strip)
        self.strip = strip
        self.setVisible(bool(strip.paths()))
        return strip
