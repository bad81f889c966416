"""The Generate panel: prompt → prior → image embedding → decoder, with every stage visible.

* Inputs: prompt, negative prompt, seed, steps, guidance, number of images, generator and prior.
* A live denoising preview (the decoder's current estimate) every few steps; Stop lands at
  the next sampler step.
* The intermediate image embedding: its CLIP similarity to each class prompt and the
  training images nearest to it.
* Variations (drop an image), interpolation between two prompts or images (a strip and an
  animated GIF), and a gallery of every image with its parameters, favourites and delete.
  Dropping a generated PNG anywhere on the panel restores its parameters.

The panel only sends requests and draws what comes back (engine.generate.jobs).
"""
from __future__ import annotations

import os
import random

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFileDialog, QFormLayout, QHBoxLayout,
                               QLabel, QLineEdit, QMessageBox, QProgressBar, QPushButton, QSpinBox, QSplitter,
                               QTabWidget, QToolButton, QVBoxLayout, QWidget)

from gui.dropping import FileDrops
from gui.latest import LatestRequest
from gui.panels.generate.widgets import ClassBars, GalleryList, ImageGrid
from gui.settings import restore_widgets, save_widgets
from gui.widgets.domain_banner import DomainBanner
from gui.widgets.error_label import ErrorLabel
from gui.widgets.image_view import ImageView
from gui.widgets.layouts import bold_label, column, form

CLASS_PROMPTS = ("t-shirt", "pair of trousers", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag",
                 "ankle boot")


def prompt_for(name: str) -> str:
    return f"a photo of {'an' if name[0] in 'aeiou' else 'a'} {name}"


class GeneratePanel(FileDrops, QWidget):
    panel_id = "generate"

    @property
    def job(self) -> int | None:
        """The generate or interpolate request in flight, if any."""
        return self.generating.job

    def __init__(self, bridge, settings, parent: QWidget | None = None):
        super().__init__(parent)
        self.bridge = bridge
        self.settings = settings
        self.generating = LatestRequest(bridge)  # the generate/interpolate request in flight
        self.job_kind: str | None = None
        self.result = None  # the last GenerateResult
        self.insights: tuple = ()
        self.previews = 0  # live previews received by the current job
        self.generators: dict[str, object] = {}
        self.interpolation = None  # the last InterpolationResult
        self.variation_source: str | None = None
        self.setAcceptDrops(True)
        self._build()
        self._restore_settings()
        self.refresh_models()
        self.refresh_gallery()
        bridge.catalogue_changed.connect(self.refresh_models)

    # ================================================================== layout
    def _build(self) -> None:
        """The controls, images and embedding columns over the gallery/variations/interpolation tabs."""
        left = self._build_controls()
        centre = self._build_images()
        right = self._build_embedding()
        top = QSplitter(Qt.Orientation.Horizontal)
        top.addWidget(left)
        top.addWidget(centre)
        top.addWidget(right)
        top.setStretchFactor(1, 3)
        top.setStretchFactor(2, 2)

        # ---------------------------------------------------------- tabs: gallery, variations, interpolation
        self.tabs = QTabWidget()
        self.tabs.addTab(self._build_gallery(), "Gallery")
        self.tabs.addTab(self._build_variations(), "Variations")
        self.tabs.addTab(self._build_interpolation(), "Interpolation")

        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(top)
        split.addWidget(self.tabs)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        lay = QVBoxLayout(self)
        lay.addWidget(self.domain_banner)
        lay.addWidget(split)

    def _build_inputs(self) -> QFormLayout:
        """The inputs form: model, prior, prompt, negative, seed, steps, guidance, images, size."""
        self.model_combo = QComboBox()
        self.model_combo.setMinimumWidth(260)
        self.model_combo.currentIndexChanged.connect(self._model_changed)
        self.domain_banner = DomainBanner(self.bridge, self.model_combo)
        self.prior_combo = QComboBox()
        self.prior_combo.addItem("Diffusion prior", "diffusion")
        self.prior_combo.addItem("Regression prior", "regression")
        self.prompt = QLineEdit()
        self.prompt.setPlaceholderText("a photo of a sneaker")
        self.prompt.returnPressed.connect(self.generate)
        self.negative = QLineEdit()
        self.negative.setPlaceholderText("optional: what to steer away from")
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        dice = QToolButton()
        dice.setText("Random")
        dice.setToolTip("a random seed")
        dice.clicked.connect(lambda: self.seed.setValue(random.randrange(0, 1_000_000)))
        seed_row = QHBoxLayout()
        seed_row.addWidget(self.seed, 1)
        seed_row.addWidget(dice)
        self.steps = QSpinBox()
        self.steps.setRange(1, 1000)
        self.steps.setValue(50)
        self.guidance = QDoubleSpinBox()
        self.guidance.setRange(0.0, 50.0)
        self.guidance.setSingleStep(0.5)
        self.guidance.setDecimals(1)
        self.guidance.setValue(3.0)
        self.guidance.setToolTip("classifier-free guidance: 1 = the conditional model alone; higher = closer to "
                                 "the embedding, less varied")
        self.count = QSpinBox()
        self.count.setRange(1, 16)
        self.count.setValue(4)
        self.size = QSpinBox()
        self.size.setRange(64, 1024)
        self.size.setSingleStep(64)
        self.size.setSuffix(" px")
        self.size.setValue(512)
        self.size.setToolTip("square output size (Kandinsky 2.2 only; the tiny unCLIP makes 28×28 images)")

        return form(("Model", self.model_combo), ("Prior", self.prior_combo), ("Prompt", self.prompt),
                    ("Negative", self.negative), ("Seed", seed_row), ("Steps", self.steps),
                    ("Guidance", self.guidance), ("Images", self.count), ("Size", self.size))

    def _build_chips(self) -> QWidget:
        """The class-prompt chips, two rows of five."""
        self.chips = []
        for name in CLASS_PROMPTS:
            b = QToolButton()
            b.setText(name.replace("pair of ", ""))
            b.setToolTip(prompt_for(name))
            b.setAutoRaise(True)
            b.clicked.connect(lambda _=False, n=name: self._use_prompt(prompt_for(n)))
            self.chips.append(b)
        chips_box = QWidget()
        cb = QVBoxLayout(chips_box)
        cb.setContentsMargins(0, 0, 0, 0)
        cb.setSpacing(0)
        for row_start in (0, 5):
            row = QHBoxLayout()
            row.setSpacing(2)
            for b in self.chips[row_start:row_start + 5]:
                row.addWidget(b)
            row.addStretch(1)
            cb.addLayout(row)
        return chips_box

    def _build_controls(self) -> QWidget:
        """The left column: inputs, class prompts, Generate/Stop, progress, status and errors."""
        inputs = self._build_inputs()
        chips_box = self._build_chips()

        self.generate_button = QPushButton("Generate")
        self.generate_button.setDefault(True)
        self.generate_button.clicked.connect(self.generate)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setEnabled(False)
        self.stop_button.clicked.connect(self.stop)
        buttons = QHBoxLayout()
        buttons.addWidget(self.generate_button, 1)
        buttons.addWidget(self.stop_button)
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.progress.setFormat("idle")
        self.progress.setValue(0)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.status.setStyleSheet("color: palette(mid);")
        self.error_label = ErrorLabel()

        left = column(inputs, QLabel("Class prompts:"), chips_box, buttons, self.progress, self.status,
                      self.error_label, 1, margins=0)
        left.setMinimumWidth(300)
        left.setMaximumWidth(380)
        return left

    def _build_images(self) -> QWidget:
        """The centre column: the generated images."""
        self.grid = ImageGrid("Write a prompt and press Generate\n\nor drop an image to make variations,\n"
                              "or drop a generated PNG to restore its settings")
        self.grid.clicked.connect(self._select_image)
        self.grid_title = bold_label("Images")
        return column(self.grid_title, (self.grid, 1), margins=0)

    def _build_embedding(self) -> QWidget:
        """The right column: the intermediate embedding as CLIP reads it, and its nearest training images."""
        self.embedding_title = bold_label("Image embedding")
        self.embedding_note = QLabel("After the prior: how CLIP reads the embedding the decoder will draw.")
        self.embedding_note.setWordWrap(True)
        self.embedding_note.setStyleSheet("color: palette(mid);")
        self.class_bars = ClassBars()
        self.neighbours_title = bold_label("Nearest training images")
        self.neighbours = ImageGrid("", columns=4, caption_h=16)
        self.neighbours.setMinimumSize(220, 150)
        right = column(self.embedding_title, self.embedding_note, self.class_bars, self.neighbours_title,
                       (self.neighbours, 1), margins=0)
        right.setMinimumWidth(260)
        return right

    def _build_gallery(self) -> QWidget:
        self.gallery = GalleryList()
        self.gallery.itemDoubleClicked.connect(lambda item: self.restore_from_png(item.data(Qt.ItemDataRole.UserRole)))
        self.favourite_button = QPushButton("★ Favourite")
        self.favourite_button.clicked.connect(self.toggle_favourite)
        self.delete_button = QPushButton("Delete")
        self.delete_button.clicked.connect(self.delete_selected)
        self.restore_button = QPushButton("Restore settings")
        self.restore_button.clicked.connect(
            lambda: self.gallery.selected_paths() and self.restore_from_png(self.gallery.selected_paths()[0]))
        self.favourites_only = QCheckBox("Favourites only")
        self.favourites_only.toggled.connect(self.refresh_gallery)
        self.gallery_info = QLabel("")
        self.gallery_info.setStyleSheet("color: palette(mid);")
        bar = QHBoxLayout()
        for w in (self.restore_button, self.favourite_button, self.delete_button, self.favourites_only):
            bar.addWidget(w)
        bar.addStretch(1)
        bar.addWidget(self.gallery_info)
        w = QWidget()
        lay = QVBoxLayout(w)
        lay.addLayout(bar)
        lay.addWidget(self.gallery, 1)
        return w

    def _build_variations(self) -> QWidget:
        self.variation_view = ImageView("Drop an image here\n\nits CLIP image embedding is decoded again\n"
                                        "from new noise (no prompt, no prior)")
        self.variation_view.setMinimumSize(160, 120)
        self.variation_view.file_dropped.connect(self.set_variation_source)
        self.variation_button = QPushButton("Make variations")
        self.variation_button.clicked.connect(self.make_variations)
        self.variation_button.setEnabled(False)
        open_button = QPushButton("Open image…")
        open_button.clicked.connect(self._choose_variation_source)
        info = QLabel("Uses the seed, steps, guidance and number of images above. Photos on a light background are "
                      "inverted to look like Fashion-MNIST (light clothes on black).")
        info.setWordWrap(True)
        info.setStyleSheet("color: palette(mid);")
        side = QVBoxLayout()
        side.addWidget(open_button)
        side.addWidget(self.variation_button)
        side.addWidget(info)
        side.addStretch(1)
        w = QWidget()
        lay = QHBoxLayout(w)
        lay.addWidget(self.variation_view, 1)
        lay.addLayout(side, 1)
        return w

    def _build_interpolation(self) -> QWidget:
        self.interp_a = QLineEdit()
        self.interp_a.setPlaceholderText("a photo of a sneaker  (or drop an image on this field)")
        self.interp_b = QLineEdit()
        self.interp_b.setPlaceholderText("a photo of an ankle boot")
        for field in (self.interp_a, self.interp_b):
            field.setAcceptDrops(False)  # drops go to the panel, which fills the field under the cursor
        self.frames = QSpinBox()
        self.frames.setRange(2, 32)
        self.frames.setValue(8)
        self.interp_button = QPushButton("Interpolate")
        self.interp_button.clicked.connect(self.interpolate)
        self.gif_button = QPushButton("Export GIF…")
        self.gif_button.setEnabled(False)
        self.gif_button.clicked.connect(self.export_gif)
        self.strip = ImageGrid("slerp between the two image embeddings, decoded from the same noise",
                               columns=32, caption_h=0)
        self.strip.setMinimumHeight(90)
        row = QHBoxLayout()
        row.addWidget(QLabel("From"))
        row.addWidget(self.interp_a, 2)
        row.addWidget(QLabel("to"))
        row.addWidget(self.interp_b, 2)
        row.addWidget(QLabel("Frames"))
        row.addWidget(self.frames)
        row.addWidget(self.interp_button)
        row.addWidget(self.gif_button)
        w = QWidget()
        lay = QVBoxLayout(w)
        lay.addLayout(row)
        lay.addWidget(self.strip, 1)
        return w

    # ================================================================== settings
    def _persisted(self) -> tuple:
        """The inputs kept between sessions: (settings key, widget, default)."""
        return (("generate/prompt", self.prompt, "a photo of a sneaker"), ("generate/negative", self.negative, ""),
                ("generate/seed", self.seed, 0), ("generate/steps", self.steps, 50),
                ("generate/guidance", self.guidance, 3.0), ("generate/count", self.count, 4),
                ("generate/size", self.size, 512), ("generate/prior", self.prior_combo, "diffusion"),
                ("generate/interp_a", self.interp_a, "a photo of a sneaker"),
                ("generate/interp_b", self.interp_b, "a photo of an ankle boot"), ("generate/frames", self.frames, 8))

    def _restore_settings(self) -> None:
        restore_widgets(self.settings, self._persisted())

    def _save_settings(self) -> None:
        save_widgets(self.settings, self._persisted())
        if self.model_id():
            self.settings.setValue("generate/model", self.model_id())

    # ================================================================== models
    def model_id(self) -> str | None:
        return self.model_combo.currentData()

    def refresh_models(self) -> None:
        self.bridge.submit("generate_models", {}, name="List generators", on_result=self._populate_models)

    def _populate_models(self, infos) -> None:
        current = self.model_id() or self.settings.value("generate/model", "fmnist-unclip-tiny")
        self.generators = {g.id: g for g in infos}
        self.model_combo.blockSignals(True)
        self.model_combo.clear()
        for g in infos:
            self.model_combo.addItem(g.name + ("" if g.ready else "   (not available)"), g.id)
            self.model_combo.setItemData(self.model_combo.count() - 1,
                                         g.description + ("" if g.ready else f"\n{g.detail}"),
                                         Qt.ItemDataRole.ToolTipRole)
        self.model_combo.setCurrentIndex(max(0, self.model_combo.findData(current)))
        self.model_combo.blockSignals(False)
        self._model_changed()

    def _model_changed(self) -> None:
        g = self.generators.get(self.model_id())
        if g is None:
            return
        self.negative.setEnabled(g.negative_prompt)
        self.prior_combo.setEnabled(len(g.priors) > 1)
        tiny = g.kind == "tiny"
        self.size.setEnabled(not tiny)
        self.interp_button.setEnabled(tiny)
        for chip in self.chips:
            chip.setEnabled(tiny)
        if not g.ready:
            self.status.setText(f"{g.name} is not available: {g.detail}")
        else:
            self.status.setText(g.description)

    # ================================================================== generate
    def params(self) -> dict:
        return {"prompt": self.prompt.text().strip(), "negative_prompt": self.negative.text().strip()
                if self.negative.isEnabled() else "", "seed": self.seed.value(), "steps": self.steps.value(),
                "guidance": self.guidance.value(), "n": self.count.value(),
                "model": self.model_id() or "fmnist-unclip-tiny", "prior": self.prior_combo.currentData(),
                # how many training images the neighbour view searches (an advanced setting)
                "neighbour_pool": int(self.settings.value("generate/neighbour_pool", 10000)),
                "size": self.size.value() if self.size.isEnabled() else None}

    def generate(self, image: str | None = None) -> None:
        """Start a generation (text, or variations of `image`); a running one is stopped first."""
        params = self.params()
        if image:
            params["image"] = image
            params["prompt"] = ""
        elif not params["prompt"]:
            self._show_error("Write a prompt first (or click one of the class prompts).")
            return
        self._save_settings()
        self.error_label.hide()
        self.previews = 0
        self.grid.selected = -1
        kind = "variations" if image else "generate"
        self._start(kind, f"{params['n']} image(s)")
        title = f"Variations of {os.path.basename(image)}" if image else f"“{params['prompt']}”"
        self.grid_title.setText(title)
        self.generating.submit(
            "generate", params, name=("Variations: " if image else "Generate: ") + (
                os.path.basename(image) if image else params["prompt"][:40]),
            on_result=self._on_result, on_error=self._on_error, on_progress=self._on_progress,
            on_partial=self._on_partial, on_cancelled=self._on_cancelled)
        self.job_kind = kind

    def _start(self, kind: str, what: str) -> None:
        self.generate_button.setEnabled(False)
        self.variation_button.setEnabled(False)
        self.interp_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        self.progress.setRange(0, 0)
        self.progress.setFormat(f"{kind}: starting…")

    def _finish(self) -> None:
        self.job_kind = None
        self.generate_button.setEnabled(True)
        self.variation_button.setEnabled(self.variation_source is not None)
        g = self.generators.get(self.model_id())
        self.interp_button.setEnabled(g is None or g.kind == "tiny")
        self.stop_button.setEnabled(False)
        self.progress.setRange(0, 100)

    def stop(self) -> None:
        if self.job is not None:
            self.generating.cancel()
            self.progress.setFormat("stopping…")

    def _on_progress(self, p) -> None:
        if p.fraction is None:
            self.progress.setRange(0, 0)
        else:
            self.progress.setRange(0, 100)
            self.progress.setValue(int(100 * p.fraction))
        self.progress.setFormat(p.message or "%p%")

    def _on_partial(self, preview) -> None:
        if preview.insights:
            self.insights = preview.insights
            self._show_insight(max(0, self.grid.selected))
        if preview.images is not None:
            target = self.strip if self.job_kind == "interpolate" else self.grid
            final = preview.step >= preview.total
            target.set_images(list(preview.images), dimmed=not final)
            self.previews += 1
            if not final:
                self.grid_title.setText(self.grid_title.text().split("  ·")[0] +
                                        f"  ·  denoising preview, step {preview.step}/{preview.total}")

    def _on_result(self, res) -> None:
        self._finish()
        self.result = res
        self.domain_banner.show_warning(res.domain_warning)
        self.insights = res.insights or self.insights
        self.grid.set_images([im.pixels for im in res.images], captions=[f"seed {im.seed}" for im in res.images],
                             paths=[im.path for im in res.images])
        self.grid_title.setText(self.grid_title.text().split("  ·")[0] + f"  ·  {len(res.images)} image(s) in "
                                f"{res.seconds:.1f} s")
        self.progress.setValue(100)
        self.progress.setFormat("done")
        self.status.setText(" ".join(res.notes) if res.notes else "Saved to the gallery. Drag an image out, or "
                                                                  "drop a gallery PNG back to restore its settings.")
        self._show_insight(0)
        self.grid.selected = 0
        self.grid.update()
        self.refresh_gallery()

    def _on_error(self, err) -> None:
        self._finish()
        self.progress.setValue(0)
        self.progress.setFormat("failed")
        self._show_error(err.message)

    def _on_cancelled(self) -> None:
        self._finish()
        self.progress.setValue(0)
        self.progress.setFormat("stopped")
        self.grid.dimmed = False
        self.grid.update()

    def _show_error(self, message: str) -> None:
        self.error_label.setText(message)
        self.error_label.show()

    # ================================================================== the embedding view
    def _select_image(self, i: int) -> None:
        self._show_insight(i)

    def _show_insight(self, i: int) -> None:
        if not self.insights:
            self.class_bars.set_rows([])
            self.neighbours.clear()
            return
        ins = self.insights[min(max(0, i), len(self.insights) - 1)]
        self.class_bars.set_rows([(c, float(p), float(s)) for c, p, s in
                                  zip(ins.classes, ins.class_probs, ins.class_cos)])
        text = f"Image {min(max(0, i), len(self.insights) - 1) + 1}: how CLIP reads the embedding the decoder draws."
        if ins.text_cos is not None:
            text += f" Cosine to the prompt's text embedding: {ins.text_cos:+.2f}."
        self.embedding_note.setText(text)
        self.neighbours.set_images(list(ins.neighbours), captions=list(ins.neighbour_labels))
        self.neighbours.setToolTip("\n".join(f"{lab}: cosine {cos:.3f}" for lab, cos in
                                             zip(ins.neighbour_labels, ins.neighbour_cos)))
        self.neighbours_title.setVisible(len(ins.neighbours) > 0)

    def _use_prompt(self, text: str) -> None:
        self.prompt.setText(text)
        self.generate()

    # ================================================================== variations
    def set_variation_source(self, path: str) -> None:
        from PySide6.QtGui import QPixmap

        pm = QPixmap(path)
        if pm.isNull():
            self._show_error(f"{os.path.basename(path)}: not an image Qt can show")
            return
        self.variation_source = path
        self.variation_view.set_pixmap(pm)
        self.variation_button.setEnabled(self.job is None)
        self.tabs.setCurrentIndex(1)

    def _choose_variation_source(self) -> None:
        start = self.settings.value("generate/last_dir", os.path.expanduser("~"))
        path, _ = QFileDialog.getOpenFileName(self, "Image for variations", start,
                                              "Images (*.png *.jpg *.jpeg *.webp *.bmp *.gif);;All files (*)")
        if path:
            self.settings.setValue("generate/last_dir", os.path.dirname(path))
            self.set_variation_source(path)

    def make_variations(self) -> None:
        if self.variation_source:
            self.generate(image=self.variation_source)

    # ================================================================== interpolation
    def _end(self, text: str) -> dict:
        text = text.strip()
        if os.path.isfile(text):
            return {"image": text}
        return {"prompt": text}

    def interpolate(self) -> None:
        a, b = self.interp_a.text().strip(), self.interp_b.text().strip()
        if not a or not b:
            self._show_error("Interpolation needs two prompts (or two image paths).")
            return
        self._save_settings()
        self.error_label.hide()
        self.tabs.setCurrentIndex(2)
        self._start("interpolate", f"{self.frames.value()} frames")
        self.generating.submit(
            "generate_interpolate", {"a": self._end(a), "b": self._end(b), "frames": self.frames.value(),
                                     "seed": self.seed.value(), "steps": self.steps.value(),
                                     "guidance": self.guidance.value(), "prior": self.prior_combo.currentData(),
                                     "model": self.model_id() or "fmnist-unclip-tiny",
                                     "neighbour_pool": int(self.settings.value("generate/neighbour_pool", 10000))},
            name=f"Interpolate: {a[:20]} → {b[:20]}", on_result=self._on_interpolated, on_error=self._on_error,
            on_progress=self._on_progress, on_partial=self._on_partial, on_cancelled=self._on_cancelled)
        self.job_kind = "interpolate"

    def _on_interpolated(self, res) -> None:
        self._finish()
        self.interpolation = res
        self.domain_banner.show_warning(res.domain_warning)
        self.insights = res.insights
        top = [ins.classes[int(ins.class_probs.argmax())] for ins in res.insights]
        self.strip.set_images(list(res.frames), captions=None)
        self.strip.setToolTip(" → ".join(top))
        self.gif_button.setEnabled(True)
        self.progress.setValue(100)
        self.progress.setFormat("done")
        self.status.setText(f"{len(res.frames)} frames in {res.seconds:.1f} s; CLIP reads them as: "
                            + " → ".join(top) + f". GIF: {res.gif_path}")

    def export_gif(self) -> None:
        if self.interpolation is None:
            return
        start = os.path.join(self.settings.value("generate/last_dir", os.path.expanduser("~")), "interpolation.gif")
        path, _ = QFileDialog.getSaveFileName(self, "Export animated GIF", start, "GIF (*.gif)")
        if path:
            self.export_gif_to(path)

    def export_gif_to(self, path: str) -> None:
        self.settings.setValue("generate/last_dir", os.path.dirname(path))
        self.bridge.submit("generate_export_gif", {"source": self.interpolation.gif_path, "dest": path},
                           name="Export GIF", on_result=lambda p: self.status.setText(f"GIF written to {p}"),
                           on_error=self._on_error)

    # ================================================================== gallery
    def refresh_gallery(self) -> None:
        self.bridge.submit("generate_gallery", {"action": "list", "favourites_only": self.favourites_only.isChecked()},
                           name="Gallery", on_result=self._show_gallery)

    def _show_gallery(self, items) -> None:
        self.gallery.set_items(items)
        favs = sum(1 for i in items if i.favourite)
        self.gallery_info.setText(f"{len(items)} image(s) · {favs} favourite(s)")

    def toggle_favourite(self) -> None:
        items = self.gallery.selectedItems()
        if not items:
            return
        value = not all(i.data(Qt.ItemDataRole.UserRole + 1) for i in items)
        for item in items:
            self.bridge.submit("generate_gallery", {"action": "favourite", "path": item.data(Qt.ItemDataRole.UserRole),
                                                    "value": value}, name="Favourite", on_error=self._on_error)
        self.refresh_gallery()

    def delete_selected(self, confirm: bool = True) -> None:
        paths = self.gallery.selected_paths()
        if not paths:
            return
        if confirm and QMessageBox.question(
                self, "Delete images", f"Delete {len(paths)} image(s) from the gallery? This cannot be undone.") \
                != QMessageBox.StandardButton.Yes:
            return
        for path in paths:
            self.bridge.submit("generate_gallery", {"action": "delete", "path": path}, name="Delete image",
                               on_error=self._on_error)
        self.refresh_gallery()

    # ================================================================== drag a PNG back
    def restore_from_png(self, path: str) -> None:
        self.bridge.submit("generate_gallery", {"action": "read", "path": path}, name="Read PNG settings",
                           on_result=self.apply_params, on_error=lambda err: self._not_generated(path, err))

    def _not_generated(self, path: str, err) -> None:
        # not one of ours: offer it for variations instead
        self.set_variation_source(path)
        self.status.setText(f"{os.path.basename(path)} carries no generation settings; it is ready for variations.")

    def apply_params(self, params: dict) -> None:
        """Put a generated image's settings back into the inputs (n = 1 regenerates that image)."""
        if params.get("model") and self.model_combo.findData(params["model"]) >= 0:
            self.model_combo.setCurrentIndex(self.model_combo.findData(params["model"]))
        if params.get("prompt") is not None:
            self.prompt.setText(str(params["prompt"]))
        self.negative.setText(str(params.get("negative_prompt") or ""))
        if "seed" in params:
            self.seed.setValue(int(params["seed"]))
        if "steps" in params:
            self.steps.setValue(int(params["steps"]))
        if "guidance" in params:
            self.guidance.setValue(float(params["guidance"]))
        if params.get("width"):
            self.size.setValue(int(params["width"]))
        if params.get("prior"):
            self.prior_combo.setCurrentIndex(max(0, self.prior_combo.findData(params["prior"])))
        self.count.setValue(1)
        self._save_settings()
        self.status.setText(f"Settings restored (seed {params.get('seed')}); Generate makes that image again.")

    def file_drop_at(self, path: str, pos) -> None:
        target = self.childAt(pos)
        if target in (self.interp_a, self.interp_b):
            target.setText(path)
            return
        if path.lower().endswith(".png"):
            self.restore_from_png(path)
        else:
            self.set_variation_source(path)
