"""The Duplicates tab: groups of near-duplicate photos side by side, with resolution, size, date
and path, a suggested keeper, and a similarity slider.

Actions: reveal, copy paths, and move to the system trash (QFile.moveToTrash) only after a
confirmation that lists the files. Nothing is ever deleted outright. The grouping runs in the
engine ("collection_duplicates"); hashes are cached there, so moving the slider is quick.
"""
from __future__ import annotations

import os
import time

from PySide6.QtCore import QFile, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QGuiApplication, QImage, QPixmap
from PySide6.QtWidgets import (QCheckBox, QFrame, QHBoxLayout, QLabel, QMessageBox, QProgressBar, QPushButton,
                               QScrollArea, QSlider, QVBoxLayout, QWidget)

from engine.collection.duplicates import DEFAULT_THRESHOLD
from engine.paths import cache_dir, shown_path
from gui.latest import LatestRequest
from gui.panels.search import file_actions
from gui.panels.search.job_view import LatestJobView
from gui.thumbnails import ThumbnailLoader

THUMB = 160
GROUPS_AT_ONCE = 100  # group widgets built per "Show more": thousands at once would stall the window
LISTED = 15  # files named in the trash confirmation before "… and N more"
KEEPER_STYLE = "QFrame#card { border: 2px solid #2e7d32; border-radius: 4px; background: #f1f8f1; }"
CARD_STYLE = "QFrame#card { border: 1px solid #ccc; border-radius: 4px; }"


def _size(n: int) -> str:
    return f"{n / 2**20:.1f} MB" if n >= 2**20 else f"{n / 1024:.0f} KB"


class _Card(QFrame):
    """One photo of a group: thumbnail, facts, 'move to trash' tick (ticked for all but the keeper)."""

    def __init__(self, photo, keeper: bool, parent=None):
        super().__init__(parent)
        self.photo = photo
        self.setObjectName("card")
        self.setStyleSheet(KEEPER_STYLE if keeper else CARD_STYLE)
        self.picture = QLabel()
        self.picture.setFixedSize(THUMB, THUMB)
        self.picture.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.picture.setStyleSheet("background: #eee;")
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(photo.mtime))
        badge = "<b style='color:#2e7d32'>Keep (suggested)</b><br>" if keeper else \
            f"similarity {photo.similarity:.2f}<br>"
        facts = QLabel(f"{badge}{photo.width}×{photo.height} · {_size(photo.bytes)}<br>{when}<br>"
                       f"<span style='color:#555'>{os.path.basename(shown_path(photo.path))}</span>")
        facts.setToolTip(shown_path(photo.path))
        facts.setFixedWidth(THUMB)
        facts.setWordWrap(True)
        self.trash_box = QCheckBox("Move to trash")
        self.trash_box.setChecked(not keeper)
        reveal = QPushButton("Reveal")
        reveal.clicked.connect(lambda: file_actions.reveal(photo.path))
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        lay.addWidget(self.picture)
        lay.addWidget(facts)
        row = QHBoxLayout()
        row.addWidget(self.trash_box)
        row.addWidget(reveal)
        lay.addLayout(row)

    def set_image(self, image: QImage) -> None:
        self.picture.setPixmap(QPixmap.fromImage(image).scaled(
            QSize(THUMB, THUMB), Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation))


class _GroupBox(QFrame):
    trash_requested = Signal(list)

    def __init__(self, number: int, group, parent=None):
        super().__init__(parent)
        self.group = group
        self.setFrameShape(QFrame.Shape.StyledPanel)
        spare = sum(p.bytes for p in group.others)
        title = QLabel(f"<b>Group {number}</b> · {len(group.photos)} photos · {_size(spare)} beside the keeper")
        copy = QPushButton("Copy paths")
        copy.clicked.connect(lambda: QGuiApplication.clipboard().setText("\n".join(p.path for p in group.photos)))
        trash = QPushButton("Move ticked to trash…")
        trash.clicked.connect(lambda: self.trash_requested.emit(self.ticked()))
        head = QHBoxLayout()
        head.addWidget(title)
        head.addWidget(copy)
        head.addWidget(trash)
        head.addStretch(1)  # buttons beside the title: in view even when the photos run wider
        self.cards = [_Card(p, p.path == group.keeper) for p in group.photos]
        row = QHBoxLayout()
        for card in self.cards:
            row.addWidget(card)
        row.addStretch(1)
        lay = QVBoxLayout(self)
        lay.addLayout(head)
        lay.addLayout(row)

    def ticked(self) -> list[str]:
        return [c.photo.path for c in self.cards if c.trash_box.isChecked()]


class DuplicatesView(LatestJobView, QWidget):
    def __init__(self, bridge, parent=None):
        super().__init__(parent)
        self.bridge = bridge
        self.source: tuple | None = None
        self.unfinished = False  # the last search failed or was stopped
        self._wanted: tuple | None = None
        self.latest = LatestRequest(bridge)  # the layout or search in flight
        self.result = None
        self.boxes: list[_GroupBox] = []
        self._cards: dict[str, list[_Card]] = {}

        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(60, 100)
        self.slider.setValue(round(100 * DEFAULT_THRESHOLD))
        self.slider.setMaximumWidth(240)
        self.slider.setToolTip("How alike two photos must be (the mean of their embedding cosine and the share "
                               "of perceptual-hash bits they agree on). Right: only near-identical photos.")
        self.slider_label = QLabel()
        self.slider.valueChanged.connect(self._slider_moved)
        self._slider_timer = QTimer(self, singleShot=True, interval=400)
        self._slider_timer.timeout.connect(lambda: self.refresh(force=True))
        self.stop_button = QPushButton("Stop")
        self.stop_button.clicked.connect(self.stop)
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(160)
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(False)
        self.status = QLabel("")
        self.status.setStyleSheet("color: palette(mid);")
        top = QHBoxLayout()
        top.addWidget(QLabel("Similarity ≥"))
        top.addWidget(self.slider)
        top.addWidget(self.slider_label)
        top.addWidget(self.progress)
        top.addWidget(self.stop_button)
        top.addWidget(self.status, 1)

        self.list_widget = QWidget()
        self.list_layout = QVBoxLayout(self.list_widget)
        self.list_layout.addStretch(1)
        self.more_button = QPushButton("Show more groups")
        self.more_button.clicked.connect(self._add_groups)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.list_widget)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 4, 0, 0)
        lay.addLayout(top)
        lay.addWidget(scroll, 1)
        lay.addWidget(self.more_button)

        self.loader = ThumbnailLoader(THUMB, self, cache=cache_dir() / "thumbnails")
        self.loader.loaded.connect(self._thumb_loaded)
        self._slider_moved(self.slider.value(), rerun=False)
        self._set_busy(False)
        self.more_button.hide()

    def threshold(self) -> float:
        return self.slider.value() / 100

    def _slider_moved(self, value: int, rerun: bool = True) -> None:
        self.slider_label.setText(f"{value / 100:.2f}")
        if rerun and self._wanted:
            self._slider_timer.start()  # a drag is one search, when it comes to rest

    # ------------------------------------------------------------------ grouping (in the engine)
    def sizeHint(self) -> QSize:  # noqa: N802 (Qt's name)
        """Small: the panel sits in a scroll area that sizes it by its preferred height, and the
        tab should take the room that is left rather than push the panel into scrolling."""
        return QSize(640, 240)

    def set_source(self, folder: str | None, model_id: str, indexed: int) -> None:
        self._wanted = (folder, model_id, indexed)
        self.refresh()

    def refresh(self, force: bool = False) -> None:
        if not self._wanted or not self._wanted[0]:
            self.status.setText("Choose and index a folder to look for duplicates.")
            return
        source = (*self._wanted, self.threshold())
        if source == self.source and not force:
            return
        self.source = source
        folder, model_id, _n, threshold = source
        self.status.setText("Looking for near-duplicates…")
        self._set_busy(True)
        self.submit_job("collection_duplicates", {"folder": folder, "model_id": model_id, "threshold": threshold},
                        name=f"Duplicates in {os.path.basename(folder)}")

    def _done(self, res) -> None:
        self.unfinished = False
        self._set_busy(False)
        if self.source is None or abs(res.threshold - self.source[3]) > 1e-9:
            return
        self.show_groups(res)

    # ------------------------------------------------------------------ groups
    def show_groups(self, res) -> None:
        self.result = res
        for box in self.boxes:
            box.deleteLater()
        self.boxes, self._cards = [], {}
        self.loader.clear_queue()
        in_groups = sum(len(g.photos) for g in res.groups)
        spare = sum(p.bytes for g in res.groups for p in g.others)
        self.status.setText(f"{len(res.groups):,} groups ({in_groups:,} of {res.photos:,} photos) at similarity "
                            f"≥ {res.threshold:.2f} · {_size(spare)} beside the keepers · {res.seconds:.1f} s"
                            if res.groups else f"No near-duplicates among {res.photos:,} photos at similarity "
                                               f"≥ {res.threshold:.2f}.")
        self._add_groups()

    def _add_groups(self) -> None:
        start = len(self.boxes)
        for n, group in enumerate(self.result.groups[start:start + GROUPS_AT_ONCE], start + 1):
            box = _GroupBox(n, group)
            box.trash_requested.connect(self.move_to_trash)
            self.list_layout.insertWidget(self.list_layout.count() - 1, box)
            self.boxes.append(box)
            for card in box.cards:
                self._cards.setdefault(card.photo.path, []).append(card)
                self.loader.request([card.photo.path])
        left = len(self.result.groups) - len(self.boxes)
        self.more_button.setVisible(left > 0)
        self.more_button.setText(f"Show more groups ({left:,} left)")

    def _thumb_loaded(self, path: str, image: QImage) -> None:
        for card in self._cards.get(path, []):
            card.set_image(image)

    # ------------------------------------------------------------------ trash (never delete)
    def confirm_trash(self, paths: list[str]) -> bool:
        """A modal question that lists the files; True only for an explicit yes."""
        listed = "\n".join(shown_path(p) for p in paths[:LISTED])
        if len(paths) > LISTED:
            listed += f"\n… and {len(paths) - LISTED} more"
        box = QMessageBox(QMessageBox.Icon.Question, "Move to trash",
                          f"Move these {len(paths)} files to the system trash?\n\n{listed}\n\n"
                          "They can be restored from the trash; nothing is deleted.", parent=self)
        yes = box.addButton("Move to trash", QMessageBox.ButtonRole.DestructiveRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.exec()
        return box.clickedButton() is yes

    def move_to_trash(self, paths: list[str]) -> list[str]:
        """The paths moved to the trash (after the confirmation); those that could not be are named."""
        if not paths or not self.confirm_trash(paths):
            return []
        moved, failed = [], []
        for path in paths:
            (moved if QFile.moveToTrash(path)[0] else failed).append(path)
        for path in moved:
            for card in self._cards.pop(path, []):
                card.setEnabled(False)
                card.trash_box.setChecked(False)
                card.trash_box.setText("In the trash")
        message = f"{len(moved)} files moved to the trash."
        if failed:
            message += f" Could not move {len(failed)}: {', '.join(os.path.basename(p) for p in failed[:5])}" \
                       " (no trash on this drive, or no permission); nothing was deleted."
        self.status.setText(message)
        return moved
