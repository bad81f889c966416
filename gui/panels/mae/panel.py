"""The MAE panel: hide patches, watch a masked autoencoder paint them back.

The mask-ratio slider, seed and mask mode re-run the reconstruction live (debounced; a stale
request is cancelled). Five views: original, masked, reconstruction, reconstruction with the
visible patches pasted back, per-patch error. The token-order strip shows the shuffle the
encoder sees and how ids_restore undoes it. "Pretrain" trains a new tiny MAE meanwhile.
"""
from __future__ import annotations

import os

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (QComboBox, QHBoxLayout, QLabel, QPushButton,
                               QSizePolicy, QSlider, QSpinBox, QTabWidget, QVBoxLayout, QWidget)

from engine.mae.jobs import DEFAULT_MAE, sample_index
from gui.image_input import ImageInput
from gui.panels.mae.patch_view import PatchView
from gui.panels.mae.pretrain import PretrainBox
from gui.panels.mae.token_strip import TokenStrip
from gui.qimage import array_to_pixmap
from gui.widgets.domain_banner import DomainBanner
from gui.widgets.error_label import ErrorLabel
from gui.widgets.model_picker import ModelPicker, open_and_model_row
from gui.widgets.sample_strip import SampleShelf, SampleStrip

VIEWS = (("original", "original"), ("masked", "masked"), ("reconstruction", "reconstruction"),
         ("pasted", "reconstruction + visible"), ("error", "error per patch"))
MODES = (("random", "Random"), ("grid", "Grid"), ("block", "Blocks"), ("painted", "Paint your own"))
DEBOUNCE_MS = 120
NOTE_STYLE = "background: #fff8e1; color: #6d4c00; border: 1px solid #f2d98b; border-radius: 4px; padding: 6px;"


class MAEPanel(ImageInput, QWidget):
    panel_id = "mae"
    photo_fallback = True

    def __init__(self, bridge, settings, parent: QWidget | None = None):
        super().__init__(parent)
        self.bridge, self.settings = bridge, settings
        self.current_path: str | None = None
        self.result = None  # the latest MAEResult shown
        self.painted: list[bool] | None = None  # painted mode: True = visible, row-major
        self.results_shown = 0
        self.setAcceptDrops(True)

        top = self._top_row()
        controls = self._controls_row()
        body = self._body()

        # ---- samples: Fashion-MNIST images (from the engine) and the scikit-image photos
        self.samples_holder = SampleShelf()
        self.samples_holder.chosen.connect(self.set_image)
        self.samples: SampleStrip | None = self.samples_holder.strip

        lay = QVBoxLayout(self)
        lay.addWidget(self.domain_banner)
        lay.addLayout(top)
        lay.addLayout(controls)
        lay.addLayout(body, 1)
        lay.addWidget(self.samples_holder)
        self._wire_and_load()

    def _top_row(self) -> QHBoxLayout:
        """Open image…, the model picker and its domain banner."""
        self.open_button = QPushButton("Open image…")
        self.open_button.clicked.connect(self._choose_file)
        self.model_picker = ModelPicker(self.bridge, "mae", self.settings, default=DEFAULT_MAE)
        self.model_picker.model_changed.connect(self._model_changed)
        self.domain_banner = DomainBanner(self.bridge, self.model_picker.combo)
        return open_and_model_row(self.open_button, self.model_picker)

    def _controls_row(self) -> QHBoxLayout:
        """Mask ratio, seed and mask mode (with Reset paint), restored from the settings."""
        self.ratio_slider = QSlider(Qt.Orientation.Horizontal)
        self.ratio_slider.setRange(0, 95)
        self.ratio_slider.setPageStep(5)
        self.ratio_slider.setValue(int(self.settings.value("mae/ratio", 75)))
        self.ratio_slider.setMinimumWidth(220)
        self.ratio_label = QLabel()
        self.ratio_label.setMinimumWidth(250)
        self.seed = QSpinBox()
        self.seed.setRange(0, 999_999)
        self.seed.setValue(int(self.settings.value("mae/seed", 0)))
        self.seed.setToolTip("The same seed gives the same mask")
        self.mode = QComboBox()
        for key, title in MODES:
            self.mode.addItem(title, key)
        self.mode.setCurrentIndex(max(0, self.mode.findData(self.settings.value("mae/mode", "random"))))
        self.reset_paint = QPushButton("Reset paint")
        self.reset_paint.setToolTip("Start the painted mask again from a random mask at the slider's ratio")
        self.reset_paint.clicked.connect(self._reset_paint)
        controls = QHBoxLayout()
        controls.addWidget(QLabel("Mask ratio:"))
        controls.addWidget(self.ratio_slider, 2)
        controls.addWidget(self.ratio_label)
        controls.addSpacing(12)
        controls.addWidget(QLabel("Seed:"))
        controls.addWidget(self.seed)
        controls.addSpacing(12)
        controls.addWidget(QLabel("Mask:"))
        controls.addWidget(self.mode)
        controls.addWidget(self.reset_paint)
        controls.addStretch(1)
        return controls

    def _views_row(self) -> QHBoxLayout:
        """The five views; the legend, metrics, note, error and token-strip widgets shown with them."""
        self.views: dict[str, PatchView] = {}
        views_row = QHBoxLayout()
        views_row.setSpacing(6)
        for key, title in VIEWS:
            view = PatchView(title, "Drop an image here" if key == "original" else "")
            view.file_dropped.connect(self.set_image)
            view.hovered.connect(self._hover)
            self.views[key] = view
            views_row.addWidget(view)
        self.views["original"].painted.connect(self._painted)
        self.views["original"].paint_finished.connect(self._request_now)
        self.heat_legend = QLabel("")
        self.heat_legend.setStyleSheet("color: palette(mid);")
        self.metrics = QLabel("")
        self.metrics.setWordWrap(True)
        self.metrics.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.note = QLabel("")
        self.note.setWordWrap(True)
        self.note.setStyleSheet(NOTE_STYLE)
        self.note.hide()
        self.error_label = ErrorLabel()
        self.strip = TokenStrip()
        self.strip.hovered.connect(self._hover)
        return views_row

    def _lower_tabs(self) -> None:
        """The token order and the pretraining, sharing the space under the views as tabs."""
        self.pretrain = PretrainBox(self.bridge, self.settings)
        self.pretrain.preview_index_for = self._preview_index
        self.pretrain.model_trained.connect(self._trained)
        self.pretrain.started.connect(lambda: self.lower_tabs.setCurrentWidget(self.pretrain))
        self.lower_tabs = QTabWidget()
        self.lower_tabs.addTab(self.strip, "Token order: shuffle → encoder → unshuffle")
        self.lower_tabs.addTab(self.pretrain, "Pretrain")
        self.lower_tabs.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def _body(self) -> QVBoxLayout:
        """The views over metrics and legend, note, error and the lower tabs."""
        views_row = self._views_row()
        self._lower_tabs()
        body = QVBoxLayout()
        body.addLayout(views_row, 1)
        info = QHBoxLayout()
        info.addWidget(self.metrics, 1)
        info.addWidget(self.heat_legend)
        body.addLayout(info)
        body.addWidget(self.note)
        body.addWidget(self.error_label)
        body.addWidget(self.lower_tabs)
        return body

    def _wire_and_load(self) -> None:
        """Connect the (already restored) controls, then ask the engine for the Fashion-MNIST samples."""
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(DEBOUNCE_MS)
        self._debounce.timeout.connect(self._request_now)
        self.ratio_slider.valueChanged.connect(self._ratio_changed)
        self.seed.valueChanged.connect(self._seed_changed)
        self.mode.currentIndexChanged.connect(self._mode_changed)
        self._update_controls()
        self.load_samples("mae_samples")

    # ------------------------------------------------------------------ state
    def model_id(self) -> str:
        return self.model_picker.current_id() or DEFAULT_MAE

    def mask_ratio(self) -> float:
        return self.ratio_slider.value() / 100.0

    def mode_key(self) -> str:
        return self.mode.currentData()

    def _grid(self) -> tuple[int, int] | None:
        return self.result.views.grid if self.result is not None else None

    def _preview_index(self) -> int:
        index = sample_index(self.current_path or "")
        return index if index is not None and index < 1000 else 0

    # ------------------------------------------------------------------ inputs
    def run_image(self) -> None:
        """Reconstruct `current_path` (ImageInput: Open, a drop or a sample)."""
        self._request_now()

    def _ratio_changed(self, value: int) -> None:
        self.settings.setValue("mae/ratio", value)
        self._update_controls()
        self._schedule()

    def _seed_changed(self, value: int) -> None:
        self.settings.setValue("mae/seed", value)
        self._schedule()

    def _mode_changed(self) -> None:
        mode = self.mode_key()
        self.settings.setValue("mae/mode", mode)
        if mode == "painted" and self.result is not None:
            self.painted = [not h for h in self.result.views.hidden.reshape(-1).tolist()]  # start from what is shown
        self._update_controls()
        self._schedule()

    def _reset_paint(self) -> None:
        self.painted = None  # the next request draws a random mask; its result seeds the painting
        self._request_now(reset_paint=True)

    def _painted(self, visible: list) -> None:
        self.painted = list(visible)
        self._update_controls()
        self._schedule()

    def _model_changed(self, _model_id: str = "") -> None:
        self.painted = None  # another model may have another patch grid
        self._request_now(reset_paint=True)

    def _trained(self, model_id: str) -> None:
        """A run finished or stopped: offer to look at its reconstructions."""
        self.pretrain.offer_model(model_id, self.use_model)

    def use_model(self, model_id: str) -> bool:
        """Select `model_id` in the picker (once the catalogue lists it); True when it is selected."""
        index = self.model_picker.combo.findData(model_id)
        if index < 0:
            self.model_picker.refresh()
            return False
        self.model_picker.combo.setCurrentIndex(index)
        return True

    def _update_controls(self) -> None:
        painted = self.mode_key() == "painted"
        self.ratio_slider.setEnabled(not painted)
        self.reset_paint.setVisible(painted)
        grid = self._grid()
        if painted and self.painted is not None and grid and len(self.painted) == grid[0] * grid[1]:
            n, k = len(self.painted), sum(self.painted)
            self.ratio_label.setText(f"painted: {100 * (n - k) / n:.0f}% hidden · encoder sees {k} of {n}")
        elif grid:
            n = grid[0] * grid[1]
            keep = max(1, min(n, int(n * (1 - self.mask_ratio()) + 0.5)))  # round((1 - r) L), as the engine
            self.ratio_label.setText(f"{self.ratio_slider.value()}% hidden · encoder sees {keep} of {n} patches")
        else:
            self.ratio_label.setText(f"{self.ratio_slider.value()}% hidden")
        self.views["original"].set_paintable(painted and self.painted is not None, self.painted)

    # ------------------------------------------------------------------ requests
    def _schedule(self) -> None:
        if self.current_path:
            self._debounce.start()  # restarts: a burst of slider moves sends one request

    def _request_now(self, reset_paint: bool = False) -> None:
        self._debounce.stop()
        if not self.current_path:
            return
        mode = self.mode_key()
        params = {"path": self.current_path, "model_id": self.model_id(), "mask_ratio": self.mask_ratio(),
                  "seed": self.seed.value(), "mode": mode}
        grid = self._grid()
        if mode == "painted":
            if reset_paint or self.painted is None or grid is None or len(self.painted) != grid[0] * grid[1]:
                params["mode"] = "random"  # draw a starting mask; its result seeds the painting
                self.painted = None
            else:
                params["painted"] = list(self.painted)
        self.submit_latest("mae", params, name=f"MAE {os.path.basename(self.current_path)} · {params['mode']} "
                                               f"{params['mask_ratio']:.2f}")

    # ------------------------------------------------------------------ results
    def show_result(self, res) -> None:
        self.result = res
        self.results_shown += 1
        v = res.views
        self.error_label.hide()
        self.domain_banner.show_warning(res.domain_warning)
        for key, _ in VIEWS:
            self.views[key].set_pixmap(array_to_pixmap(v.view(key)), v.grid)
        if self.mode_key() == "painted" and self.painted is None:
            self.painted = [not h for h in v.hidden.reshape(-1).tolist()]
        self.strip.set_order(v.ids_shuffle, v.ids_restore, v.len_keep, v.grid, self.views["original"].pixmap())
        h, w = v.grid
        parts = [f"<b>{v.len_keep}</b> of {h * w} patches ({h}×{w} of {v.patch_size} px) go to the encoder"]
        if v.masked_mse is not None:
            parts.append(f"hidden-patch MSE <b>{v.masked_mse:.4f}</b> vs {v.baseline_mse:.4f} for the "
                         f"mean of the visible patches ({v.verdict})")
        if v.visible_mse is not None:
            parts.append(f"visible-patch MSE {v.visible_mse:.4f} (not trained on)")
        timing = f"{1000 * res.seconds:.0f} ms"
        if res.load_seconds > 0.05:
            timing += f" + {res.load_seconds:.1f} s to load"
        parts.append(timing)
        self.metrics.setText(" · ".join(parts))
        self.heat_legend.setText(f"error: black 0 → yellow {v.error_max:.4f} · pale: visible patches (not in the loss)")
        self.note.setText(v.note)
        self.note.setVisible(v.norm_pix)
        self._update_controls()

    def _hover(self, patch: int) -> None:
        index = None if patch < 0 else patch
        for view in self.views.values():
            view.set_highlight(index)
        self.strip.set_highlight(index)
