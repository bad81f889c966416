"""A second app instance on the same data folder is told so (with the first one's pid), and keeps working."""
from __future__ import annotations

import os

from PySide6.QtWidgets import QMessageBox


def test_the_second_instance_on_a_data_folder_gets_a_clear_message(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("PATCHWORK_HOME", str(tmp_path / "home"))
    from engine.instance import claim_data_folder
    from gui.app import create_window, warn_if_shared

    first, message = claim_data_folder()  # the instance already running
    assert message is None
    win, bridge = create_window("cpu")
    qtbot.addWidget(win)
    try:
        claim = warn_if_shared(win)
        win.show()
        box = win.findChild(QMessageBox, "second_instance_warning")
        qtbot.waitUntil(lambda: box is not None and box.isVisible(), timeout=10_000)
        assert f"process {os.getpid()}" in box.text() and str(tmp_path / "home" / "data") in box.text()
        box.close()
        claim.release()
        first.release()
        again, message = claim_data_folder()  # once the first has gone, no message
        assert message is None
        again.release()
    finally:
        bridge.shutdown()
