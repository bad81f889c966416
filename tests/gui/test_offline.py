"""Opening the app and using it offline opens no network socket (Python audit hooks see
every socket the Python code, huggingface_hub, urllib and friends could open)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

AUDIT = r"""
import socket, sys
net = []
def hook(event, args):
    if event == "socket.__new__" and len(args) > 1 and args[1] in (socket.AF_INET, socket.AF_INET6):
        net.append((event, args[1:]))
    elif event in ("socket.connect", "socket.getaddrinfo", "socket.gethostbyname", "urllib.Request"):
        net.append((event, str(args)[:200]))
sys.addaudithook(hook)
"""

GUI = AUDIT + r"""
import time
from PySide6.QtWidgets import QApplication
app = QApplication([])
from gui.app import create_window
from gui.samples import sample_photos
win, bridge = create_window("cpu")
win.show()
bridge.start()
bridge.engine.wait_ready(60)
panel = win.panels["classify"]
panel.classify_path([p for p, _ in sample_photos() if p.endswith("coffee.png")][0])
dialog = win.show_models_dialog()
t0 = time.time()
while (not panel.top_labels() or not dialog.rows) and time.time() - t0 < 60:
    app.processEvents(); time.sleep(0.01)
bridge.shutdown()
print("TOP", panel.top_labels()[:1], "ROWS", len(dialog.rows))
print("NET", net)
"""

CLI = AUDIT + r"""
import main
rc = main.main(["classify", sys.argv[1], "--top", "1"])
main.main(["models"])
print("RC", rc)
print("NET", net)
"""


def _run(code: str, *args: str, tmp_path) -> str:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PATCHWORK_HOME=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=180)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def test_gui_start_and_classify_open_no_socket(tmp_path):
    out = _run(GUI, tmp_path=tmp_path)
    assert "TOP ['espresso']" in out, out
    assert "ROWS 0" not in out, out
    assert out.strip().endswith("NET []"), out


def test_cli_classify_and_models_open_no_socket(tmp_path):
    from tests.gui.conftest import sample

    out = _run(CLI, sample("coffee.png"), tmp_path=tmp_path)
    assert "espresso" in out and "RC 0" in out, out
    assert out.strip().endswith("NET []"), out
