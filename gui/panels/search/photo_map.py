"""The photo map: every indexed photo as a point, laid out by the engine (PCA, t-SNE or UMAP of
its embedding), coloured by cluster, by the last query's score or by folder.

Hovering shows the photo; zoomed in far enough, thumbnails replace the points; a box or lasso
selects photos, which can go to the result grid, become a query ("more like these"), be
revealed or have their paths copied. Nothing is computed here beyond picking points inside a
shape: the layout arrives from the engine as arrays.
"""
from __future__ import annotations

import os
from collections import OrderedDict

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor, QGuiApplication, QImage, QPainterPath, QPixmap
from PySide6.QtWidgets import (QButtonGroup, QComboBox, QGraphicsPathItem, QGraphicsPixmapItem, QGraphicsRectItem,
                               QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget)

from engine.collection.map import available_methods
from engine.collection.render import PALETTE, label_anchor
from engine.paths import cache_dir, shown_path
from gui.latest import LatestRequest
from gui.panels.search import file_actions
from gui.panels.search.job_view import LatestJobView
from gui.thumbnails import ThumbnailLoader

METHOD_NAMES = {"pca": "PCA", "tsne": "t-SNE", "umap": "UMAP"}
COLOURINGS = ("Cluster", "Query score", "Folder")
IN_PLACE_UP_TO = 40  # thumbnails replace points when at most this many are in view
IN_PLACE_PX = 72
HOVER_PX = 160
THUMB_CACHE = 600
GREY = QColor("#c8c8c8")


def _score_colour(s: float) -> QColor:
    """Pale yellow (0) to dark blue (1): a sequential scale that reads in grey too."""
    s = float(np.clip(s, 0.0, 1.0))
    lo, hi = np.array([255, 237, 160]), np.array([8, 48, 107])
    r, g, b = (lo + (hi - lo) * s).astype(int)
    return QColor(int(r), int(g), int(b))


def points_in_polygon(xy: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """N bool: which points lie inside the closed polygon (even-odd rule, vectorised ray casting)."""
    inside = np.zeros(len(xy), bool)
    x, y = xy[:, 0], xy[:, 1]
    for (x1, y1), (x2, y2) in zip(poly, np.roll(poly, -1, axis=0)):
        crosses = (y1 > y) != (y2 > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            at = (x2 - x1) * (y - y1) / (y2 - y1) + x1
        inside ^= crosses & (x < at)
    return inside


def _disk(radius: float) -> tuple[np.ndarray, np.ndarray]:
    """Pixel offsets (dy, dx) of a filled disk: the shape of one point."""
    r = int(np.ceil(radius))
    dy, dx = np.mgrid[-r:r + 1, -r:r + 1]
    keep = dx * dx + dy * dy <= radius * radius + 0.5
    return dy[keep], dx[keep]


class PointCloud(pg.GraphicsObject):
    """Many points drawn as one image: each paint maps the points to device pixels with numpy and
    writes a small disk of each point's colour into an ARGB buffer, then draws that buffer once.

    pyqtgraph's ScatterPlotItem draws one pixmap fragment per point, about 150 ms a frame at
    100,000 points on a CPU; this costs a few array operations (benchmarks/map_frame_time.py).
    Later points are drawn over earlier ones; selected points get a red ring under their dot.
    """

    SMALL, LARGE = 2.0, 3.6  # dot radius for big collections (a 13-pixel dot) and for small ones
    RING_COLOUR = np.uint32(0xFFD62728)

    def __init__(self):
        super().__init__()
        self.xy = np.zeros((0, 2))
        self.argb = np.zeros(0, np.uint32)
        self.selected = np.zeros(0, bool)
        self.drawn = 0  # points inside the view at the last paint
        self._bounds = QRectF()
        self._dot, self._ring, self._pad = _disk(self.SMALL), _disk(self.SMALL + 1.6), 4

    def set_points(self, xy: np.ndarray, argb: np.ndarray) -> None:
        self.prepareGeometryChange()
        self.xy = np.asarray(xy, np.float64)
        self.argb = np.asarray(argb, np.uint32)
        self.selected = np.zeros(len(self.xy), bool)
        radius = self.LARGE if len(self.xy) <= 2000 else self.SMALL  # few photos: each easy to point at
        self._dot, self._ring = _disk(radius), _disk(radius + 1.6)
        self._pad = int(np.ceil(radius + 1.6))
        if len(self.xy):
            (x0, y0), (x1, y1) = self.xy.min(0), self.xy.max(0)
            self._bounds = QRectF(x0, y0, max(x1 - x0, 1e-9), max(y1 - y0, 1e-9))
        else:
            self._bounds = QRectF()
        self.update()

    def set_colours(self, argb: np.ndarray) -> None:
        self.argb = np.asarray(argb, np.uint32)
        self.update()

    def set_selected(self, mask: np.ndarray) -> None:
        self.selected = np.asarray(mask, bool)
        self.update()

    def boundingRect(self) -> QRectF:  # noqa: N802 (Qt's name)
        return self._bounds

    def dataBounds(self, axis, frac=1.0, orthoRange=None):  # noqa: N802, N803 (pyqtgraph's names)
        if not len(self.xy):
            return None, None
        return float(self.xy[:, axis].min()), float(self.xy[:, axis].max())

    def paint(self, painter, _option, widget=None):
        if not len(self.xy) or widget is None:
            self.drawn = 0
            return
        # item -> the view's viewport pixels (painter.deviceTransform() would be relative to
        # whatever is painted into: a whole window when it is grabbed for a screenshot)
        t = self.deviceTransform(widget.parent().viewportTransform())
        w, h = widget.width(), widget.height()
        px = np.rint(t.m11() * self.xy[:, 0] + t.m21() * self.xy[:, 1] + t.dx()).astype(np.int64)
        py = np.rint(t.m12() * self.xy[:, 0] + t.m22() * self.xy[:, 1] + t.dy()).astype(np.int64)
        inside = (px >= 0) & (px < w) & (py >= 0) & (py < h)
        self.drawn = int(inside.sum())
        pad = self._pad  # a margin as wide as a ring: no bounds checks per pixel
        stride = w + 2 * pad
        buf = np.zeros((h + 2 * pad) * stride, np.uint32)
        base = (py[inside] + pad) * stride + px[inside] + pad
        if self.selected.any():
            ring = self.selected[inside]
            for off in self._offsets(self._ring, stride):
                buf[base[ring] + off] = self.RING_COLOUR
        colours = self.argb[inside]
        for off in self._offsets(self._dot, stride):
            buf[base + off] = colours
        view = buf.reshape(h + 2 * pad, stride)[pad:pad + h, pad:pad + w].copy()
        image = QImage(view.data, w, h, 4 * w, QImage.Format.Format_ARGB32_Premultiplied)
        painter.save()
        painter.setTransform(t.inverted()[0], True)  # back to viewport pixels, whatever the device
        painter.drawImage(0, 0, image)
        painter.restore()

    @staticmethod
    def _offsets(disk, stride: int) -> np.ndarray:
        dy, dx = disk
        return dy * stride + dx


class SelectViewBox(pg.ViewBox):
    """A ViewBox whose left-drag selects (box or lasso) instead of panning when asked to."""

    box_selected = Signal(QRectF)
    lasso_selected = Signal(object)  # M x 2 polygon in data coordinates

    def __init__(self):
        super().__init__()
        self.mode = "pan"
        self._path: list[QPointF] = []
        self._shape = None

    def mouseDragEvent(self, ev, axis=None):  # noqa: N802 (Qt's name)
        if self.mode == "pan" or ev.button() != Qt.MouseButton.LeftButton:
            return super().mouseDragEvent(ev, axis)
        ev.accept()
        here = self.mapSceneToView(ev.scenePos())
        if ev.isStart():
            self._path = [self.mapSceneToView(ev.buttonDownScenePos())]
            self._shape = QGraphicsRectItem() if self.mode == "box" else QGraphicsPathItem()
            self._shape.setPen(pg.mkPen("#d62728", width=1.5, style=Qt.PenStyle.DashLine, cosmetic=True))
            self._shape.setBrush(QBrush(QColor(214, 39, 40, 30)))
            self.addItem(self._shape, ignoreBounds=True)
        self._path.append(here)
        if self.mode == "box":
            self._shape.setRect(QRectF(self._path[0], here).normalized())
        else:
            path = QPainterPath(self._path[0])
            for p in self._path[1:]:
                path.lineTo(p)
            path.closeSubpath()
            self._shape.setPath(path)
        if ev.isFinish():
            self.removeItem(self._shape)
            self._shape = None
            if self.mode == "box":
                self.box_selected.emit(QRectF(self._path[0], here).normalized())
            else:
                self.lasso_selected.emit(np.array([(p.x(), p.y()) for p in self._path], np.float64))
            self._path = []


class PhotoMapView(LatestJobView, QWidget):
    """The Map tab. `selection_changed(paths)` puts the selected photos in the result grid;
    `show_results()` asks to see that grid; `more_like(paths)` for a query by the mean of their vectors."""

    selection_changed = Signal(list)
    show_results = Signal()
    more_like = Signal(list)

    def __init__(self, bridge, parent=None):
        super().__init__(parent)
        self.bridge = bridge
        self._wanted: tuple | None = None  # (folder, model_id, indexed) the panel has now
        self.source: tuple | None = None  # (folder, model_id, indexed, method) the map shows or is making
        self.unfinished = False  # the last layout failed or was stopped
        self.latest = LatestRequest(bridge)  # the layout or search in flight
        self.result = None
        self.paths: list[str] = []
        self.xy = np.zeros((0, 2), np.float32)
        self.selected = np.zeros(0, bool)
        self.scores: dict[str, float] = {}
        self._thumbs: OrderedDict[str, QPixmap] = OrderedDict()
        self._requested: set[str] = set()
        self._in_place: list[QGraphicsPixmapItem] = []
        self._labels: list[pg.TextItem] = []

        self.method_box = QComboBox()
        for m in available_methods():
            self.method_box.addItem(METHOD_NAMES[m], m)
        self.method_box.setToolTip("PCA: the two directions along which the photos' vectors vary most (fast, "
                                   "stable). t-SNE / UMAP: keep neighbours together (slower).")
        self.method_box.currentIndexChanged.connect(lambda _i: self.refresh(force=True))
        self.colour_box = QComboBox()
        self.colour_box.addItems(COLOURINGS)
        self.colour_box.currentIndexChanged.connect(lambda _i: self.recolour())
        self.mode_buttons = QButtonGroup(self)
        mode_row = []
        for mode, text, tip in (("pan", "Pan", "drag to pan, wheel to zoom"),
                                ("box", "Box", "drag a box to select photos"),
                                ("lasso", "Lasso", "draw around photos to select them")):
            b = QPushButton(text)
            b.setCheckable(True)
            b.setToolTip(tip)
            b.setProperty("mode", mode)
            self.mode_buttons.addButton(b)
            mode_row.append(b)
        mode_row[0].setChecked(True)
        self.mode_buttons.buttonClicked.connect(lambda b: self.set_mode(b.property("mode")))
        self.stop_button = QPushButton("Stop")
        self.stop_button.clicked.connect(self.stop)
        self.progress = QProgressBar()
        self.progress.setRange(0, 0)
        self.progress.setMaximumWidth(120)
        self.progress.setTextVisible(False)
        self.status = QLabel("")
        self.status.setStyleSheet("color: palette(mid);")

        self.results_button = QPushButton("Show in results")
        self.like_button = QPushButton("More like these")
        self.reveal_button = QPushButton("Reveal")
        self.copy_button = QPushButton("Copy paths")
        self.clear_button = QPushButton("Clear")
        self.results_button.clicked.connect(self.show_results)
        self.like_button.clicked.connect(lambda: self.more_like.emit(self.selected_paths()))
        self.reveal_button.clicked.connect(lambda: file_actions.reveal(self.selected_paths()[0]))
        self.copy_button.clicked.connect(self.copy_paths)
        self.clear_button.clicked.connect(lambda: self.select(np.zeros(len(self.paths), bool)))

        top = QHBoxLayout()
        top.addWidget(QLabel("Layout:"))
        top.addWidget(self.method_box)
        top.addWidget(QLabel("Colour by:"))
        top.addWidget(self.colour_box)
        top.addSpacing(8)
        for b in mode_row:
            top.addWidget(b)
        top.addSpacing(8)
        top.addWidget(self.progress)
        top.addWidget(self.stop_button)
        top.addWidget(self.status, 1)
        sel = QHBoxLayout()
        self.selection_label = QLabel("Nothing selected")
        sel.addWidget(self.selection_label, 1)
        for b in (self.results_button, self.like_button, self.reveal_button, self.copy_button, self.clear_button):
            sel.addWidget(b)

        self.view_box = SelectViewBox()
        self.view_box.setAspectLocked(True)
        self.view_box.box_selected.connect(self._box_selected)
        self.view_box.lasso_selected.connect(self.select_lasso)
        self.plot = pg.PlotWidget(viewBox=self.view_box, background="w")
        self.plot.hideAxis("left")
        self.plot.hideAxis("bottom")
        self.cloud = PointCloud()
        self.plot.addItem(self.cloud)
        self.plot.scene().sigMouseMoved.connect(self._mouse_moved)
        self.hover = QLabel(self.plot)
        self.hover.setStyleSheet("background: white; border: 1px solid #888; padding: 3px;")
        self.hover.hide()
        self._hover_path: str | None = None

        self.loader = ThumbnailLoader(160, self, cache=cache_dir() / "thumbnails")
        self.loader.loaded.connect(self._thumb_loaded)
        self._range_timer = QTimer(self, singleShot=True, interval=120)
        self._range_timer.timeout.connect(self._update_in_place)
        self.view_box.sigRangeChanged.connect(lambda *_: self._range_timer.start())

        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 4, 0, 0)
        lay.addLayout(top)
        lay.addLayout(sel)  # above the plot: in view however short the window
        lay.addWidget(self.plot, 1)
        self._set_busy(False)
        self._update_selection_ui()

    # ------------------------------------------------------------------ layout (in the engine)
    def method(self) -> str:
        return self.method_box.currentData() or "pca"

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt's name)
        """Small: the panel sits in a scroll area that sizes it by its preferred height, and the
        tab should take the room that is left rather than push the panel into scrolling."""
        return QSize(640, 240)

    def set_source(self, folder: str | None, model_id: str, indexed: int) -> None:
        """The folder, model and photo count to show; laid out again only when one changed."""
        self._wanted = (folder, model_id, indexed)
        self.refresh()

    def refresh(self, force: bool = False) -> None:
        wanted = self._wanted
        if not wanted or not wanted[0]:
            self.status.setText("Choose and index a folder to see its map.")
            return
        source = (*wanted, self.method())
        if source == self.source and not force:
            return
        self.source = source
        folder, model_id, _n, method = source
        self.status.setText(f"Laying out by {METHOD_NAMES[method]}…")
        self._set_busy(True)
        self.submit_job("collection_map", {"folder": folder, "model_id": model_id, "method": method},
                        name=f"Map {os.path.basename(folder)} ({METHOD_NAMES[method]})")

    def _done(self, res) -> None:
        self.unfinished = False
        self._set_busy(False)
        if self.source is None or res.root != os.path.realpath(self.source[0]) or res.method != self.source[3]:
            return
        self.show_map(res)

    # ------------------------------------------------------------------ drawing
    def show_map(self, res) -> None:
        self.result = res
        self.paths = list(res.paths)
        self.xy = np.asarray(res.xy, np.float64)
        self.selected = np.zeros(len(self.paths), bool)
        self.cloud.set_points(self.xy, self.point_argb())
        self._draw_labels()
        self.recolour()
        self.view_box.autoRange(padding=0.05)
        reused = f" · {res.reused:,} places from the cached map" if res.reused else ""
        self.status.setText(f"{len(self.paths):,} photos · {METHOD_NAMES[res.method]} · "
                            f"{len(res.labels)} clusters{reused}")
        self._update_selection_ui()

    def point_argb(self) -> np.ndarray:
        """N colours as 0xAARRGGBB, by the chosen colouring (vectorised: 100k points in a few ms)."""
        mode = self.colour_box.currentText()
        palette = np.array([QColor(c).rgba() for c in PALETTE], np.uint32)
        if mode == "Cluster" and self.result is not None:
            return palette[np.asarray(self.result.cluster) % len(PALETTE)]
        if mode == "Query score":
            scores = np.array([self.scores.get(p, np.nan) for p in self.paths], np.float64)
            ramp = np.array([_score_colour(v).rgba() for v in np.linspace(0, 1, 101)], np.uint32)
            out = np.full(len(self.paths), GREY.rgba(), np.uint32)
            known = ~np.isnan(scores)
            out[known] = ramp[np.rint(np.clip(scores[known], 0, 1) * 100).astype(int)]
            return out
        folders = [os.path.dirname(p) for p in self.paths]
        order = {f: i for i, f in enumerate(sorted(set(folders)))}
        return palette[np.array([order[f] for f in folders], np.int64) % len(PALETTE)]

    def recolour(self) -> None:
        if not self.paths:
            return
        self.cloud.set_colours(self.point_argb())
        for label in self._labels:
            label.setVisible(self.colour_box.currentText() == "Cluster")

    def set_scores(self, scores: dict[str, float]) -> None:
        """The last query's scores (path -> 0..1), for colouring by score."""
        self.scores = dict(scores)
        if self.colour_box.currentText() == "Query score":
            self.recolour()

    def _draw_labels(self) -> None:
        for item in self._labels:
            self.plot.removeItem(item)
        self._labels = []
        res = self.result
        for c, name in enumerate(res.labels):
            members = self.xy[np.asarray(res.cluster) == c]
            if not name or not len(members):
                continue
            colour = PALETTE[c % len(PALETTE)]
            item = pg.TextItem(name, color="#111", anchor=(0.5, 0.5), fill=pg.mkBrush(255, 255, 255, 215),
                               border=pg.mkPen(colour, width=2))
            item.setPos(*label_anchor(members))
            item.setZValue(20)
            self.plot.addItem(item, ignoreBounds=True)
            self._labels.append(item)

    # ------------------------------------------------------------------ thumbnails: hover and in place
    def _thumb(self, path: str) -> QPixmap | None:
        pm = self._thumbs.get(path)
        if pm is not None:
            self._thumbs.move_to_end(path)
            return pm
        if path not in self._requested:
            self._requested.add(path)
            self.loader.request([path])
        return None

    def _thumb_loaded(self, path: str, image: QImage) -> None:
        self._requested.discard(path)
        self._thumbs[path] = QPixmap.fromImage(image)
        while len(self._thumbs) > THUMB_CACHE:
            self._thumbs.popitem(last=False)
        if path == self._hover_path:
            self._show_hover(path)
        if self._in_place:
            self._update_in_place()

    def point_at(self, scene_pos, radius_px: float = 6.0) -> int | None:
        """The photo under the cursor (nearest point within `radius_px` screen pixels), or None."""
        if not len(self.xy) or not self.view_box.sceneBoundingRect().contains(scene_pos):
            return None
        here = self.view_box.mapSceneToView(scene_pos)
        sx, sy = self.view_box.viewPixelSize()
        d2 = ((self.xy[:, 0] - here.x()) / sx) ** 2 + ((self.xy[:, 1] - here.y()) / sy) ** 2
        i = int(np.argmin(d2))
        return i if d2[i] <= radius_px ** 2 else None

    def _mouse_moved(self, scene_pos) -> None:
        i = self.point_at(scene_pos)
        if i is None:
            self.hover.hide()
            self._hover_path = None
            return
        self._hover_path = self.paths[i]
        self._show_hover(self._hover_path)
        pos = self.plot.mapFromScene(scene_pos)
        x = min(pos.x() + 16, max(0, self.plot.width() - self.hover.width() - 4))
        y = min(pos.y() + 16, max(0, self.plot.height() - self.hover.height() - 4))
        self.hover.move(int(x), int(y))

    def _show_hover(self, path: str) -> None:
        pm = self._thumb(path)
        name = os.path.basename(shown_path(path))
        if pm is None:
            self.hover.setText(f"{name}\n(loading…)")
        else:
            scaled = pm.scaled(QSize(HOVER_PX, HOVER_PX), Qt.AspectRatioMode.KeepAspectRatio,
                               Qt.TransformationMode.SmoothTransformation)
            self.hover.setPixmap(scaled)
            self.hover.setToolTip(shown_path(path))
        self.hover.adjustSize()
        self.hover.show()
        self.hover.raise_()

    def visible_indices(self) -> np.ndarray:
        if not len(self.xy):
            return np.zeros(0, np.int64)
        (x0, x1), (y0, y1) = self.view_box.viewRange()
        inside = (self.xy[:, 0] >= x0) & (self.xy[:, 0] <= x1) & (self.xy[:, 1] >= y0) & (self.xy[:, 1] <= y1)
        return np.nonzero(inside)[0]

    def _update_in_place(self) -> None:
        """Zoomed in far enough: each photo in view drawn as its thumbnail, at its point."""
        shown = self.visible_indices()
        if len(shown) > IN_PLACE_UP_TO:
            shown = shown[:0]
        while len(self._in_place) < len(shown):
            item = QGraphicsPixmapItem()
            item.setFlag(QGraphicsPixmapItem.GraphicsItemFlag.ItemIgnoresTransformations)
            item.setZValue(10)
            self.view_box.addItem(item, ignoreBounds=True)
            self._in_place.append(item)
        for item in self._in_place[len(shown):]:
            item.hide()
        for item, i in zip(self._in_place, shown):
            pm = self._thumb(self.paths[i])
            if pm is None:
                item.hide()
                continue
            scaled = pm.scaled(QSize(IN_PLACE_PX, IN_PLACE_PX), Qt.AspectRatioMode.KeepAspectRatio,
                               Qt.TransformationMode.SmoothTransformation)
            item.setPixmap(scaled)
            item.setOffset(-scaled.width() / 2, -scaled.height() / 2)
            item.setPos(QPointF(*self.xy[i]))
            item.show()

    def thumbnails_in_place(self) -> int:
        return sum(item.isVisible() for item in self._in_place)

    # ------------------------------------------------------------------ selection
    def set_mode(self, mode: str) -> None:
        self.view_box.mode = mode
        for b in self.mode_buttons.buttons():
            b.setChecked(b.property("mode") == mode)

    def _box_selected(self, rect: QRectF) -> None:
        self.select_box(rect.left(), rect.top(), rect.right(), rect.bottom())

    def select_box(self, x0: float, y0: float, x1: float, y1: float) -> None:
        lo, hi = np.minimum([x0, y0], [x1, y1]), np.maximum([x0, y0], [x1, y1])
        self.select(((self.xy >= lo) & (self.xy <= hi)).all(axis=1) if len(self.xy) else np.zeros(0, bool))

    def select_lasso(self, polygon: np.ndarray) -> None:
        if len(polygon) < 3:
            return
        step = max(1, len(polygon) // 128)  # a long drag: every few points is outline enough
        self.select(points_in_polygon(self.xy, np.asarray(polygon)[::step]))

    def select(self, mask: np.ndarray) -> None:
        self.selected = np.asarray(mask, bool)
        self.cloud.set_selected(self.selected)
        self._update_selection_ui()
        self.selection_changed.emit(self.selected_paths())

    def selected_paths(self) -> list[str]:
        return [p for p, s in zip(self.paths, self.selected) if s]

    def copy_paths(self) -> None:
        QGuiApplication.clipboard().setText("\n".join(self.selected_paths()))

    def _update_selection_ui(self) -> None:
        n = int(self.selected.sum())
        self.selection_label.setText(f"{n:,} photos selected" if n else
                                     "Nothing selected: choose Box or Lasso and drag over the map")
        for b in (self.results_button, self.like_button, self.reveal_button, self.copy_button, self.clear_button):
            b.setEnabled(n > 0)
