"""The Train panel: choose data, a recipe, a backbone and settings; Start / Stop / Resume;
watch the curves; keep, compare, resume and use the runs.

Everything runs in the engine's "train" job (the same as `python main.py train`); this
panel only sends requests and draws what comes back. Recipes are whatever
engine.train.recipes.RECIPES registers; their settings come from the engine.
"""
from __future__ import annotations

import json
import os
import re
import time

from PySide6.QtCore import Qt, QTimer, QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (QComboBox, QFileDialog, QFormLayout, QGroupBox, QHBoxLayout, QLabel, QLineEdit,
                               QMenu, QMessageBox, QProgressBar, QPushButton, QScrollArea, QSplitter, QTabWidget,
                               QToolButton, QVBoxLayout, QWidget)

from engine.export import EXPORTABLE
from engine.train.recipes import RECIPES
from gui.jobs_dock import format_seconds
from gui.latest import LatestRequest
from gui.panels.train.plots import LivePlots
from gui.panels.train.dataset_getter import FashionMnistGetter
from gui.panels.train.preview import PreviewStrip
from gui.panels.train.results import ResultsView
from gui.panels.train.runs_table import RunsTable
from gui.panels.train.settings_form import SettingsForm
from gui.panels.train.test_model import TestModelView
from gui.widgets.error_label import ErrorLabel

DATASET_KINDS = (("fashion-mnist", "Fashion-MNIST (70,000 clothes)"),
                 ("classes", "Folder of class folders"),
                 ("unlabelled", "Unlabelled image folder"),
                 ("captions", "Image-caption pairs (.txt beside each image, or a CSV)"))
RECIPE_TITLES = {"supervised": "Supervised ViT", "moco_v2": "MoCo v2 (self-supervised)",
                 "moco_v3": "MoCo v3 (self-supervised ViT)", "simclr": "SimCLR (self-supervised, in-batch negatives)",
                 "instdisc": "InstDisc (self-supervised, memory bank)", "linear_probe": "Linear probe of a backbone",
                 "finetune": "Fine-tune a backbone", "mae": "MAE pretraining", "clip": "CLIP (image-text)",
                 "lit": "LiT (locked text tower)", "albef": "ALBEF (align before fuse: ITC + ITM)",
                 "unclip_prior": "unCLIP prior", "unclip_decoder": "unCLIP decoder",
                 "pseudo_label": "Pseudo-labels (self-training on unlabelled images)",
                 "vilt": "ViLT (one transformer over words and patches: ITM)"}
#: Panels a model can be sent to from the runs list ("Use in…").
PANEL_TITLES = {"classify": "Classify", "attention": "Attention", "mae": "MAE", "search": "Search",
                "generate": "Generate", "match": "Match",
                "train": "Train (as a probe/fine-tune backbone)"}


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "data"


class TrainPanel(QWidget):
    panel_id = "train"

    def __init__(self, bridge, settings, parent=None):
        super().__init__(parent)
        self.bridge, self.settings = bridge, settings
        self.infos: dict = {}
        self.jobs: dict[int, str] = {}  # live train jobs -> run name
        self.job: int | None = None  # the job whose progress the controls show
        self.run_name: str | None = None
        self.last_record: dict = {}
        self.previewing = LatestRequest(bridge)  # the dataset preview in flight
        self.backbone_rows: list = []
        self.pairs: dict[str, tuple[str, str]] = {}  # run -> (probe run, fine-tune run) started together
        self.accuracy: dict[str, float] = {}  # final accuracy of finished runs, for the pair summary

        setup = self._setup_column(self._dataset_box(), self._recipe_box(), self._run_box())
        split = QSplitter(Qt.Orientation.Horizontal)
        split.setChildrenCollapsible(False)
        split.addWidget(setup)
        split.addWidget(self._results_column())
        split.setStretchFactor(0, 0)
        split.setStretchFactor(1, 1)
        split.setSizes([360, 900])
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(split)
        self._restore_and_wire()

    def _dataset_box(self) -> QGroupBox:
        """Dataset kind, its folder or CSV, and Get Fashion-MNIST."""
        self.kind = QComboBox()
        for key, title in DATASET_KINDS:
            self.kind.addItem(title, key)
        self.path = QLineEdit()
        self.path.setPlaceholderText("folder (or CSV of captions)")
        self.browse = QPushButton("Browse…")
        self.browse.clicked.connect(self._browse)
        path_row = QHBoxLayout()
        path_row.addWidget(self.path, 1)
        path_row.addWidget(self.browse)
        self.dataset_note = QLabel("")
        self.dataset_note.setWordWrap(True)
        self.dataset_note.setStyleSheet("color: #b3261e;")
        data_box = QGroupBox("Dataset")
        dl = QVBoxLayout(data_box)
        dl.addWidget(self.kind)
        dl.addLayout(path_row)
        dl.addWidget(self.dataset_note)
        self.fmnist_getter = FashionMnistGetter(self.bridge)
        self.fmnist_getter.available_changed.connect(self._fmnist_available)
        dl.addWidget(self.fmnist_getter)
        return data_box

    def _recipe_box(self) -> tuple[QGroupBox, QGroupBox]:
        """The recipe with its backbone, and its settings form."""
        self.recipe = QComboBox()
        for name in RECIPES:
            self.recipe.addItem(RECIPE_TITLES.get(name, name), name)
        self.recipe_summary = QLabel("")
        self.recipe_summary.setWordWrap(True)
        self.recipe_summary.setStyleSheet("color: palette(mid);")
        self.backbone = QComboBox()
        self.backbone.setToolTip("A catalogue model with a feature extractor: the built-in ViT, SSL runs trained "
                                 "here, downloaded timm ViTs, EfficientNet-Lite0, MAE, CLIP")
        self.backbone_label = QLabel("Backbone")
        recipe_box = QGroupBox("Recipe")
        rl = QFormLayout(recipe_box)
        rl.addRow(self.recipe)
        rl.addRow(self.recipe_summary)
        rl.addRow(self.backbone_label, self.backbone)
        self.form = SettingsForm()
        settings_box = QGroupBox("Settings (defaults suit a laptop CPU)")
        QVBoxLayout(settings_box).addWidget(self.form)
        return recipe_box, settings_box

    def _run_box(self) -> QGroupBox:
        """Run name, Start/Stop/Resume, progress and status."""
        self.run_edit = QLineEdit()
        self.run_edit.setPlaceholderText("run name (automatic)")
        self.start_button = QPushButton("Start")
        self.start_button.setStyleSheet("font-weight: 600;")
        self.start_button.clicked.connect(lambda: self.start())
        self.stop_button = QPushButton("Stop")
        self.stop_button.setEnabled(False)
        self.stop_button.setToolTip("Stop after the current step; a checkpoint is saved and the run can be resumed")
        self.stop_button.clicked.connect(self.stop)
        self.resume_button = QPushButton("Resume")
        self.resume_button.setToolTip("Continue the run selected in the runs list from its last checkpoint")
        self.resume_button.clicked.connect(lambda: self.resume())
        buttons = QHBoxLayout()
        for b in (self.start_button, self.stop_button, self.resume_button):
            buttons.addWidget(b)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setFormat("%p%")
        self.status = QLabel("Ready.")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error = ErrorLabel()
        run_box = QGroupBox("Run")
        self.run_box = run_box
        rbl = QVBoxLayout(run_box)
        rbl.addWidget(self.run_edit)
        rbl.addLayout(buttons)
        rbl.addWidget(self.progress)
        rbl.addWidget(self.status)
        rbl.addWidget(self.error)
        return run_box

    def _setup_column(self, data_box: QGroupBox, recipe_boxes: tuple, run_box: QGroupBox) -> QWidget:
        """The setup scrolls; the Run box stays under it, so Start, Stop and the progress are always in view."""
        boxes = (data_box, *recipe_boxes)
        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 4, 0)
        for w in boxes:
            ll.addWidget(w)
        ll.addStretch(1)
        left_scroll = QScrollArea()
        left_scroll.setWidget(left)
        left_scroll.setWidgetResizable(True)
        left_scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        left_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        left_scroll.setMinimumWidth(max(360, left.minimumSizeHint().width() + 24))  # never cut a field off
        left_scroll.setMinimumHeight(120)
        self.left_scroll = left_scroll
        left_column = QWidget()
        lcl = QVBoxLayout(left_column)
        lcl.setContentsMargins(0, 0, 0, 0)
        lcl.addWidget(left_scroll, 1)
        lcl.addWidget(run_box)
        return left_column

    def _results_column(self) -> QSplitter:
        """Preview / curves / confusion matrix / test tabs over the runs list."""
        self.preview = PreviewStrip()
        preview_page = QWidget()
        ppl = QVBoxLayout(preview_page)
        ppl.addWidget(self.preview)
        ppl.addStretch(1)
        self.plots = LivePlots()
        self.results = ResultsView()
        self.tabs = QTabWidget()
        self.tabs.addTab(preview_page, "Dataset preview")
        self.tabs.addTab(self.plots, "Curves")
        self.tabs.addTab(self.results, "Confusion matrix")
        self.test_view = TestModelView(self.bridge, self.settings)
        self.tabs.addTab(self.test_view, "Test your model")

        runs_box = self._runs_box()
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(self.tabs)
        right.addWidget(runs_box)
        right.setChildrenCollapsible(False)
        right.setStretchFactor(0, 3)
        right.setStretchFactor(1, 1)
        right.setSizes([560, 170])
        self.right_split = right
        return right

    def _runs_box(self) -> QGroupBox:
        """The runs list and what can be done with the selected runs."""
        self.runs = RunsTable()
        self.runs.selection_changed.connect(self._selection_changed)
        self.runs.doubleClicked.connect(lambda _: self.show_selected_curves())
        self.refresh_button = QToolButton(text="Refresh")
        self.refresh_button.clicked.connect(self.refresh_runs)
        self.curves_button = QToolButton(text="Show curves")
        self.curves_button.setToolTip("Overlay the selected runs' curves (select several to compare)")
        self.curves_button.clicked.connect(self.show_selected_curves)
        self.delete_button = QToolButton(text="Delete")
        self.delete_button.clicked.connect(self.delete_selected)
        self.export_button = QToolButton(text="Export…")
        self.export_button.setToolTip("Write the selected run as ONNX, checked with onnxruntime against PyTorch, "
                                      "with a JSON sidecar (labels, preprocessing, domain, SHA-256)")
        self.export_button.clicked.connect(self.export_selected)
        self.folder_button = QToolButton(text="Open folder")
        self.folder_button.clicked.connect(self.open_selected_folder)
        self.use_button = QToolButton(text="Use in…")
        self.use_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.use_menu = QMenu(self.use_button)
        self.use_button.setMenu(self.use_menu)
        self.compare_button = QToolButton(text="Probe vs fine-tune…")
        self.compare_button.setToolTip("Train a linear probe and a fine-tune of the selected backbone (or the "
                                       "backbone chosen above) on the chosen dataset, side by side")
        self.compare_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        compare_menu = QMenu(self.compare_button)
        for frac in (0.01, 0.1, 1.0):
            compare_menu.addAction(f"with {100 * frac:g}% of the labels",
                                   lambda f=frac: self.probe_vs_finetune(f))
        self.compare_button.setMenu(compare_menu)
        run_buttons = QHBoxLayout()
        for b in (self.refresh_button, self.curves_button, self.use_button, self.compare_button,
                  self.export_button, self.folder_button, self.delete_button):
            run_buttons.addWidget(b)
        run_buttons.addStretch(1)
        runs_box = QGroupBox("Runs")
        rl2 = QVBoxLayout(runs_box)
        rl2.addWidget(self.runs)
        rl2.addLayout(run_buttons)
        return runs_box

    def _restore_and_wire(self) -> None:
        """Restore the last dataset and recipe, then connect the signals and ask the engine what it knows."""
        self._restoring = True
        kind = self.settings.value("train/dataset_kind", "fashion-mnist")
        self.kind.setCurrentIndex(max(0, self.kind.findData(kind)))
        self.path.setText(self.settings.value(f"train/path/{self.kind.currentData()}", ""))
        self.recipe.setCurrentIndex(max(0, self.recipe.findData(self.settings.value("train/recipe", "supervised"))))
        self._restoring = False
        self.kind.currentIndexChanged.connect(self._kind_changed)
        self.path.editingFinished.connect(self._dataset_changed)
        self.recipe.currentIndexChanged.connect(self._recipe_changed)
        self.form.changed.connect(self._form_changed)
        self.backbone.currentIndexChanged.connect(self._backbone_changed)
        self._preview_timer = QTimer(self)
        self._preview_timer.setSingleShot(True)
        self._preview_timer.setInterval(300)
        self._preview_timer.timeout.connect(self.request_preview)
        self.bridge.catalogue_changed.connect(self.refresh_backbones)
        self._update_dataset_ui()
        self._selection_changed()
        # What the engine knows (recipes' settings, backbones, runs) arrives when it is ready.
        self.bridge.submit("train_recipes", name="List training recipes", on_result=self._recipes_listed)
        self.refresh_backbones()
        self.refresh_runs()


    # ================================================================== dataset
    def dataset_kind(self) -> str:
        return self.kind.currentData()

    def dataset(self) -> str:
        return "fashion-mnist" if self.dataset_kind() == "fashion-mnist" else self.path.text().strip()

    def _browse(self) -> None:
        start = self.path.text() or self.settings.value("train/last_dir", os.path.expanduser("~"))
        if self.dataset_kind() == "captions":
            path = QFileDialog.getExistingDirectory(self, "Folder of images with .txt captions", start)
            if not path:
                path, _ = QFileDialog.getOpenFileName(self, "…or a CSV of path,caption", start, "CSV (*.csv)")
        else:
            path = QFileDialog.getExistingDirectory(self, "Image folder", start)
        if path:
            self.settings.setValue("train/last_dir", os.path.dirname(path))
            self.set_dataset(self.dataset_kind(), path)

    def set_dataset(self, kind: str, path: str = "") -> None:
        self.kind.setCurrentIndex(max(0, self.kind.findData(kind)))
        self.path.setText(path)
        self._dataset_changed()

    def _kind_changed(self) -> None:
        self.path.setText(self.settings.value(f"train/path/{self.dataset_kind()}", ""))
        self._dataset_changed()

    def _dataset_changed(self) -> None:
        if self._restoring:
            return
        self.settings.setValue("train/dataset_kind", self.dataset_kind())
        if self.dataset_kind() != "fashion-mnist":
            self.settings.setValue(f"train/path/{self.dataset_kind()}", self.path.text().strip())
        self._update_dataset_ui()
        self._preview_timer.start()

    def _update_dataset_ui(self) -> None:
        folder = self.dataset_kind() != "fashion-mnist"
        self.path.setEnabled(folder)
        self.browse.setEnabled(folder)
        info = self.infos.get(self.recipe_name())
        problem = ""
        if info is not None and self.dataset_kind() not in info.dataset_kinds:
            kinds = ", ".join(dict(DATASET_KINDS)[k].split(" (")[0] for k in info.dataset_kinds)
            problem = f"{self.recipe.currentText()} does not train on this kind of data; it takes: {kinds}."
        elif not folder and self.fmnist_getter.available is False:
            problem = "Fashion-MNIST is not on this machine yet."
        elif folder and not self.path.text().strip():
            problem = "Choose a folder."
        elif folder and not os.path.exists(self.path.text().strip()):
            problem = "This folder does not exist."
        self.dataset_note.setText(problem)
        self.dataset_note.setVisible(bool(problem))
        self.start_button.setEnabled(not problem and self.job is None and (info is None or info.available))

    def _fmnist_available(self, available: bool) -> None:
        self._update_dataset_ui()
        if available and self.dataset_kind() == "fashion-mnist":
            self.request_preview()

    def request_preview(self) -> None:
        if self.dataset_kind() == "fashion-mnist" and not self.fmnist_getter.available:
            self.preview.set_message("Fashion-MNIST is not on this machine yet: use Get Fashion-MNIST at the left."
                                     if self.fmnist_getter.available is False else "Looking for Fashion-MNIST…")
            return
        if self.dataset_kind() != "fashion-mnist" and not os.path.exists(self.dataset()):
            self.preview.set_message("Choose a dataset to see a few of its images.")
            return
        self.preview.set_message("Loading a few images…")
        try:
            config = self.form.config()
        except ValueError:
            config = {}
        self.previewing.submit(
            "train_preview", {"dataset": self.dataset(), "kind": self.dataset_kind(), "recipe": self.recipe_name(),
                              "config": config, "count": 10},
            name="Dataset preview", on_result=self._preview_ready, on_error=self._preview_failed)

    def _preview_ready(self, preview) -> None:
        self.preview.set_preview(preview)

    def _preview_failed(self, err) -> None:
        self.preview.set_message(f"Cannot preview this dataset: {err.message}")

    # ================================================================== recipe and settings
    def recipe_name(self) -> str:
        return self.recipe.currentData()

    def _recipes_listed(self, infos) -> None:
        self.infos = {i.name: i for i in infos}
        for i in range(self.recipe.count()):
            info = self.infos.get(self.recipe.itemData(i))
            if info is not None and not info.available:
                self.recipe.setItemData(i, f"Not available: {info.error}", Qt.ItemDataRole.ToolTipRole)
        self._recipe_changed()

    def _recipe_changed(self) -> None:
        name = self.recipe_name()
        self.settings.setValue("train/recipe", name)
        info = self.infos.get(name)
        uses_backbone = bool(info and info.uses_backbone)
        self.backbone.setVisible(uses_backbone)
        self.backbone_label.setVisible(uses_backbone)
        if info is None:
            self.recipe_summary.setText("")
        elif not info.available:
            self.recipe_summary.setText(f"Not available yet: {info.error}")
        else:
            self.recipe_summary.setText(info.summary)
        saved = self._saved_config(name)
        self.form.set_recipe(info, saved, hidden=("backbone",) if uses_backbone else ())
        if uses_backbone and saved.get("backbone"):
            self.select_backbone(saved["backbone"])
        self._update_dataset_ui()
        self._preview_timer.start()

    def _saved_config(self, recipe: str) -> dict:
        try:
            return dict(json.loads(self.settings.value(f"train/config/{recipe}", "{}")))
        except (TypeError, ValueError):
            return {}

    def _form_changed(self) -> None:
        try:
            config = self.form.config()
        except ValueError:
            return
        if self.backbone.isVisible() and self.backbone.currentData():
            config["backbone"] = self.backbone.currentData()
        self.settings.setValue(f"train/config/{self.recipe_name()}", json.dumps(config))

    def set_config(self, values: dict) -> None:
        """Set settings of the current recipe (as a user would in the form)."""
        self.form.set_values(values)

    def config(self) -> dict:
        config = self.form.config()
        info = self.infos.get(self.recipe_name())
        if info is not None and info.uses_backbone:
            if not self.backbone.currentData():
                raise ValueError("choose a backbone")
            config["backbone"] = self.backbone.currentData()
        names = {f.name for f in info.fields} if info else set()
        if "folder_kind" in names and self.dataset_kind() in ("classes", "unlabelled"):
            config.setdefault("folder_kind", self.dataset_kind())
        return config

    # ================================================================== backbones
    def refresh_backbones(self) -> None:
        self.bridge.submit("train_backbones", name="List backbones", on_result=self._backbones_listed)

    def _backbones_listed(self, rows) -> None:
        current = self.backbone.currentData() or self._saved_config(self.recipe_name()).get("backbone") \
            or "fmnist-vit-tiny"
        self.backbone_rows = list(rows)
        self.backbone.blockSignals(True)
        self.backbone.clear()
        for r in rows:
            ready = r.state in ("ready", "user file")
            self.backbone.addItem(f"{r.name}" + ("" if ready else f"   ({r.state})"), r.id)
        self.backbone.setCurrentIndex(max(0, self.backbone.findData(current)))
        self.backbone.blockSignals(False)

    def select_backbone(self, model_id: str) -> bool:
        i = self.backbone.findData(model_id)
        if i >= 0:
            self.backbone.setCurrentIndex(i)
        return i >= 0

    def _backbone_changed(self) -> None:
        self._form_changed()

    # ================================================================== start / stop / resume
    def _unique_name(self, recipe: str) -> str:
        base = self.run_edit.text().strip() or \
            f"{recipe}-{_slug(os.path.basename(self.dataset()) or self.dataset())}-{time.strftime('%Y%m%d-%H%M%S')}"
        base = _slug(base) if self.run_edit.text().strip() else base
        taken = {r.name for r in self.runs.rows} | set(self.jobs.values())
        name, n = base, 1
        while name in taken:
            n += 1
            name = f"{base}-{n}"
        return name

    def start(self, recipe: str | None = None, config: dict | None = None, run_name: str | None = None) -> int | None:
        """Start a run of the chosen (or given) recipe on the chosen dataset. Returns the job id."""
        recipe = recipe or self.recipe_name()
        try:
            cfg = self.config() if config is None else dict(config)
        except ValueError as exc:
            self._show_error(str(exc))
            return None
        run_name = run_name or self._unique_name(recipe)
        self.plots.clear()
        self.results.set_result(None, [])
        self.tabs.setCurrentWidget(self.plots)
        return self._submit({"recipe": recipe, "dataset": self.dataset(), "config": cfg, "run_name": run_name},
                            run_name, f"Train {recipe} ({run_name})")

    def resume(self, run_name: str | None = None) -> int | None:
        """Continue the selected (or named) run from its last checkpoint."""
        if run_name is None:
            sel = [r for r in self.runs.selected() if r.resumable]
            if not sel:
                self._show_error("Select a stopped or interrupted run in the runs list to resume it.")
                return None
            run_name = sel[0].name
        self.plots.clear()
        self.bridge.submit("train_run_history", {"run": run_name}, name=f"Curves of {run_name}",
                           on_result=lambda h, n=run_name: self.plots.load_history(n, h))
        return self._submit({"recipe": None, "resume": run_name}, run_name, f"Resume {run_name}")

    def _submit(self, params: dict, run_name: str, title: str) -> int:
        self.error.hide()
        job = self.bridge.submit(
            "train", params, name=title, background=True,
            on_progress=lambda p, n=run_name: self._progress(n, p),
            on_partial=lambda r, n=run_name: self._partial(n, r),
            on_result=lambda r, n=run_name: self._finished(n, r),
            on_error=lambda e, n=run_name: self._failed(n, e),
            on_cancelled=lambda n=run_name: self._cancelled(n))
        self.jobs[job] = run_name
        self.job, self.run_name = job, run_name
        self.progress.setValue(0)
        self.status.setText(f"{run_name}: loading data…")
        self._update_controls()
        QTimer.singleShot(1500, self.refresh_runs)  # the new run's card appears once data has loaded
        return job

    def stop(self) -> None:
        for job, name in list(self.jobs.items()):
            self.bridge.cancel(job)
        if self.jobs:
            self.status.setText("Stopping: saving a checkpoint…")
            self.stop_button.setEnabled(False)

    def running(self) -> bool:
        return bool(self.jobs)

    def _update_controls(self) -> None:
        busy = bool(self.jobs)
        self.stop_button.setEnabled(busy)
        self._update_dataset_ui()
        if busy:
            self.start_button.setEnabled(False)
        self._selection_changed()

    # ================================================================== events from the job
    def _progress(self, run_name: str, p) -> None:
        if run_name != self.run_name:
            return
        if p.fraction is not None:
            self.progress.setValue(int(1000 * p.fraction))
        if not self.last_record or not p.message.startswith("step"):
            self.status.setText(f"{run_name}: {p.message}")

    def _partial(self, run_name: str, record) -> None:
        if not isinstance(record, dict):
            return
        self.plots.add_record(run_name, record)
        if record.get("kind") == "train" and "step" in record:
            self.runs.set_live_step(run_name, record["step"], record.get("total_steps"))
        if run_name != self.run_name:
            return
        if record.get("kind") == "train":
            self.last_record = record
            self.status.setText(
                f"step {record['step']:,}/{record.get('total_steps', 0):,} · epoch {record.get('epoch', 0):.2f} · "
                f"loss {record['loss']:.4f} · {record.get('samples_per_s', 0):,.0f} samples/s · "
                f"ETA {format_seconds(record.get('eta_s'))}")
        elif record.get("kind") == "eval" and record.get("confusion_matrix") is not None:
            self._show_confusion(run_name, record)

    def _show_confusion(self, run_name: str, metrics: dict) -> None:
        per_class = metrics.get("per_class")  # {class name: accuracy}, in class order
        acc = metrics.get("accuracy")
        self.results.set_result(metrics["confusion_matrix"], list(per_class) if isinstance(per_class, dict) else [],
                                f"{run_name}" + (f" · accuracy {100 * acc:.1f}%" if acc is not None else ""))

    def _ended(self, run_name: str) -> None:
        self.runs.end_live(run_name)
        for job, name in list(self.jobs.items()):
            if name == run_name:
                del self.jobs[job]
        if self.run_name == run_name:
            self.job = next(iter(self.jobs), None)
            self.run_name = self.jobs.get(self.job) if self.job else None
            self.last_record = {}
        self._update_controls()
        self.refresh_runs(select=run_name)
        # The engine may thin fast records: redraw the run from its metrics file.
        self.bridge.submit("train_run_history", {"run": run_name}, name=f"Curves of {run_name}",
                           on_result=lambda h, n=run_name: self.plots.load_history(n, h))

    def _finished(self, run_name: str, result) -> None:
        metrics = result.get("metrics", {}) if isinstance(result, dict) else {}
        if metrics.get("confusion_matrix") is not None:
            self._show_confusion(run_name, metrics)
        shown = [f"{k.replace('_', ' ')} {100 * v:.1f}%" for k, v in metrics.items()
                 if isinstance(v, float) and k in ("accuracy", "knn_acc", "knn_acc_random_init")]
        self.status.setText(f"Finished {run_name} ({result.get('step')} steps, "
                            f"{format_seconds(result.get('elapsed_s'))})" + (": " + ", ".join(shown) if shown else "")
                            + ". It is in the runs list and the model catalogue.")
        self.progress.setValue(1000)
        if isinstance(metrics.get("accuracy"), float):
            self.accuracy[run_name] = metrics["accuracy"]
        pair = self.pairs.get(run_name)
        if pair and all(n in self.accuracy for n in pair):
            self.status.setText(f"Linear probe {100 * self.accuracy[pair[0]]:.1f}% vs fine-tune "
                                f"{100 * self.accuracy[pair[1]]:.1f}% test accuracy (same backbone, same labels).")
        self._ended(run_name)

    def _failed(self, run_name: str, err) -> None:
        self._show_error(f"{run_name}: {err.message}")
        self.status.setText(f"{run_name} failed; its last checkpoint is kept.")
        self._ended(run_name)

    def _cancelled(self, run_name: str) -> None:
        self.status.setText(f"Stopped {run_name}: a checkpoint was saved. Select it in the runs list and press "
                            f"Resume to continue.")
        self._ended(run_name)

    def _show_error(self, text: str) -> None:
        self.error.setText(text)
        self.error.show()

    # ================================================================== runs list
    def refresh_runs(self, select: str | None = None) -> None:
        self.bridge.submit("train_runs", name="List runs",
                           on_result=lambda rows, s=select: self._runs_listed(rows, s))

    def _runs_listed(self, rows, select: str | None = None) -> None:
        self.runs.set_runs(rows)
        if select:
            self.runs.select_run(select)

    def _selection_changed(self) -> None:
        sel = self.runs.selected()
        one = sel[0] if len(sel) == 1 else None
        self.resume_button.setEnabled(bool(one and one.resumable) and not self.jobs)
        self.delete_button.setEnabled(bool(sel) and all(r.status != "running" for r in sel))
        self.folder_button.setEnabled(one is not None)
        self.curves_button.setEnabled(bool(sel))
        self.use_menu.clear()
        if one is not None and one.model_id and one.status in ("finished", "stopped", "interrupted"):
            for pid in one.panels:
                self.use_menu.addAction(PANEL_TITLES.get(pid, pid), lambda p=pid, m=one.model_id: self.use_in(p, m))
        self.use_button.setEnabled(not self.use_menu.isEmpty())
        self.export_button.setEnabled(bool(one and one.model_id and one.family in EXPORTABLE
                                           and one.status in ("finished", "stopped", "interrupted")))
        self.test_view.set_run(one)

    def show_selected_curves(self) -> None:
        """Overlay the selected runs' full curves (one colour each)."""
        self.plots.clear()
        for r in self.runs.selected():
            self.bridge.submit("train_run_history", {"run": r.name}, name=f"Curves of {r.name}",
                               on_result=lambda h, n=r.name: self.plots.load_history(n, h))
        self.tabs.setCurrentWidget(self.plots)

    def delete_selected(self) -> None:
        sel = self.runs.selected()
        if not sel:
            return
        names = ", ".join(r.name for r in sel)
        if QMessageBox.question(self, "Delete runs", f"Delete {names} (checkpoints, metrics and weights)?") \
                != QMessageBox.StandardButton.Yes:
            return
        for r in sel:
            self.delete_run(r.name)

    def delete_run(self, name: str) -> None:
        self.bridge.submit("delete_run", {"run": name}, name=f"Delete run {name}",
                           on_result=lambda _: (self.plots.remove(name), self.refresh_runs(),
                                                self.bridge.catalogue_changed.emit()),
                           on_error=lambda e: self._show_error(e.message))

    def export_selected(self, dest: str | None = None) -> int | None:
        """Export the selected run to ONNX (asks where unless `dest` is given)."""
        sel = self.runs.selected()
        if len(sel) != 1:
            return None
        run = sel[0]
        if dest is None:
            start = self.settings.value("train/export_dir", os.path.expanduser("~"))
            dest, _ = QFileDialog.getSaveFileName(self, f"Export {run.name} to ONNX",
                                                  os.path.join(start, f"{run.name}.onnx"), "ONNX models (*.onnx)")
            if not dest:
                return None
            if not dest.lower().endswith(".onnx"):
                dest += ".onnx"
            self.settings.setValue("train/export_dir", os.path.dirname(dest))
        self.status.setText(f"Exporting {run.name} to {os.path.basename(dest)}…")
        return self.bridge.submit("export_run", {"run": run.path, "dest": dest}, name=f"Export {run.name} to ONNX",
                                  on_result=lambda r, fam=run.family: self._exported(r, fam),
                                  on_error=lambda e: self._show_error(e.message))

    def _exported(self, res, family: str) -> None:
        files = ", ".join(os.path.basename(f) for f in res.files)
        self.status.setText(f"Exported {files}: onnxruntime matches PyTorch within {res.max_abs_diff:.1e} "
                            f"(allowed {res.tolerance:g}); labels, preprocessing and checksums in "
                            f"{os.path.basename(res.sidecar)}.")
        if family == "classifier":  # show the export answering at once
            self.test_view.set_onnx(res.files[0])
            self.tabs.setCurrentWidget(self.test_view)

    def open_selected_folder(self) -> None:
        sel = self.runs.selected()
        if sel:
            QDesktopServices.openUrl(QUrl.fromLocalFile(sel[0].path))

    def use_in(self, panel_id: str, model_id: str) -> bool:
        """Select `model_id` in another panel's model picker (remembered for panels not built yet)."""
        if panel_id == "train":
            self.recipe.setCurrentIndex(max(0, self.recipe.findData("linear_probe")))
            self.refresh_backbones()
            QTimer.singleShot(0, lambda: self.select_backbone(model_id))
            return True
        self.settings.setValue(f"{panel_id}/model", model_id)
        window = self.window()
        panel = getattr(window, "panels", {}).get(panel_id)
        picker = getattr(panel, "model_picker", None)
        if picker is not None:
            picker.refresh()
            i = picker.combo.findData(model_id)
            if i < 0:
                picker.combo.addItem(model_id, model_id)
                i = picker.combo.count() - 1
            picker.combo.setCurrentIndex(i)
        tabs = getattr(window, "tabs", None)
        if panel is not None and tabs is not None:
            tabs.setCurrentWidget(panel)
        return panel is not None

    def probe_vs_finetune(self, label_fraction: float) -> None:
        """Train a linear probe and a fine-tune of one backbone side by side, same labels."""
        if self.dataset_kind() not in ("fashion-mnist", "classes"):
            self._show_error("Probe vs fine-tune needs labels: choose Fashion-MNIST or a folder of class folders.")
            return
        sel = [r for r in self.runs.selected() if r.family in ("ssl-backbone", "classifier") and r.model_id]
        backbone = sel[0].model_id if sel else self.backbone.currentData() or "fmnist-vit-tiny"
        stamp = time.strftime("%H%M%S")
        self.plots.clear()
        self.tabs.setCurrentWidget(self.plots)
        pct = f"{100 * label_fraction:g}pct"
        names = tuple(_slug(f"{recipe}-{backbone}-{pct}-{stamp}") for recipe in ("linear_probe", "finetune"))
        for name in names:
            self.pairs[name] = names
        for recipe, name in zip(("linear_probe", "finetune"), names):
            self._submit({"recipe": recipe, "dataset": self.dataset(),
                          "config": {"backbone": backbone, "label_fraction": label_fraction}, "run_name": name},
                         name, f"{recipe} of {backbone} ({pct} labels)")
        self.status.setText(f"Linear probe and fine-tune of {backbone} with {100 * label_fraction:g}% of the labels: "
                            f"both curves are drawn as they train.")
