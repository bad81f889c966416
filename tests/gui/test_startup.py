"""Start-up: the window paints before torch is imported; torch loads on the engine thread."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = r"""
import sys, threading
from PySide6.QtWidgets import QApplication
from PySide6.QtCore import QTimer
app = QApplication([])
from gui.app import create_window
assert "torch" not in sys.modules, "importing the GUI imported torch"
win, bridge = create_window("cpu")
seen = {}
def painted():
    seen["torch_at_paint"] = "torch" in sys.modules
    QTimer.singleShot(0, check)
def check():
    if not bridge.engine.ready.wait(0.05):
        QTimer.singleShot(50, check); return
    seen["torch_after"] = "torch" in sys.modules
    seen["threads"] = sorted(t.name for t in threading.enumerate())
    app.quit()
win.first_painted.connect(painted)
win.show()
app.exec()
bridge.shutdown()
print(seen["torch_at_paint"], seen["torch_after"], "patchwork-engine" in seen["threads"])
"""


def test_window_paints_before_torch_is_imported(tmp_path):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PATCHWORK_HOME=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-3:] == ["False", "True", "True"], out.stdout + out.stderr
