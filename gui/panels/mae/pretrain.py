"""MAE pretraining from the panel: starts the "mae" recipe through the engine's "train" request
and shows, while it runs, the reconstruction of one fixed held-out image and the loss curve."""
from __future__ import annotations

import os
import time

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtWidgets import (QComboBox, QFileDialog, QHBoxLayout, QLabel, QProgressBar, QPushButton,
                               QSizePolicy, QSpinBox, QVBoxLayout, QWidget)

from gui.jobs_dock import format_seconds
from gui.panels.mae.patch_view import PatchView
from gui.qimage import array_to_pixmap
from gui.widgets import plot_style as ps
from gui.widgets.layouts import column

PREVIEW_VIEWS = (("original", "original"), ("masked", "masked"), ("reconstruction", "reconstruction"),
                 ("pasted", "+ visible"))
PREVIEW_EVERY = 50  # steps between live previews


class LossCurve(QWidget):
    """The training loss in the Train curves' look: one curve over a bounded buffer, redrawn at
    most 4 times a second; hovering reads a point, the wheel zooms, right-click exports."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.points: list[tuple[int, float]] = []
        self.setMinimumSize(160, 90)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        ps.configure()
        self.view = pg.PlotWidget()
        self.plot = self.view.getPlotItem()
        ps.style_plot(self.plot, title="training loss (hidden patches)")
        self.plot.layout.setContentsMargins(0, 0, 4, 0)
        self.line = self.plot.plot([], [], pen=ps.curve_pen(ps.COLOURS[0]))
        self.hover = ps.Hover(self.view, self.plot, self._text_at)
        self.export = ps.ExportMenu(self, self.view, "MAE pretraining loss", self.csv_rows,
                                    reset=self.plot.enableAutoRange)
        self.timer = QTimer(self, singleShot=True, interval=250)
        self.timer.timeout.connect(self.redraw)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.view)

    def sizeHint(self) -> QSize:  # noqa: N802 - pyqtgraph's 600×480 would make the Pretrain tab that tall
        return QSize(320, 140)

    def clear(self) -> None:
        self.points = []
        self.redraw()

    def add(self, step: int, loss: float) -> None:
        self.points.append((step, loss))
        del self.points[:-2000]
        if not self.timer.isActive():
            self.timer.start()

    def redraw(self) -> None:
        steps, losses = zip(*self.points) if self.points else ((), ())
        self.line.setData(np.asarray(steps, float), np.asarray(losses, float))
        self.line.setSymbol("o" if len(steps) < 3 else None)  # a first point or two stay visible

    def _text_at(self, x: float, y: float) -> str | None:
        hit = ps.nearest_point(self.plot, x, y)
        return None if hit is None else f"step {hit[1]:,.0f} · loss {hit[2]:.4f}"

    def csv_rows(self) -> list[list]:
        return [["step", "loss"], *([s, f"{v:.6g}"] for s, v in self.points)]


class PretrainBox(QWidget):
    """Dataset, epochs, Pretrain / Stop, progress, live preview and loss curve."""

    model_trained = Signal(str)  # catalogue id of the run, when it has finished or been stopped
    started = Signal()

    def __init__(self, bridge, settings, parent=None):
        super().__init__(parent)
        self.bridge, self.settings = bridge, settings
        self.job: int | None = None
        self.run_name: str | None = None
        self.preview_index_for = lambda: 0  # the panel says which held-out image to follow
        self.previews_seen = 0

        self.dataset = QComboBox()
        self.dataset.addItem("Fashion-MNIST (60,000 images, offline)", "fashion-mnist")
        folder = settings.value("mae/pretrain_folder", "")
        if folder:
            self.dataset.addItem(f"Folder: {os.path.basename(folder)}", folder)
        self.dataset.addItem("Image folder…", "__choose__")
        self.dataset.activated.connect(self._dataset_chosen)
        self.epochs = QSpinBox()
        self.epochs.setRange(1, 200)
        self.epochs.setValue(int(settings.value("mae/pretrain_epochs", 2)))
        self.epochs.setSuffix(" epochs")
        self.epochs.valueChanged.connect(lambda v: settings.setValue("mae/pretrain_epochs", v))
        self.start_button = QPushButton("Pretrain")
        self.start_button.setToolTip("Train a new tiny MAE with the 'mae' recipe (75% masking); "
                                     "it joins the model list when it finishes or is stopped")
        self.start_button.clicked.connect(self.start)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setEnabled(False)
        self.stop_button.setToolTip("Stop after the current step; the run is saved and can be resumed")
        self.stop_button.clicked.connect(self.stop)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(False)
        self.status = QLabel("Same loop, checkpoints and resume as `main.py train mae`.")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        buttons = QHBoxLayout()
        buttons.addWidget(self.epochs)
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.stop_button)
        self.use_button = QPushButton("Use the trained model")
        self.use_button.hide()
        self._offer = None
        self.use_button.clicked.connect(self._use_offered)
        self.preview_title = QLabel("A fixed held-out image's reconstruction refreshes here while it trains.")
        self.preview_title.setWordWrap(True)
        self.preview_title.setStyleSheet("color: palette(mid);")
        left_box = column(self.dataset, buttons, self.progress, self.status, self.preview_title, self.use_button, 1)
        left_box.setFixedWidth(380)
        self.setFixedHeight(170)

        self.previews = {}
        lay = QHBoxLayout(self)
        lay.setContentsMargins(6, 4, 6, 4)
        lay.addWidget(left_box)
        for key, title in PREVIEW_VIEWS:
            view = PatchView(title)
            view.setMinimumSize(100, 110)
            self.previews[key] = view
            lay.addWidget(view, 1)
        self.curve = LossCurve()
        lay.addWidget(self.curve, 2)

    # ------------------------------------------------------------------ start / stop
    def _dataset_chosen(self) -> None:
        if self.dataset.currentData() != "__choose__":
            return
        start = self.settings.value("mae/pretrain_folder", os.path.expanduser("~"))
        folder = QFileDialog.getExistingDirectory(self, "Folder of images to pretrain on", start)
        if not folder:
            self.dataset.setCurrentIndex(0)
            return
        self.settings.setValue("mae/pretrain_folder", folder)
        self.dataset.insertItem(self.dataset.count() - 1, f"Folder: {os.path.basename(folder)}", folder)
        self.dataset.setCurrentIndex(self.dataset.count() - 2)

    def running(self) -> bool:
        return self.job is not None

    def start(self, config: dict | None = None) -> int:
        """Submit the training job; `config` adds recipe settings (tests use tiny ones)."""
        dataset = self.dataset.currentData()
        if dataset == "__choose__":
            self.dataset.setCurrentIndex(0)
            dataset = "fashion-mnist"
        slug = "fashion-mnist" if dataset == "fashion-mnist" else \
            "".join(ch if ch.isalnum() else "-" for ch in os.path.basename(dataset).lower()).strip("-") or "folder"
        self.run_name = f"mae-{slug}-{time.strftime('%Y%m%d-%H%M%S')}"
        cfg = {"epochs": self.epochs.value(), "preview_every": PREVIEW_EVERY, "log_every": 10}
        if dataset == "fashion-mnist":
            cfg["preview_index"] = self.preview_index_for()
        cfg.update(config or {})
        self.curve.clear()
        self.previews_seen = 0
        self.progress.setValue(0)
        self.status.setText("Loading data…")
        self.start_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        self.use_button.hide()
        self.started.emit()
        self.job = self.bridge.submit(
            "train", {"recipe": "mae", "dataset": dataset, "config": cfg, "run_name": self.run_name},
            name=f"Pretrain MAE ({self.run_name})", background=True, on_progress=self._progress,
            on_partial=self._partial, on_result=self._finished, on_error=self._failed,
            on_cancelled=self._cancelled)
        return self.job

    def stop(self) -> None:
        if self.job is not None:
            self.status.setText("Stopping: saving a checkpoint…")
            self.stop_button.setEnabled(False)
            self.bridge.cancel(self.job)

    def offer_model(self, model_id: str, use) -> None:
        """Show "Use the trained model", which calls use(model_id)."""
        self._offer = (model_id, use)
        self.use_button.show()

    def _use_offered(self) -> None:
        if self._offer is not None:
            model_id, use = self._offer
            use(model_id)

    # ------------------------------------------------------------------ events
    def _progress(self, p) -> None:
        if p.fraction is not None:
            self.progress.setValue(int(1000 * p.fraction))

    def _partial(self, record) -> None:
        if not isinstance(record, dict):
            return
        if record.get("kind") == "train":
            self.curve.add(int(record["step"]), float(record["loss"]))
            self.status.setText(f"step {record['step']}/{record.get('total_steps', '?')} · loss {record['loss']:.4f} · "
                                f"{record.get('samples_per_s', 0):.0f} images/s · "
                                f"{format_seconds(record.get('eta_s'))} left")
        elif record.get("kind") == "eval" and record.get("masked_mse") is not None:
            self.preview_title.setText(
                f"Held-out hidden-patch MSE {record['masked_mse']:.4f} (mean-of-visible baseline "
                f"{record.get('baseline_mean_visible_mse', float('nan')):.4f}) at step {record['step']}")
        preview = record.get("preview")
        if preview:
            self.previews_seen += 1
            for key, _ in PREVIEW_VIEWS:
                self.previews[key].set_pixmap(array_to_pixmap(preview[key]), tuple(preview["grid"]))
            mse = preview.get("masked_mse")
            if record.get("kind") != "eval":
                self.preview_title.setText(
                    f"Live: held-out image #{preview['index']} at step {preview['step']}"
                    + (f" · hidden-patch MSE {mse:.4f}" if mse is not None else ""))

    def _done(self) -> None:
        self.job = None
        self.start_button.setEnabled(True)
        self.stop_button.setEnabled(False)

    def _finished(self, result) -> None:
        self._done()
        self.progress.setValue(1000)
        m = result.get("metrics", {}) if isinstance(result, dict) else {}
        mse = m.get("masked_mse")
        self.status.setText(f"Finished {result.get('run')} ({result.get('step')} steps)"
                            + (f": hidden-patch MSE {mse:.4f}" if mse is not None else "")
                            + ". It is now in the model list.")
        self.model_trained.emit(f"run-{result.get('run')}")

    def _cancelled(self) -> None:
        self._done()
        self.status.setText(f"Stopped. The run {self.run_name} was saved: it is in the model list, and "
                            f"`python main.py train mae --resume {self.run_name}` continues it.")
        if self.run_name:
            self.model_trained.emit(f"run-{self.run_name}")

    def _failed(self, err) -> None:
        self._done()
        self.status.setText(f"Training failed: {err.message}")
