"""The Train panel's "Get Fashion-MNIST" strip, shown only while the dataset is not on this machine.

It asks the engine where Fashion-MNIST is (never fails: a missing dataset is a state, not an
error), offers the download with a progress bar and Stop (a stopped download resumes next
time), and names the offline route (the Debian package). When the files are there it hides
and tells the panel, which then previews the dataset.
"""
from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout


class FashionMnistGetter(QFrame):
    available_changed = Signal(bool)

    def __init__(self, bridge, parent=None):
        super().__init__(parent)
        self.bridge = bridge
        self.available: bool | None = None  # None until the engine has answered
        self.job: int | None = None
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.message = QLabel("")
        self.message.setWordWrap(True)
        self.get_button = QPushButton("Get Fashion-MNIST")
        self.get_button.setToolTip("Download torchvision's Fashion-MNIST files (about 30 MB) into Patchwork's "
                                   "data folder; Stop keeps what arrived and the next click resumes")
        self.get_button.clicked.connect(self.start)
        self.stop_button = QPushButton("Stop")
        self.stop_button.clicked.connect(self.stop)
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.bar.setFormat("%p%")
        row = QHBoxLayout()
        row.addWidget(self.get_button)
        row.addWidget(self.bar, 1)
        row.addWidget(self.stop_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.message)
        layout.addLayout(row)
        self._show_idle()
        self.setVisible(False)
        self.refresh()

    def refresh(self) -> None:
        self.bridge.submit("fashion_mnist_status", {}, name="Fashion-MNIST status", on_result=self._status)

    def _status(self, status) -> None:
        self.message.setText(status.message)
        self.setVisible(not status.available)
        if status.available != self.available:
            self.available = status.available
            self.available_changed.emit(status.available)

    def _show_idle(self) -> None:
        self.bar.setVisible(False)
        self.stop_button.setVisible(False)
        self.get_button.setEnabled(True)

    def start(self) -> None:
        if self.job is not None:
            return
        self.get_button.setEnabled(False)
        self.bar.setValue(0)
        self.bar.setVisible(True)
        self.stop_button.setVisible(True)
        self.job = self.bridge.submit("fashion_mnist_download", {}, name="Get Fashion-MNIST", background=True,
                                      on_progress=self._progress, on_result=self._done, on_error=self._failed,
                                      on_cancelled=self._stopped)

    def stop(self) -> None:
        if self.job is not None:
            self.bridge.cancel(self.job)

    def _progress(self, p) -> None:
        if p.fraction is not None:
            self.bar.setValue(int(p.fraction * 1000))
        if p.message:
            self.bar.setFormat(f"{p.message}  %p%")

    def _done(self, status) -> None:
        self.job = None
        self._show_idle()
        self._status(status)

    def _failed(self, err) -> None:
        self.job = None
        self._show_idle()
        self.message.setText(f"Could not get Fashion-MNIST: {err.message} Offline: "
                             "sudo apt install dataset-fashion-mnist")

    def _stopped(self, *_args) -> None:
        self.job = None
        self._show_idle()
        self.message.setText("Stopped; what arrived is kept, and Get Fashion-MNIST resumes from there.")
