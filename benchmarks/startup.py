"""Time from process launch to the first painted main window.

Compares Patchwork (`python main.py`) with a reference: a bare PySide6 window
in the same interpreter, launched the same way. Prints both and their ratio.
Goals: Patchwork <= 1.5 s on a 2-core machine, and within 2x the bare window. Panels are
built when first shown (the current one right after the first paint), so the first paint
waits only for the window frame, the tab bar, the jobs dock and the status bar.

    python benchmarks/startup.py [--runs 5]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

REFERENCE = r"""
import time
from PySide6.QtWidgets import QApplication, QMainWindow, QLabel
from PySide6.QtCore import QTimer
app = QApplication([])
class W(QMainWindow):
    done = False
    def paintEvent(self, e):
        super().paintEvent(e)
        if not self.done:
            self.done = True
            print(f"FIRST_PAINT {time.time():.6f}", flush=True)
            QTimer.singleShot(0, app.quit)
w = W(); w.setCentralWidget(QLabel("reference")); w.resize(1200, 800); w.show()
app.exec()
"""


def launch(cmd: list[str], env: dict) -> float:
    t0 = time.time()
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    for line in out.stdout.splitlines():
        if line.startswith("FIRST_PAINT"):
            return float(line.split()[1]) - t0
    raise RuntimeError(f"no FIRST_PAINT from {cmd}: rc={out.returncode}\n{out.stderr[-2000:]}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    home = tempfile.mkdtemp(prefix="pw-bench-")
    env = dict(os.environ, QT_QPA_PLATFORM=os.environ.get("QT_QPA_PLATFORM", "offscreen"),
               PATCHWORK_HOME=home, PATCHWORK_EXIT_AFTER_PAINT="1")
    launch([sys.executable, "main.py"], env)  # warm the OS file cache once, not counted
    ref, ours = [], []
    for _ in range(args.runs):
        ref.append(launch([sys.executable, "-c", REFERENCE], env))
        ours.append(launch([sys.executable, "main.py"], env))
    r, o = statistics.median(ref), statistics.median(ours)
    print(f"launch -> first paint, median of {args.runs} (QT_QPA_PLATFORM={env['QT_QPA_PLATFORM']}):")
    print(f"  reference bare PySide6 window : {r * 1000:7.0f} ms   (min {min(ref) * 1000:.0f})")
    print(f"  patchwork main window         : {o * 1000:7.0f} ms   (min {min(ours) * 1000:.0f})")
    print(f"  ratio patchwork / reference   : {o / r:7.2f}")
    print(f"  goal <= 1500 ms               : {'met' if o <= 1.5 else 'NOT met'}")
    print(f"  goal ratio <= 2.0             : {'met' if o / r <= 2.0 else 'NOT met'}")


if __name__ == "__main__":
    main()
