"""Status bar: busy indicator, device, memory and loaded models; messages on the left."""
from __future__ import annotations

from PySide6.QtWidgets import QLabel, QProgressBar, QStatusBar


def format_mb(mb: float) -> str:
    """600 MB, 6 GB, 1.5 GB: whole gigabytes from 1,000 MB up (the budget is set in MB)."""
    return f"{mb / 1000:.3g} GB" if mb >= 1000 else f"{mb:.0f} MB"


def memory_text(st) -> str:
    """"RAM 1,032 MB · Models in memory: 18 MB of 6 GB budget" (GPU memory too when there is one)."""
    text = f"RAM {st.rss_mb:,.0f} MB"
    if st.accel_mb is not None:
        text += f" · GPU {st.accel_mb:,.0f} MB"
    used = sum(mb for _, mb in st.loaded_models)
    return text + f" · Models in memory: {format_mb(used)} of {format_mb(st.budget_mb)} budget"


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
        self.memory_label.setText(memory_text(st))
        self.memory_label.setToolTip(
            f"App memory (RAM): {st.rss_mb:,.0f} MB"
            + (f"; GPU memory: {st.accel_mb:,.0f} MB" if st.accel_mb is not None else "") + ".\n"
            f"Loaded models share a budget of {format_mb(st.budget_mb)}; when a new model would exceed it, "
            "the least recently used ones are unloaded.\n"
            + ("\n".join(f"  {k}: {format_mb(v)}" for k, v in st.loaded_models) or "No models loaded.")
            + "\nEngine → Unload all models frees them now.")
