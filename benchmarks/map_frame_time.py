"""Photo map frame time while panning, offscreen: the Map tab's own widget with 100,000 points.

A layout like a real one (16 Gaussian clusters, coloured by cluster) goes into PhotoMapView;
each frame pans the view by 1 % and lets Qt run the repaint it schedules (what a drag costs).
Reference, same points and view: pyqtgraph's ScatterPlotItem (7 px symbols, 16 shared
brushes, its fastest setting), which the map used first, against the map's PointCloud item.

    python benchmarks/map_frame_time.py [--points 100000] [--frames 60]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("PATCHWORK_HOME", tempfile.mkdtemp(prefix="pw-mapbench-"))

import numpy as np  # noqa: E402


def fake_map(n: int, clusters: int = 16, seed: int = 0):
    from engine.collection.jobs import MapResult

    rng = np.random.default_rng(seed)
    centres = rng.uniform(-0.8, 0.8, (clusters, 2))
    cluster = rng.integers(0, clusters, n).astype(np.int32)
    xy = (centres[cluster] + rng.normal(0, 0.07, (n, 2))).astype(np.float32)
    paths = tuple(f"/photos/{i // 1000:03d}/img_{i:06d}.jpg" for i in range(n))
    return MapResult("/photos", "conse-lite0-minilm", "pca", paths, xy, cluster,
                     tuple(f"cluster {c}" for c in range(clusters)), 0, 0.0)


def pan_frames(app, view, frames: int) -> list[float]:
    vb = view.view_box
    (x0, x1), _ = vb.viewRange()
    step = (x1 - x0) * 0.01
    times = []
    for i in range(frames):
        t0 = time.perf_counter()
        vb.translateBy(x=step if i % 40 < 20 else -step)
        app.processEvents()  # the scheduled repaint: one paint per frame, as while dragging
        times.append(time.perf_counter() - t0)
    return times


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=100_000)
    ap.add_argument("--frames", type=int, default=60)
    args = ap.parse_args()
    from PySide6.QtGui import QBrush, QColor
    from PySide6.QtWidgets import QApplication

    from gui.panels.search.photo_map import PhotoMapView

    app = QApplication([])
    view = PhotoMapView(bridge=None)
    view.resize(1280, 800)
    view.show()
    res = fake_map(args.points)
    t0 = time.perf_counter()
    view.show_map(res)
    view.plot.viewport().repaint()
    app.processEvents()
    first = time.perf_counter() - t0
    pan_frames(app, view, 5)  # warm-up: symbol atlas, caches
    ours = pan_frames(app, view, args.frames)
    # reference: pyqtgraph's own scatter item in the same view
    import pyqtgraph as pg

    from engine.collection.render import PALETTE

    brushes = [QBrush(QColor(c)) for c in PALETTE]
    scatter = pg.ScatterPlotItem(pos=view.xy, size=7, pen=None, pxMode=True,
                                 brush=[brushes[int(c) % len(brushes)] for c in res.cluster])
    view.cloud.hide()
    view.plot.addItem(scatter)
    pan_frames(app, view, 5)
    naive = pan_frames(app, view, args.frames)
    view.plot.removeItem(scatter)
    med, p95 = statistics.median(ours) * 1000, sorted(ours)[int(0.95 * len(ours)) - 1] * 1000
    ref = statistics.median(naive) * 1000
    print(f"{args.points:,} points, {args.frames} pan frames at 1280x800 (offscreen, CPU raster)")
    print(f"  first draw (setData + colours + labels + paint): {first * 1000:.0f} ms")
    print(f"  map view (PointCloud): median {med:.1f} ms/frame ({1000 / med:.0f} fps), p95 {p95:.1f} ms")
    print(f"  reference, pyqtgraph ScatterPlotItem: median {ref:.1f} ms/frame ({1000 / ref:.0f} fps); "
          f"ratio {ref / med:.2f}x")
    sys.stdout.flush()
    os._exit(0)  # skip interpreter teardown: PySide6 + pyqtgraph can crash destroying items at exit


if __name__ == "__main__":
    raise SystemExit(main())
