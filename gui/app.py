"""Launch the desktop app: the window paints first, then the engine thread imports torch."""
from __future__ import annotations

import os
import sys
import time

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from gui import platform_check
from gui.bridge import EngineBridge
from gui.main_window import MainWindow
from gui.settings import open_settings


def create_window(device: str | None = None) -> tuple[MainWindow, EngineBridge]:
    """Build the window and bridge; the engine starts once the window has painted."""
    settings = open_settings()
    bridge = EngineBridge(device or settings.value("engine/device", "auto"))
    window = MainWindow(bridge, settings)
    window.first_painted.connect(lambda: QTimer.singleShot(0, bridge.start))
    return window, bridge


def warn_if_shared(window: MainWindow):
    """Hold the data folder; if another instance already does, say so once the window shows."""
    from PySide6.QtWidgets import QMessageBox

    from engine.instance import claim_data_folder

    claim, message = claim_data_folder()
    if message:
        box = QMessageBox(QMessageBox.Icon.Warning, "Patchwork is already open", message, parent=window)
        box.setObjectName("second_instance_warning")
        window.first_painted.connect(box.open)  # not modal to the app: this instance stays usable
    return claim


def run_gui(device: str | None = None, argv: list[str] | None = None) -> int:
    if QApplication.instance() is None:
        message = platform_check.problem()
        if message:  # Qt would abort with a misleading line; say what is missing and how to get it
            print(message, file=sys.stderr)
            return 3
    app = QApplication.instance() or QApplication(argv if argv is not None else sys.argv)
    app.setApplicationName("Patchwork")
    app.setOrganizationName("Patchwork")
    window, bridge = create_window(device)
    claim = warn_if_shared(window)
    if os.environ.get("PATCHWORK_EXIT_AFTER_PAINT"):  # benchmarks/startup.py
        window.first_painted.connect(lambda: (print(f"FIRST_PAINT {time.time():.6f}", flush=True),
                                              QTimer.singleShot(0, app.quit)))
    window.show()
    try:
        return app.exec()
    finally:
        bridge.shutdown()
        claim.release()
