"""The result grid's model: (path, score) rows above a score cut-off, thumbnails loaded lazily.

Only rows the view actually paints ask for a thumbnail (data() with DecorationRole), so
100,000 results cost a list of tuples, not 100,000 decodes. Pixmaps live in a bounded LRU.
"""
from __future__ import annotations

import os
from collections import OrderedDict

from PySide6.QtCore import QAbstractListModel, QModelIndex, QSize, Qt
from PySide6.QtGui import QColor, QIcon, QImage, QPainter, QPixmap

from engine.paths import cache_dir, shown_path
from gui.thumbnails import ThumbnailLoader

PathRole = Qt.ItemDataRole.UserRole
ScoreRole = Qt.ItemDataRole.UserRole + 1
THUMB = 160
CACHE_ITEMS = 1500  # pixmaps kept in memory (~100 KB each at 160 px)


def _placeholder(text: str = "") -> QIcon:
    pm = QPixmap(THUMB, THUMB)
    pm.fill(QColor("#e9e9e9"))
    if text:
        p = QPainter(pm)
        p.setPen(QColor("#888"))
        p.drawText(pm.rect(), Qt.AlignmentFlag.AlignCenter, text)
        p.end()
    return QIcon(pm)


class ResultsModel(QAbstractListModel):
    def __init__(self, parent=None):
        super().__init__(parent)
        self._all: list[tuple[str, float]] = []  # best first
        self._rows: list[tuple[str, float]] = []  # those at or above the cut-off
        self._row_of: dict[str, int] = {}
        self.cutoff = 0.0
        self._icons: OrderedDict[str, QIcon] = OrderedDict()
        self._pending: set[str] = set()
        self._failed: set[str] = set()
        self._loading = _placeholder()
        self._broken = _placeholder("no preview")
        self.loader = ThumbnailLoader(THUMB, self, cache=cache_dir() / "thumbnails")
        self.loader.loaded.connect(self._loaded)
        self.loader.failed.connect(self._load_failed)

    # ------------------------------------------------------------------ contents
    def set_results(self, hits: list[tuple[str, float]]) -> None:
        self.beginResetModel()
        self._all = list(hits)
        self._row_of = {p: i for i, (p, _) in enumerate(self._all)}  # shown rows are a prefix of _all
        self._apply_cutoff()
        self.loader.clear_queue()
        self._pending.clear()
        self.endResetModel()

    def set_cutoff(self, cutoff: float) -> None:
        if cutoff == self.cutoff:
            return
        self.beginResetModel()
        self.cutoff = cutoff
        self._apply_cutoff()
        self.endResetModel()

    def _apply_cutoff(self) -> None:
        # results arrive sorted best first, so the cut-off is a prefix
        n = len(self._all)
        lo, hi = 0, n
        while lo < hi:
            mid = (lo + hi) // 2
            if self._all[mid][1] >= self.cutoff:
                lo = mid + 1
            else:
                hi = mid
        self._rows = self._all[:lo]
    def total(self) -> int:
        return len(self._all)

    def scores(self) -> list[float]:
        return [s for _, s in self._all]

    def path_at(self, row: int) -> str:
        return self._rows[row][0]

    # ------------------------------------------------------------------ Qt model API
    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(self._rows)

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or index.row() >= len(self._rows):
            return None
        path, score = self._rows[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return f"{score:.3f} · {os.path.basename(shown_path(path))}"
        if role == Qt.ItemDataRole.DecorationRole:
            return self._icon(path)
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"{shown_path(path)}\nrelevance {score:.4f}"
        if role == PathRole:
            return path
        if role == ScoreRole:
            return score
        return None

    # ------------------------------------------------------------------ thumbnails
    def _icon(self, path: str) -> QIcon:
        icon = self._icons.get(path)
        if icon is not None:
            self._icons.move_to_end(path)
            return icon
        if path in self._failed:
            return self._broken
        if path not in self._pending:
            self._pending.add(path)
            self.loader.request([path])
        return self._loading

    def _loaded(self, path: str, image: QImage) -> None:
        self._pending.discard(path)
        canvas = QPixmap(THUMB, THUMB)  # centre on a fixed square so the grid stays even
        canvas.fill(Qt.GlobalColor.transparent)
        p = QPainter(canvas)
        scaled = image.scaled(QSize(THUMB, THUMB), Qt.AspectRatioMode.KeepAspectRatio,
                              Qt.TransformationMode.SmoothTransformation)
        p.drawImage((THUMB - scaled.width()) // 2, (THUMB - scaled.height()) // 2, scaled)
        p.end()
        self._icons[path] = QIcon(canvas)
        while len(self._icons) > CACHE_ITEMS:
            self._icons.popitem(last=False)
        self._changed(path)

    def _load_failed(self, path: str) -> None:
        self._pending.discard(path)
        self._failed.add(path)
        self._changed(path)

    def _changed(self, path: str) -> None:
        row = self._row_of.get(path)
        if row is not None and row < len(self._rows):
            idx = self.index(row)
            self.dataChanged.emit(idx, idx, [Qt.ItemDataRole.DecorationRole])

    def icon_loaded(self, path: str) -> bool:
        return path in self._icons
