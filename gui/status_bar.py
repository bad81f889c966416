"""Status bar: busy indicator, device, memory and loaded models; messages on the left."""
from __future__ import annotations

from PySide6.QtWidgets import QLabel, QProgressBar, QStatusBar


class EngineStatusBar(QStatusBar):
    def __init__(self, bridge, parent=None):
        super().__init__(parent)
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)
        self.busy.setMaximumWidth(90)
        self.busy.setMaximumHeight(14)
        self.busy.setToolTip("The engine is working")
        self.busy.hide()
        self.device_label = QLabel("Engine starting…")
        self.memory_label = QLabel("")
        self.addPermanentWidget(self.busy)
        self.addPermanentWidget(self.device_label)
        self.addPermanentWidget(self.memory_label)
        bridge.status_changed.connect(self.on_status)
        bridge.warning.connect(lambda msg: self.showMessage(f"⚠ {msg}", 15000))

    def on_status(self, st) -> None:
        self.busy.setVisible(st.busy)
        self.device_label.setText(f"Device: {st.device}")
        self.device_label.setToolTip(f"{st.device_name}\ntorch {st.torch_version}")
        mem = f"RAM {st.rss_mb:.0f} MB"
        if st.accel_mb is not None:
            mem += f" · GPU {st.accel_mb:.0f} MB"
        used = sum(mb for _, mb in st.loaded_models)
        mem += f" · models {used:.0f}/{st.budget_mb:.0f} MB"
        self.memory_label.setText(mem)
        self.memory_label.setToolTip(
            "Loaded models share a memory budget; least recently used ones are unloaded first.\n"
            + ("\n".join(f"{k}: {v:.0f} MB" for k, v in st.loaded_models) or "No models loaded")
            + "\nEngine → Unload all models frees them now.")
