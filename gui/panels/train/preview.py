"""The dataset preview: sample images with their label or caption and, for self-supervised
recipes, MoCo's two augmented views of each image underneath (what the model must match)."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import QGridLayout, QLabel, QScrollArea, QVBoxLayout, QWidget

from gui.qimage import array_to_qimage

THUMB = 72  # one row of images
THUMB_VIEWS = 68  # three rows: images and their two views (ten columns fit beside the setup at 1280 px)


def _pixmap(arr, side: int = THUMB) -> QPixmap:
    img = array_to_qimage(arr)
    # Small images (28 px) scale with nearest neighbour: pixels, not blur.
    mode = Qt.TransformationMode.FastTransformation if img.width() < side / 2 else \
        Qt.TransformationMode.SmoothTransformation
    return QPixmap.fromImage(img.scaled(side, side, Qt.AspectRatioMode.KeepAspectRatio, mode))


class PreviewStrip(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.summary = QLabel("Choose a dataset to see a few of its images.")
        self.summary.setStyleSheet("color: palette(mid);")
        self.summary.setWordWrap(True)
        self.grid_host = QWidget()
        self.grid = QGridLayout(self.grid_host)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.grid.setHorizontalSpacing(6)
        self.grid.setVerticalSpacing(2)
        scroll = QScrollArea()
        scroll.setWidget(self.grid_host)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        scroll.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.scroll = scroll
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.summary)
        lay.addWidget(scroll)
        self.images = 0
        self.view_pairs = 0
        self._set_height(False)

    def _set_height(self, views: bool) -> None:
        """Tall enough for every row and the horizontal scroll bar: no view is cut at the bottom."""
        estimate = (THUMB_VIEWS + 4) * 3 + 22 if views else THUMB + 26
        bar = self.scroll.horizontalScrollBar().sizeHint().height()
        self.scroll.setFixedHeight(max(estimate, self.grid_host.sizeHint().height() + bar + 2))

    def _clear(self) -> None:
        while self.grid.count():
            item = self.grid.takeAt(0)
            if item.widget():
                item.widget().deleteLater()
        for col in range(self.grid.columnCount()):  # the last preview's spacer column must not stay wide
            self.grid.setColumnStretch(col, 0)

    def set_message(self, text: str) -> None:
        self.summary.setText(text)

    def set_preview(self, preview) -> None:
        """A DatasetPreview from the engine's "train_preview" request."""
        self._clear()
        self.summary.setText(preview.summary + ("  ·  below each image: two augmented views, the pair the "
                                                "model learns to match" if preview.views else ""))
        views = list(preview.views or [])
        side = THUMB_VIEWS if views else THUMB
        col0 = 0
        if views:
            for row, text in enumerate(("image", "view 1", "view 2")):
                lab = QLabel(text)
                lab.setStyleSheet("color: palette(mid);")
                lab.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.grid.addWidget(lab, row, 0)
            col0 = 1
        for i, image in enumerate(preview.images):
            cell = QLabel()
            cell.setPixmap(_pixmap(image, side))
            cell.setAlignment(Qt.AlignmentFlag.AlignCenter)
            text = preview.texts[i] if i < len(preview.texts) else ""
            cell.setToolTip(text)
            box = QWidget()
            bl = QVBoxLayout(box)
            bl.setContentsMargins(0, 0, 0, 0)
            bl.setSpacing(0)
            bl.addWidget(cell)
            caption = QLabel(text if len(text) <= 14 else text[:13] + "…")
            caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
            caption.setStyleSheet("font-size: 10px;")
            caption.setToolTip(text)
            bl.addWidget(caption)
            self.grid.addWidget(box, 0, col0 + i)
            if i < len(views):
                for r, view in enumerate(views[i], start=1):
                    v = QLabel()
                    v.setPixmap(_pixmap(view, side))
                    v.setAlignment(Qt.AlignmentFlag.AlignCenter)
                    self.grid.addWidget(v, r, col0 + i)
        self.grid.setColumnStretch(col0 + len(preview.images), 1)
        self.images, self.view_pairs = len(preview.images), len(views)
        self._set_height(bool(views))
