"""The Train panel's "Test your model" tab: drop an image, open one, or pick a test image, and
see the selected run's prediction with its confidence and attention map; or run the run's
exported ONNX file instead, to see the export itself answer (the engine's "try_model")."""
from __future__ import annotations

import os

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QButtonGroup, QCheckBox, QFileDialog, QHBoxLayout, QLabel, QPushButton, QRadioButton,
                               QVBoxLayout, QWidget)

from gui.image_input import ImageInput
from gui.qimage import array_to_pixmap
from gui.widgets.domain_banner import DomainBanner
from gui.widgets.error_label import ErrorLabel
from gui.widgets.image_view import ImageView
from gui.widgets.sample_strip import SampleShelf, SampleStrip
from gui.widgets.topk_bars import TopKBars

#: Runs whose model gives classes (what a test image can be scored by).
TESTABLE_FAMILIES = ("classifier",)
USABLE_STATUS = ("finished", "stopped", "interrupted")


class TestModelView(ImageInput, QWidget):
    onnx_changed = Signal(str)

    def __init__(self, bridge, settings, parent=None):
        super().__init__(parent)
        self.bridge, self.settings, self.panel_id = bridge, settings, "train/test"
        self.run = None  # the RunInfo under test
        self.onnx_path: str | None = settings.value("train/test/onnx", None) or None
        self.last = None  # the last TryResult shown

        self.title = QLabel("Select a finished classifier run in the Runs list to test it.")
        self.title.setWordWrap(True)
        self.use_run = QRadioButton("The run (PyTorch)")
        self.use_onnx = QRadioButton("Its ONNX export")
        group = QButtonGroup(self)
        for b in (self.use_run, self.use_onnx):
            group.addButton(b)
        self.use_run.setChecked(True)
        self.choose_onnx = QPushButton("Choose ONNX file…")
        self.choose_onnx.clicked.connect(self._choose_onnx)
        self.onnx_label = QLabel("")
        self.onnx_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.open_button = QPushButton("Open image…")
        self.open_button.clicked.connect(self._choose_file)
        source = QHBoxLayout()
        for w in (self.use_run, self.use_onnx, self.choose_onnx, self.onnx_label):
            source.addWidget(w)
        source.addStretch(1)
        source.addWidget(self.open_button)

        self.image_view = ImageView("Drop an image here, or pick a test image below")
        self.image_view.file_dropped.connect(self.set_image)
        self.image_view.setMinimumSize(220, 220)
        self.show_map = QCheckBox("Attention map")
        self.show_map.setChecked(settings.value("train/test/show_map", True, type=bool))
        self.show_map.toggled.connect(self._map_toggled)
        left = QVBoxLayout()
        left.addWidget(self.image_view, 1)
        left.addWidget(self.show_map)

        self.heading = QLabel("")
        self.heading.setStyleSheet("font-size: 15px; font-weight: 600;")
        self.heading.setWordWrap(True)
        self.bars = TopKBars()
        self.note = QLabel("")
        self.note.setWordWrap(True)
        self.note.setStyleSheet("color: palette(mid);")
        self.domain_banner = DomainBanner(bridge)
        self.error_label = ErrorLabel(padding=8)
        right = QVBoxLayout()
        for w in (self.heading, self.domain_banner, self.bars, self.error_label, self.note):
            right.addWidget(w)
        right.addStretch(1)
        body = QHBoxLayout()
        body.addLayout(left, 3)
        body.addLayout(right, 2)

        self.samples_holder = SampleShelf()
        self.samples_holder.chosen.connect(self.set_image)
        self.samples: SampleStrip | None = self.samples_holder.strip
        lay = QVBoxLayout(self)
        lay.addWidget(self.title)
        lay.addLayout(source)
        lay.addLayout(body, 1)
        lay.addWidget(self.samples_holder)
        self.setAcceptDrops(True)  # a drop anywhere on the tab tests that image
        self.use_run.toggled.connect(lambda _on: self.run_image())
        self._update_source()
        self.load_samples("attention_samples")

    # ------------------------------------------------------------------ what is tested
    def set_run(self, run) -> None:
        """The Runs list's single selection (or None): testable when it is a finished classifier."""
        ok = run is not None and run.family in TESTABLE_FAMILIES and run.status in USABLE_STATUS and run.model_id
        changed = (run.name if ok else None) != (self.run.name if self.run else None)
        self.run = run if ok else None
        if run is None:
            self.title.setText("Select a finished classifier run in the Runs list to test it.")
        elif not ok:
            what = "still training" if run.status == "running" else (
                f"a {run.family or 'model-less'} run" if run.status in USABLE_STATUS else run.status)
            self.title.setText(f"{run.name} is {what}: the test box runs classifiers (supervised ViT, probe, "
                               "fine-tune). Its ONNX export can still be tested with Choose ONNX file….")
        else:
            self.title.setText(f"Testing {run.name}: drop images, open one, or pick a test image.")
        self._update_source()
        if changed:
            self.run_image()

    def set_onnx(self, path: str) -> None:
        """Test `path` (an exported classifier) from now on, e.g. right after an export."""
        self.onnx_path = path
        self.settings.setValue("train/test/onnx", path)
        self.use_onnx.setChecked(True)
        self._update_source()
        self.run_image()

    def _choose_onnx(self) -> None:
        start = os.path.dirname(self.onnx_path) if self.onnx_path else os.path.expanduser("~")
        path, _ = QFileDialog.getOpenFileName(self, "Choose an exported model", start, "ONNX models (*.onnx)")
        if path:
            self.set_onnx(path)

    def _update_source(self) -> None:
        self.use_run.setEnabled(self.run is not None)
        if self.run is None and self.onnx_path:
            self.use_onnx.setChecked(True)
        self.use_onnx.setEnabled(bool(self.onnx_path))
        self.onnx_label.setText(os.path.basename(self.onnx_path) if self.onnx_path else "no ONNX file chosen")
        self.onnx_label.setToolTip(self.onnx_path or "")

    def params(self) -> dict | None:
        if self.current_path is None:
            return None
        if self.use_onnx.isChecked() and self.onnx_path:
            return {"path": self.current_path, "onnx": self.onnx_path}
        if self.use_run.isChecked() and self.run is not None:
            return {"path": self.current_path, "model_id": self.run.model_id}
        return None

    # ------------------------------------------------------------------ ImageInput
    def run_image(self) -> None:
        params = self.params()
        if params is None:
            return
        self.heading.setText(f"Predicting {os.path.basename(self.current_path)}…")
        self.submit_latest("try_model", params, name=f"Test {os.path.basename(self.current_path)}")

    def show_result(self, res) -> None:
        self.last = res
        self.error_label.hide()
        self.domain_banner.show_warning(res.domain_warning)
        top = res.top[0] if res.top else None
        source = "its ONNX export" if res.source == "onnx" else "the run"
        self.heading.setText(f"{top.label}: {100 * top.prob:.1f}% ({source})" if top else "No prediction")
        self.bars.set_rows([(p.label, p.description, p.prob) for p in res.top])
        self.note.setText(f"{res.model} · {1000 * res.seconds:.0f} ms · {res.note}")
        self.show_map.setEnabled(res.overlay is not None)
        self._map_toggled()

    def show_error(self, err) -> None:
        self.last = None
        self.heading.setText("Could not test this image")
        self.bars.set_rows([])
        self.domain_banner.show_warning(None)
        self.note.setText("")
        self.error_label.setText(err.message)
        self.error_label.show()

    def _map_toggled(self) -> None:
        self.settings.setValue("train/test/show_map", self.show_map.isChecked())
        res = self.last
        if res is None:
            return
        pixels = res.overlay if (self.show_map.isChecked() and res.overlay is not None) else res.image
        self.image_view.set_pixmap(array_to_pixmap(pixels))
