"""Widgets of the Generate panel: an image grid, class-similarity bars, a neighbour strip, a gallery list.

All of them take plain data (numpy uint8 arrays, floats, file paths) and draw it; none computes.
"""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QMimeData, QPoint, QRect, QRectF, QSize, Qt, QUrl, Signal
from PySide6.QtGui import QColor, QDrag, QIcon, QPainter, QPalette, QPixmap
from PySide6.QtWidgets import QListWidget, QListWidgetItem, QSizePolicy, QToolTip, QWidget

from gui.qimage import array_to_pixmap


class ImageGrid(QWidget):
    """Square cells, pixel-exact (no smoothing: a 28×28 image shows its real pixels), with
    an optional caption under each; click selects, drag carries the image's file."""

    clicked = Signal(int)

    def __init__(self, placeholder: str = "", columns: int = 4, caption_h: int = 18, parent=None):
        super().__init__(parent)
        self._pixmaps: list[QPixmap] = []
        self._captions: list[str] = []
        self._paths: list[str | None] = []
        self.columns = columns
        self.caption_h = caption_h
        self.placeholder = placeholder
        self.selected = -1
        self.dimmed = False  # a live preview (not the final image yet)
        self._press: QPoint | None = None
        self.setMinimumSize(200, 120)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def set_images(self, images, captions: list[str] | None = None, paths: list[str | None] | None = None,
                   dimmed: bool = False) -> None:
        self._pixmaps = [array_to_pixmap(np.ascontiguousarray(a)) for a in images]
        self._captions = list(captions or [""] * len(self._pixmaps))
        self._paths = list(paths or [None] * len(self._pixmaps))
        self.dimmed = dimmed
        if self.selected >= len(self._pixmaps):
            self.selected = -1
        self.update()

    def count(self) -> int:
        return len(self._pixmaps)

    def path(self, i: int) -> str | None:
        return self._paths[i] if 0 <= i < len(self._paths) else None

    def clear(self) -> None:
        self.set_images([])

    def _caption_need(self) -> int:
        """Column pitch that shows the widest caption whole (captions may use the gap between cells)."""
        fm = self.fontMetrics()
        return max((fm.horizontalAdvance(c) for c in self._captions if c), default=0) + 6

    def _layout(self) -> tuple[int, int, float, float]:
        """(columns, rows, cell side, column pitch). Cells are spaced wide enough for their captions;
        when a row of them would not fit, fewer columns."""
        n = max(1, len(self._pixmaps))
        need = self._caption_need()
        for cols in range(max(1, min(self.columns, n)), 0, -1):
            rows = -(-n // cols)
            side = max(8.0, min((self.width() - 8 * (cols + 1)) / cols,
                                (self.height() - rows * (self.caption_h + 8) - 8) / rows))
            pitch = max(side + 8, need)
            if cols * pitch - 8 <= self.width() - 8:
                break
        return cols, rows, side, pitch

    def cell_rect(self, i: int) -> QRectF:
        cols, rows, side, pitch = self._layout()
        total_w = (cols - 1) * pitch + side
        total_h = rows * (side + self.caption_h) + (rows - 1) * 8
        x0, y0 = (self.width() - total_w) / 2, (self.height() - total_h) / 2
        r, c = divmod(i, cols)
        return QRectF(x0 + c * pitch, y0 + r * (side + self.caption_h + 8), side, side)

    def caption_rect(self, i: int) -> QRectF:
        """Where caption i is drawn: under its cell, as wide as the column pitch."""
        r = self.cell_rect(i)
        pitch = self._layout()[3]
        return QRectF(r.center().x() - pitch / 2 + 1, r.bottom() + 2, pitch - 2, self.caption_h)

    def elided_captions(self) -> list[str]:
        """Captions drawn shortened at the current size (for layout checks)."""
        fm = self.fontMetrics()
        return [c for i, c in enumerate(self._captions)
                if c and fm.elidedText(c, Qt.TextElideMode.ElideRight, int(self.caption_rect(i).width())) != c]

    def paintEvent(self, event) -> None:  # noqa: N802
        p = QPainter(self)
        pal = self.palette()
        p.fillRect(self.rect(), pal.color(QPalette.ColorRole.Base))
        if not self._pixmaps:
            p.setPen(QColor(pal.color(QPalette.ColorRole.Mid)))
            p.drawRoundedRect(self.rect().adjusted(6, 6, -7, -7), 8, 8)
            p.setPen(pal.color(QPalette.ColorRole.PlaceholderText))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self.placeholder)
            return
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
        for i, pm in enumerate(self._pixmaps):
            r = self.cell_rect(i)
            p.drawPixmap(r, pm, QRectF(pm.rect()))
            if self.dimmed:
                p.fillRect(r, QColor(0, 0, 0, 60))
            if i == self.selected:
                p.setPen(pal.color(QPalette.ColorRole.Highlight))
                p.drawRect(r.adjusted(-2, -2, 2, 2))
            if self._captions[i]:
                p.setPen(pal.color(QPalette.ColorRole.WindowText))
                box = self.caption_rect(i)
                p.drawText(box, Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop,
                           p.fontMetrics().elidedText(self._captions[i], Qt.TextElideMode.ElideRight, int(box.width())))

    def index_at(self, pos) -> int:
        for i in range(len(self._pixmaps)):
            if self.cell_rect(i).contains(pos):
                return i
        return -1

    def mousePressEvent(self, event) -> None:  # noqa: N802
        i = self.index_at(event.position())
        self._press = event.position().toPoint()
        if i >= 0:
            self.selected = i
            self.update()
            self.clicked.emit(i)

    def mouseMoveEvent(self, event) -> None:  # noqa: N802
        if self._press is None or not event.buttons() & Qt.MouseButton.LeftButton:
            return
        if (event.position().toPoint() - self._press).manhattanLength() < 8:
            return
        i = self.index_at(self._press.toPointF())
        path = self.path(i)
        if path:
            mime = QMimeData()
            mime.setUrls([QUrl.fromLocalFile(path)])
            drag = QDrag(self)
            drag.setMimeData(mime)
            drag.setPixmap(self._pixmaps[i].scaled(64, 64))
            drag.exec(Qt.DropAction.CopyAction)
        self._press = None


class ClassBars(QWidget):
    """One compact row per class: name, a bar of CLIP's zero-shot probability, the cosine."""

    ROW = 20

    def __init__(self, parent=None):
        super().__init__(parent)
        self._rows: list[tuple[str, float, float]] = []  # (class, probability, cosine)
        self.highlight: str | None = None
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setMouseTracking(True)

    def set_rows(self, rows: list[tuple[str, float, float]], highlight: str | None = None) -> None:
        self._rows = list(rows)
        self.highlight = highlight
        self.setFixedHeight(max(1, len(self._rows)) * self.ROW + 4)
        self.update()

    def rows(self) -> list[tuple[str, float, float]]:
        return list(self._rows)

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(260, max(1, len(self._rows)) * self.ROW + 4)

    def paintEvent(self, event) -> None:  # noqa: N802
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        pal = self.palette()
        accent = pal.color(QPalette.ColorRole.Highlight)
        label_w, value_w = 92, 46
        bar_w = max(20, self.width() - label_w - value_w - 10)
        top = max((r[1] for r in self._rows), default=0)
        for i, (name, prob, cos) in enumerate(self._rows):
            y = 2 + i * self.ROW
            p.setPen(pal.color(QPalette.ColorRole.WindowText))
            font = p.font()
            font.setBold(prob == top or name == self.highlight)
            p.setFont(font)
            p.drawText(QRectF(0, y, label_w - 6, self.ROW), Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                       name)
            bar = QRectF(label_w, y + 4, bar_w, self.ROW - 8)
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(pal.color(QPalette.ColorRole.AlternateBase))
            p.drawRoundedRect(bar, 3, 3)
            p.setBrush(accent if prob == top else QColor(accent).lighter(150))
            p.drawRoundedRect(QRectF(bar.x(), bar.y(), max(2.0, bar_w * prob), bar.height()), 3, 3)
            p.setPen(pal.color(QPalette.ColorRole.WindowText))
            p.drawText(QRectF(label_w + bar_w + 4, y, value_w, self.ROW),
                       Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, f"{100 * prob:.0f}%")

    def mouseMoveEvent(self, event) -> None:  # noqa: N802
        i = int((event.position().y() - 2) // self.ROW)
        if 0 <= i < len(self._rows):
            name, prob, cos = self._rows[i]
            QToolTip.showText(event.globalPosition().toPoint(),
                              f"{name}: probability {100 * prob:.1f}% · cosine similarity {cos:+.3f}", self)


class GalleryList(QListWidget):
    """Thumbnails of the gallery PNGs, newest first; dragging one out carries its file."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setViewMode(QListWidget.ViewMode.IconMode)
        self.setIconSize(QSize(72, 72))
        self.setGridSize(QSize(112, 120))  # room for "★ seed 2147483647" on two lines under the icon
        self.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.setMovement(QListWidget.Movement.Static)
        self.setSelectionMode(QListWidget.SelectionMode.ExtendedSelection)
        self.setDragEnabled(True)
        self.setWordWrap(True)

    def set_items(self, items) -> None:
        """items: engine.generate.gallery.GalleryItem (path, params, favourite, created)."""
        selected = {i.data(Qt.ItemDataRole.UserRole) for i in self.selectedItems()}
        self.clear()
        for it in items:
            pm = QPixmap(it.path)
            if not pm.isNull():
                pm = pm.scaled(72, 72, Qt.AspectRatioMode.KeepAspectRatio,
                               Qt.TransformationMode.FastTransformation if pm.width() < 72
                               else Qt.TransformationMode.SmoothTransformation)
            prompt = it.params.get("prompt") or ("variation" if it.params.get("kind") == "variation" else "")
            item = QListWidgetItem(QIcon(pm), ("★ " if it.favourite else "") + f"seed {it.params.get('seed', '?')}")
            item.setData(Qt.ItemDataRole.UserRole, it.path)
            item.setData(Qt.ItemDataRole.UserRole + 1, it.favourite)
            tip = [prompt or "(no prompt)"]
            for key in ("seed", "steps", "guidance", "prior", "model"):
                if it.params.get(key) is not None:
                    tip.append(f"{key}: {it.params[key]}")
            item.setToolTip("\n".join(tip))
            self.addItem(item)
            if it.path in selected:
                item.setSelected(True)

    def paths(self) -> list[str]:
        return [self.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.count())]

    def cut_captions(self) -> list[str]:
        """Item texts that do not fit under their icon in a grid cell (for layout checks)."""
        room = QRect(0, 0, self.gridSize().width() - 4, 1000)
        height = self.gridSize().height() - self.iconSize().height() - 6
        fm = self.fontMetrics()
        texts = [self.item(i).text() for i in range(self.count())]
        return [t for t in texts
                if fm.boundingRect(room, Qt.TextFlag.TextWordWrap, t).width() > room.width()
                or fm.boundingRect(room, Qt.TextFlag.TextWordWrap, t).height() > height]

    def selected_paths(self) -> list[str]:
        return [i.data(Qt.ItemDataRole.UserRole) for i in self.selectedItems()]

    def mimeData(self, items):  # noqa: N802 - Qt API
        mime = QMimeData()
        mime.setUrls([QUrl.fromLocalFile(i.data(Qt.ItemDataRole.UserRole)) for i in items])
        return mime
