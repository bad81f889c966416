"""The Classify panel: open or drop an image, see the model's top-5 with probability bars.

One request at a time: a new image or model cancels the request in flight.
"""
from __future__ import annotations

import os

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QLabel, QPushButton, QSplitter,
                               QVBoxLayout, QWidget)

from engine import catalogue
from gui.dropping import FileDrops, choose_image
from gui.latest import LatestRequest
from gui.qimage import array_to_pixmap
from gui.samples import sample_photos
from gui.widgets.domain_banner import DomainBanner
from gui.widgets.error_label import ErrorLabel
from gui.widgets.image_view import ImageView
from gui.widgets.layouts import column
from gui.widgets.model_picker import ModelPicker, open_and_model_row
from gui.widgets.sample_strip import SampleStrip
from gui.widgets.topk_bars import TopKBars


class ClassifyPanel(FileDrops, QWidget):
    panel_id = "classify"

    def __init__(self, bridge, settings, parent: QWidget | None = None):
        super().__init__(parent)
        self.bridge = bridge
        self.settings = settings
        self.current_path: str | None = None
        self.latest = LatestRequest(bridge)  # the classify request in flight
        self.setAcceptDrops(True)

        self.open_button = QPushButton("Open image…")
        self.open_button.clicked.connect(self._choose_file)
        self.model_picker = ModelPicker(bridge, "classify", settings, default=catalogue.DEFAULT_CLASSIFIER)
        self.model_picker.model_changed.connect(self._model_changed)
        self.domain_banner = DomainBanner(bridge, self.model_picker.combo)

        top = open_and_model_row(self.open_button, self.model_picker)

        self.image_view = ImageView("Drop an image here\nor click “Open image…”\n\n"
                                    "JPEG · PNG · WebP · BMP · TIFF · GIF · HEIC")
        self.image_view.file_dropped.connect(self.classify_path)

        self.heading = QLabel("Top-5 classes")
        self.heading.setStyleSheet("font-weight: 600; font-size: 15px;")
        self.bars = TopKBars()
        self.details = QLabel("")
        self.details.setWordWrap(True)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.details.setStyleSheet("color: palette(mid);")
        self.error_label = ErrorLabel(padding=8)
        right = column(self.heading, self.bars, self.error_label, self.details, 1)
        right.setMinimumWidth(440)  # whole class names beside bars long enough to compare

        split = QSplitter(Qt.Orientation.Horizontal)
        split.setChildrenCollapsible(False)
        split.addWidget(self.image_view)
        split.addWidget(right)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)

        self.samples = SampleStrip(sample_photos())
        self.samples.chosen.connect(self.classify_path)

        lay = QVBoxLayout(self)
        lay.addWidget(self.domain_banner)
        lay.addLayout(top)
        lay.addWidget(split, 1)
        lay.addWidget(self.samples)

    # ------------------------------------------------------------------ actions
    def model_id(self) -> str:
        return self.model_picker.current_id() or catalogue.DEFAULT_CLASSIFIER

    def classify_path(self, path: str) -> None:
        """Show and classify `path` (from Open, a drop or a sample)."""
        self.current_path = path
        self.heading.setText(f"Classifying {os.path.basename(path)}…")
        self.latest.submit(
            "classify", {"path": path, "model_id": self.model_id(), "top_k": 5},
            name=f"Classify {os.path.basename(path)}", on_result=self._show_result, on_error=self._show_error)

    def _choose_file(self) -> None:
        path = choose_image(self, self.settings, "classify/last_dir")
        if path:
            self.classify_path(path)

    def _model_changed(self, _model_id: str = "") -> None:
        if self.current_path:
            self.classify_path(self.current_path)  # keep the image, re-run with the new model

    # ------------------------------------------------------------------ results
    def _show_result(self, res) -> None:
        self.error_label.hide()
        self.domain_banner.show_warning(res.domain_warning)
        if res.preview is not None:
            self.image_view.set_pixmap(array_to_pixmap(res.preview))
        self.heading.setText(f"Top-{len(res.top)} classes · {os.path.basename(res.path)}")
        self.bars.set_rows([(p.label, p.description, p.prob) for p in res.top])
        w, h = res.image_size
        timing = f"{1000 * res.seconds:.0f} ms"
        if res.load_seconds > 0.05:
            timing += f" (+{res.load_seconds:.1f} s to load the model)"
        self.details.setText(f"{w}×{h} px · {catalogue.get(res.model_id).name} · {timing}")

    def _show_error(self, err) -> None:
        self.heading.setText("Could not classify this file")
        self.domain_banner.show_warning(None)
        self.bars.set_rows([])
        self.image_view.set_pixmap(None)
        self.image_view.set_placeholder("No image\n\nDrop another image here")
        self.details.setText("")
        self.error_label.setText(err.message)
        self.error_label.show()

    def top_labels(self) -> list[str]:
        return [r[0] for r in self.bars.rows()]

    # ------------------------------------------------------------------ drops anywhere on the panel
    def file_drop(self, path: str) -> None:
        self.classify_path(path)
