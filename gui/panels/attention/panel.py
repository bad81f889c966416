"""The Attention panel: what a ViT (or a CNN) looks at, for one image.

Raw attention of any block × head (or all heads as small multiples, or the heads fused by
mean/max/min), click a patch for its own attention row, attention rollout with a discard
ratio, gradient rollout and Grad-CAM for a class from the top-k, EigenCAM; overlays with
opacity and colour map, exported as PNG; and the model's token picture spelled out.

Every map is computed by the engine's "attention" job (which caches the captured forward,
so changing block, head or patch answers in milliseconds); this panel only draws results.
One request at a time: a new one cancels the one in flight.
"""
from __future__ import annotations

import os

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFileDialog, QFormLayout, QFrame, QHBoxLayout, QLabel,
                               QLineEdit, QProgressBar, QPushButton, QScrollArea, QSlider, QSplitter,
                               QStackedWidget, QVBoxLayout, QWidget)

from engine import catalogue
from engine.attention import METHODS
from engine.attention.overlay import COLORMAPS
from gui.dropping import FileDrops, choose_image
from gui.latest import LatestRequest
from gui.panels.attention.heads_grid import HeadsGrid
from gui.panels.attention.overlay_view import ColourBar, OverlayView
from gui.samples import sample_photos
from gui.settings import restore_widgets, save_widgets
from gui.widgets.domain_banner import DomainBanner
from gui.widgets.error_label import ErrorLabel
from gui.widgets.layouts import bold_label, column, form
from gui.widgets.model_picker import ModelPicker, open_and_model_row
from gui.widgets.sample_strip import SampleStrip
from gui.widgets.topk_bars import TopKBars

DEFAULT_MODEL = "fmnist-vit-tiny"
FUSIONS = ("mean", "max", "min")
QUERY_METHODS = ("raw", "rollout", "gradrollout")  # methods that read one token's row


def _section(text: str) -> QLabel:
    label = QLabel(text)
    label.setStyleSheet("font-weight: 600; margin-top: 6px;")
    return label


class AttentionPanel(FileDrops, QWidget):
    panel_id = "attention"

    def __init__(self, bridge, settings, parent: QWidget | None = None):
        super().__init__(parent)
        self.bridge = bridge
        self.settings = settings
        self.current_path: str | None = None
        self.result = None  # the latest AttentionResult shown
        self.query: int | None = None  # clicked patch (row-major), None = [CLS]
        self.latest = LatestRequest(bridge)  # the map request in flight
        self._spec_key: tuple | None = None  # (model id, depth, heads) the selectors were built for
        self._class_choice: int | None = None  # None: the top-1 class
        self.setAcceptDrops(True)

        top = self._top_row()
        left = self._picture_column()
        right = self._controls_column()
        split = QSplitter(Qt.Orientation.Horizontal)
        split.setChildrenCollapsible(False)
        split.addWidget(left)
        split.addWidget(right)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)

        lay = QVBoxLayout(self)
        lay.addWidget(self.domain_banner)
        lay.addLayout(top)
        lay.addWidget(split, 1)
        self._restore_and_wire()

    def _top_row(self) -> QHBoxLayout:
        """Open image…, the model picker and its domain banner."""
        self.open_button = QPushButton("Open image…")
        self.open_button.clicked.connect(self._choose_file)
        self.model_picker = ModelPicker(self.bridge, "attention", self.settings, default=DEFAULT_MODEL)
        self.model_picker.model_changed.connect(self._model_changed)
        self.domain_banner = DomainBanner(self.bridge, self.model_picker.combo)
        return open_and_model_row(self.open_button, self.model_picker)

    def _picture_column(self) -> QWidget:
        """The picture (single map or heads grid), colour bar, hover and token lines, sample strips."""
        self.view = OverlayView("Drop an image here\nor pick a sample below\n\n"
                                "Hover a patch to highlight it; click it to see its own attention row")
        self.view.file_dropped.connect(self.show_path)
        self.view.patch_clicked.connect(self.click_patch)
        self.view.hovered.connect(self._hovered)
        self.heads = HeadsGrid()
        self.heads.patch_clicked.connect(self.click_patch)
        self.heads.hovered.connect(self._hovered)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.view)
        self.stack.addWidget(self.heads)
        self.hover_label = QLabel(" ")
        self.hover_label.setStyleSheet("color: palette(mid);")
        self.colour_bar = ColourBar()
        self.token_label = QLabel("")
        self.token_label.setWordWrap(True)
        self.token_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        mono = QFont("monospace")
        mono.setStyleHint(QFont.StyleHint.Monospace)
        self.token_label.setFont(mono)
        self.token_label.setStyleSheet("background: palette(alternate-base); border-radius: 4px; padding: 6px;")
        self.token_label.setToolTip("The model's token picture: image → patches → tokens → heads → blocks")
        self.token_label.hide()
        # The sample strips sit under the picture only, so the controls and the top-5 get the full height.
        self.photo_strip = SampleStrip(sample_photos(), "Photos:")
        self.photo_strip.chosen.connect(self.show_path)
        self.fmnist_strip: SampleStrip | None = None
        samples = QWidget()
        self.samples_row = QVBoxLayout(samples)
        self.samples_row.setContentsMargins(0, 0, 0, 0)
        self.samples_row.addWidget(self.photo_strip)
        samples_scroll = QScrollArea()  # ten Fashion-MNIST samples are wider than the picture
        samples_scroll.setWidget(samples)
        samples_scroll.setWidgetResizable(True)
        samples_scroll.setFrameShape(QFrame.Shape.NoFrame)
        samples_scroll.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        samples_scroll.setFixedHeight(122)
        return column((self.stack, 1), self.colour_bar, self.hover_label, self.token_label, samples_scroll,
                      margins=0)

    def _map_controls(self) -> tuple[QHBoxLayout, QHBoxLayout]:
        """The map's selectors: method, block, head, fusion, discard ratio, class, text, query token."""
        self.method_combo = QComboBox()
        for key, (title, _, _) in METHODS.items():
            self.method_combo.addItem(title, key)
        self.layer_combo = QComboBox()
        self.layer_combo.setToolTip("The transformer block whose attention (or input tokens, for the CAMs) is shown")
        self.head_combo = QComboBox()
        self.all_heads = QCheckBox("All heads side by side")
        self.fusion_combo = QComboBox()
        for f in FUSIONS:
            self.fusion_combo.addItem(f, f)
        self.fusion_combo.setToolTip("How the heads are combined: their mean, or the strongest/weakest head per entry")
        self.discard_slider = QSlider(Qt.Orientation.Horizontal)
        self.discard_slider.setRange(0, 99)
        self.discard_slider.setToolTip("Rollout: the share of each block's weakest attention set to zero before "
                                       "the blocks are multiplied (jacobgil/vit-explain)")
        self.discard_label = QLabel("0.90")
        discard_row = QHBoxLayout()
        discard_row.addWidget(self.discard_slider, 1)
        discard_row.addWidget(self.discard_label)
        self.class_combo = QComboBox()
        self.class_combo.setToolTip("The class the gradient methods explain, from the model's top-5")
        self.text_edit = QLineEdit()
        self.text_edit.setPlaceholderText("a photo of a cat")
        self.text_edit.setToolTip("CLIP: the maps explain the image's similarity to this text")
        self.query_label = QLabel("[CLS]")
        self.cls_button = QPushButton("Back to [CLS]")
        self.cls_button.clicked.connect(self.reset_query)
        query_row = QHBoxLayout()
        query_row.addWidget(self.query_label, 1)
        query_row.addWidget(self.cls_button)
        return discard_row, query_row

    def _display_controls(self) -> None:
        """The overlay's look: opacity, colour map, smoothing, and Export PNG…."""
        self.opacity_slider = QSlider(Qt.Orientation.Horizontal)
        self.opacity_slider.setRange(0, 100)
        self.cmap_combo = QComboBox()
        for name in COLORMAPS:
            self.cmap_combo.addItem(name, name)
        self.smooth_check = QCheckBox("Smooth upsampling")
        self.smooth_check.setToolTip("Off: one flat block per patch, as the model sees it")
        self.export_button = QPushButton("Export PNG…")
        self.export_button.setEnabled(False)
        self.export_button.clicked.connect(self.export_png)

    def _busy_row(self) -> QHBoxLayout:
        """The busy bar with its Stop button, and the status line under them."""
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)
        self.busy.setMaximumHeight(8)
        self.busy.setTextVisible(False)
        self.busy.hide()
        self.stop_button = QPushButton("Stop")
        self.stop_button.hide()
        self.stop_button.clicked.connect(self.stop)
        self.status_label = QLabel("")
        self.status_label.setStyleSheet("color: palette(mid);")
        busy_row = QHBoxLayout()
        busy_row.addWidget(self.busy, 1)
        busy_row.addWidget(self.stop_button)
        return busy_row

    def _controls_column(self) -> QWidget:
        """The right column: map and display forms, busy row, status and notes (scrolling), then the top-5."""
        discard_row, query_row = self._map_controls()
        self._display_controls()
        self.form = form(("Method:", self.method_combo), ("Block:", self.layer_combo), ("Head:", self.head_combo),
                         ("", self.all_heads), ("Head fusion:", self.fusion_combo), ("Discard ratio:", discard_row),
                         ("Class:", self.class_combo), ("Text:", self.text_edit), ("Query token:", query_row))
        self.form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        display = form(("Opacity:", self.opacity_slider), ("Colour map:", self.cmap_combo), ("", self.smooth_check),
                       ("", self.export_button))
        busy_row = self._busy_row()

        self.heading = bold_label("Top-5 classes")
        self.bars = TopKBars()
        self.note_label = QLabel("")
        self.note_label.setWordWrap(True)
        self.error_label = ErrorLabel(padding=8)

        # The controls scroll if they must; the top-5 stays under them, always in full view.
        side = column(_section("Map"), self.form, _section("Display"), display, busy_row, self.status_label,
                      self.error_label, self.note_label, 1)
        scroll = QScrollArea()
        scroll.setWidget(side)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setMinimumHeight(160)
        right = column((scroll, 1), self.heading, self.bars, margins=0)
        right.layout().setContentsMargins(8, 0, 0, 0)
        right.setMinimumWidth(360)
        right.setMaximumWidth(560)
        return right

    def _restore_and_wire(self) -> None:
        """Restore the saved controls, then connect their signals and ask for the Fashion-MNIST samples."""
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(150)
        self._debounce.timeout.connect(self.request)

        self._restore_settings()
        self.method_combo.currentIndexChanged.connect(self._method_changed)
        self.layer_combo.currentIndexChanged.connect(self._changed)
        self.head_combo.currentIndexChanged.connect(self._changed)
        self.all_heads.toggled.connect(self._changed)
        self.fusion_combo.currentIndexChanged.connect(self._changed)
        self.discard_slider.valueChanged.connect(self._discard_moved)
        self.class_combo.activated.connect(self._class_chosen)
        self.text_edit.returnPressed.connect(self._changed)
        self.opacity_slider.valueChanged.connect(self._style_changed)
        self.cmap_combo.currentIndexChanged.connect(self._style_changed)
        self.smooth_check.toggled.connect(self._style_changed)
        self._update_controls()
        self._style_changed()
        self.bridge.submit("attention_samples", {}, name="Fashion-MNIST samples", on_result=self._add_fmnist_samples)

    # ------------------------------------------------------------------ settings
    def _persisted(self) -> tuple:
        """The controls kept between sessions: (settings key, widget, default)."""
        return (("attention/method", self.method_combo, "raw"), ("attention/fusion", self.fusion_combo, "mean"),
                ("attention/discard", self.discard_slider, 90), ("attention/opacity", self.opacity_slider, 60),
                ("attention/cmap", self.cmap_combo, "inferno"), ("attention/smooth", self.smooth_check, "true"),
                ("attention/all_heads", self.all_heads, "false"))

    def _restore_settings(self) -> None:
        restore_widgets(self.settings, self._persisted())
        self.discard_label.setText(f"{self.discard_slider.value() / 100:.2f}")

    def _save_settings(self) -> None:
        save_widgets(self.settings, self._persisted())

    # ------------------------------------------------------------------ state helpers
    def model_id(self) -> str:
        return self.model_picker.current_id() or DEFAULT_MODEL

    def method(self) -> str:
        return self.method_combo.currentData()

    def _entry(self):
        try:
            return catalogue.get(self.model_id())
        except Exception:  # noqa: BLE001 - a model that vanished from the catalogue
            return None

    def _is_cnn(self) -> bool:
        """Known once the engine has answered for this model (the catalogue cannot tell a
        trained run's architecture); until then every method is offered."""
        return self.result is not None and self.result.model_id == self.model_id() and not self.result.spec.is_vit

    def _is_clip(self) -> bool:
        e = self._entry()
        return e is not None and e.family == "clip"

    def _update_controls(self) -> None:
        """Show the controls the chosen method and model use; grey out what does not apply."""
        m = self.method()
        cnn = self._is_cnn()
        model = self.method_combo.model()
        for i in range(self.method_combo.count()):
            needs_attention = METHODS[self.method_combo.itemData(i)][2]
            model.item(i).setEnabled(not (cnn and needs_attention))
        raw = m == "raw"
        rows = {
            self.layer_combo: (m in ("raw", "gradcam", "eigencam")) and not cnn,
            self.head_combo: raw,
            self.all_heads: raw,
            self.fusion_combo: (raw and self.head_combo.currentIndex() <= 0 and not self.all_heads.isChecked())
            or m == "rollout",
            self.discard_slider: m in ("rollout", "gradrollout"),
            self.class_combo: METHODS[m][1] and not self._is_clip(),
            self.text_edit: METHODS[m][1] and self._is_clip(),
            self.query_label: m in QUERY_METHODS and not cnn,
        }
        for widget, on in rows.items():
            self._set_row_visible(widget, on)
        self.head_combo.setEnabled(not self.all_heads.isChecked())
        self.cls_button.setEnabled(self.query is not None)
        self.view.clickable = not cnn
        self.stack.setCurrentWidget(self.heads if raw and self.all_heads.isChecked() and not cnn else self.view)

    def _form_row(self, widget) -> int:
        for row in range(self.form.rowCount()):
            item = self.form.itemAt(row, QFormLayout.ItemRole.FieldRole)
            if item is None:
                continue
            if item.widget() is widget:
                return row
            lay = item.layout()
            if lay is not None and any(lay.itemAt(i).widget() is widget for i in range(lay.count())):
                return row
        return -1

    def _set_row_visible(self, widget, on: bool) -> None:
        row = self._form_row(widget)
        if row >= 0:
            self.form.setRowVisible(row, on)

    # ------------------------------------------------------------------ requests
    def show_path(self, path: str) -> None:
        """Show `path` (from Open, a drop or a sample) and draw the current map."""
        self.current_path = path
        self.query = None
        self._class_choice = None
        self.request(cnn_fallback=True)

    def request(self, cnn_fallback: bool = False) -> None:
        if not self.current_path:
            return
        m = self.method()
        layer = self.layer_combo.currentData()
        head = self.head_combo.currentData() if m == "raw" and not self.all_heads.isChecked() else None
        params = {
            "path": self.current_path, "model_id": self.model_id(), "method": m,
            "layer": layer, "head": head, "fusion": self.fusion_combo.currentData(),
            "discard_ratio": self.discard_slider.value() / 100.0,
            "query": self.query if m in QUERY_METHODS else None,
            "class_index": self._class_choice, "all_heads": m == "raw" and self.all_heads.isChecked(),
            "text": self.text_edit.text().strip() or None, "cnn_fallback": cnn_fallback,
        }
        self.busy.show()
        self.stop_button.show()
        self.status_label.setText(f"{METHODS[m][0]} · {os.path.basename(self.current_path)}…")
        self.latest.submit(
            "attention", params, name=f"Attention map of {os.path.basename(self.current_path)}",
            on_result=self._show_result, on_error=self._show_error, on_progress=self._progress,
            on_cancelled=self._cancelled)

    def stop(self) -> None:
        self.latest.cancel()

    def _progress(self, p) -> None:
        if p.message:
            self.status_label.setText(p.message[:1].upper() + p.message[1:] + "…")

    def _cancelled(self) -> None:
        self._idle("Stopped.")

    def _idle(self, text: str = "") -> None:
        self.busy.hide()
        self.stop_button.hide()
        self.status_label.setText(text)

    # ------------------------------------------------------------------ control changes
    def _model_changed(self, _model_id: str = "") -> None:
        self._class_choice = None
        self.query = None
        self._update_strips()
        self._update_controls()
        self.request(cnn_fallback=True)  # a CNN answers with Grad-CAM if the method needs attention

    def _method_changed(self) -> None:
        if self.method() not in QUERY_METHODS:
            self.query = None
        self._update_controls()
        self._save_settings()
        self.request()

    def _changed(self) -> None:
        self._update_controls()
        self._save_settings()
        self.request()

    def _discard_moved(self, value: int) -> None:
        self.discard_label.setText(f"{value / 100:.2f}")
        self._save_settings()
        if self.method() in ("rollout", "gradrollout"):
            self._debounce.start()

    def _class_chosen(self, index: int) -> None:
        self._class_choice = self.class_combo.itemData(index)
        self.request()

    def _style_changed(self) -> None:
        opacity = self.opacity_slider.value() / 100.0
        cmap = self.cmap_combo.currentData()
        smooth = self.smooth_check.isChecked()
        self.view.set_style(opacity, cmap, smooth)
        self.heads.set_style(opacity, cmap, smooth)
        self.colour_bar.set_values(cmap=cmap)
        self._save_settings()

    def click_patch(self, index: int) -> None:
        """A patch was clicked: show that token's own attention row."""
        if self.result is None or not self.result.spec.is_vit:
            return
        self.query = index
        if self.method() not in QUERY_METHODS:
            self.method_combo.setCurrentIndex(self.method_combo.findData("raw"))  # requests
            return
        self._update_controls()
        self.request()

    def reset_query(self) -> None:
        self.query = None
        self._update_controls()
        self.request()

    def _hovered(self, index: int) -> None:
        if index < 0 or self.result is None:
            self.hover_label.setText(" ")
            return
        gh, gw = self.result.grid
        value = self.view.value_at(index) if self.stack.currentWidget() is self.view else None
        v = f" · {value:.2f} of the peak" if value is not None else ""
        self.hover_label.setText(f"Patch row {index // gw + 1}, column {index % gw + 1} (token {index + self.result.spec.prefix})"
                                 f"{v} — click to see its own attention row")

    # ------------------------------------------------------------------ results
    def _show_result(self, res) -> None:
        self.result = res
        took = "under 1 ms" if res.seconds < 0.001 else (
            f"{1000 * res.seconds:.0f} ms" if res.seconds < 1 else f"{res.seconds:.1f} s")
        self._idle(f"Computed in {took}" + (f" (+{res.load_seconds:.1f} s to load the model)"
                                            if res.load_seconds > 0.05 else ""))
        self.error_label.hide()
        self.domain_banner.show_warning(res.domain_warning)
        spec = res.spec
        if res.method != self.method():  # the engine fell back to Grad-CAM for a CNN
            self.method_combo.blockSignals(True)
            self.method_combo.setCurrentIndex(self.method_combo.findData(res.method))
            self.method_combo.blockSignals(False)
            self._save_settings()
        self._build_selectors(res)
        self._fill_classes(res)
        self.query = res.query
        self.query_label.setText("[CLS]" if res.query is None else
                                 f"patch row {res.query // spec.grid[1] + 1}, column {res.query % spec.grid[1] + 1}")
        opacity, cmap, smooth = self.opacity_slider.value() / 100, self.cmap_combo.currentData(), self.smooth_check.isChecked()
        if len(res.maps) > 1:
            self.heads.set_maps(res.image, res.maps, res.grid, opacity, cmap, smooth, res.query)
        self.view.set_image(res.image)
        self.view.set_map(res.maps[0].values if len(res.maps) == 1 else None, res.grid)
        self.view.set_selected(res.query)
        self.export_button.setEnabled(True)
        m = res.maps[0]
        self.note_label.setText(f"<b>{m.title}</b> (peak {m.peak:.3g})<br>{res.note}" if len(res.maps) == 1
                                else f"<b>Block {res.layer + 1}, all {len(res.maps)} heads</b><br>{res.note}")
        self.token_label.setText(res.token_view)
        self.token_label.show()
        self.colour_bar.set_values(peak=m.peak if len(res.maps) == 1 else max(x.peak for x in res.maps),
                                   caption="0 … the map's peak" + (" (each head scaled to its own peak)"
                                                                   if len(res.maps) > 1 else ""))
        if res.top:
            self.heading.setText(f"Top-{len(res.top)} classes · {os.path.basename(res.path)}")
            self.bars.set_rows([(p.label, p.description, p.prob) for p in res.top])
        else:
            self.heading.setText("No classes: this model gives an embedding")
            self.bars.set_rows([])
        self._update_controls()

    def _build_selectors(self, res) -> None:
        spec = res.spec
        key = (res.model_id, spec.depth, spec.num_heads, spec.is_vit)
        if key == self._spec_key:
            return
        self._spec_key = key
        for combo in (self.layer_combo, self.head_combo):
            combo.blockSignals(True)
            combo.clear()
        self.layer_combo.addItem(f"Last (block {spec.depth})" if spec.is_vit else "Last feature map", None)
        for i in range(spec.depth):
            self.layer_combo.addItem(f"Block {i + 1}", i)
        self.head_combo.addItem("All heads, fused", None)
        for h in range(spec.num_heads):
            self.head_combo.addItem(f"Head {h + 1} of {spec.num_heads}", h)
        for combo in (self.layer_combo, self.head_combo):
            combo.blockSignals(False)

    def _fill_classes(self, res) -> None:
        self.class_combo.blockSignals(True)
        self.class_combo.clear()
        for p in res.top:
            self.class_combo.addItem(f"{p.label}  ({100 * p.prob:.1f}%)", p.index)
        if res.class_index is not None and self.class_combo.findData(res.class_index) < 0:
            self.class_combo.addItem(res.class_label, res.class_index)
        target = res.class_index if res.class_index is not None else self._class_choice
        self.class_combo.setCurrentIndex(max(0, self.class_combo.findData(target)))
        self.class_combo.blockSignals(False)

    def _show_error(self, err) -> None:
        self._idle("")
        self.error_label.setText(err.message)
        self.error_label.show()

    # ------------------------------------------------------------------ export
    def export_png(self, path: str | None = None) -> str | None:
        """Write the overlay (or all heads) at the image's resolution; returns the path written."""
        if self.result is None:
            return None
        if path is None:
            start = self.settings.value("attention/export_dir", os.path.expanduser("~"))
            stem = os.path.splitext(os.path.basename(self.result.path))[0]
            name = f"{stem}-{self.result.model_id}-{self.result.method}.png"
            path, _ = QFileDialog.getSaveFileName(self, "Export the map as PNG", os.path.join(start, name),
                                                  "PNG image (*.png)")
            if not path:
                return None
            self.settings.setValue("attention/export_dir", os.path.dirname(path))
        image = self.heads.render_overlay() if self.stack.currentWidget() is self.heads else self.view.render_overlay()
        if not image.save(path, "PNG"):
            self.error_label.setText(f"Could not write {path}")
            self.error_label.show()
            return None
        self.status_label.setText(f"Exported {os.path.basename(path)}")
        return path

    # ------------------------------------------------------------------ samples and files
    def _add_fmnist_samples(self, samples) -> None:
        if not samples:
            return
        self.fmnist_strip = SampleStrip(samples, "Fashion-MNIST:")
        self.fmnist_strip.chosen.connect(self.show_path)
        self.samples_row.addWidget(self.fmnist_strip)
        self._update_strips()

    def _update_strips(self) -> None:
        e = self._entry()
        grayscale = e is not None and e.preprocess.grayscale
        if self.fmnist_strip is not None:
            self.fmnist_strip.setVisible(grayscale)
            self.photo_strip.setVisible(not grayscale and bool(self.photo_strip.paths()))

    def _choose_file(self) -> None:
        path = choose_image(self, self.settings, "attention/last_dir")
        if path:
            self.show_path(path)

    def file_drop(self, path: str) -> None:
        self.show_path(path)
