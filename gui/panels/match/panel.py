"""The Match panel: does this caption describe this image? Align (ITC) before fuse (ITM).

Drop or open an image, type captions (one per line). Each caption gets two scores: the ITC
similarity of the separately encoded image and caption, and the fusion encoder's ITM
probability. Click a caption and then one of its words to see that word's Grad-CAM over
the image patches (ALBEF's visualisation of the cross-attention). A ViLT model (one
transformer over words and patches) has no ITC: its ITC columns show "—" and a line says why.
The engine computes everything; this panel only draws what comes back.
"""
from __future__ import annotations

import os

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (QAbstractItemView, QButtonGroup, QHBoxLayout, QHeaderView, QLabel,
                               QPlainTextEdit, QPushButton, QTableWidget,
                               QTableWidgetItem, QToolButton, QVBoxLayout, QWidget)

from engine.match.jobs import DEFAULT_ALBEF
from gui.image_input import ImageInput
from gui.qimage import array_to_pixmap
from gui.widgets.domain_banner import DomainBanner
from gui.widgets.error_label import ErrorLabel
from gui.widgets.image_view import ImageView
from gui.widgets.model_picker import ModelPicker, open_and_model_row
from gui.widgets.score_cell import ScoreCell
from gui.widgets.sample_strip import SampleShelf, SampleStrip

DEFAULT_CAPTIONS = ("a photo of a t-shirt.", "a photo of a pair of trousers.", "a photo of a sneaker.",
                    "a photo of an ankle boot.", "a photo of a bag.", "a photo of a shirt.")
EXPLAIN = ("<b>Align before fuse.</b> ITC compares the image and the caption encoded <i>separately</i> "
           "(cheap: one vector each, as a search index would). ITM <i>fuses</i> them: the caption's words "
           "cross-attend to the image patches and a head says match / no match. Click a caption, then a word, "
           "to see where that word looked (Grad-CAM of the ITM score on the cross-attention).")
EXPLAIN_VILT = ("<b>One transformer (ViLT).</b> The caption's words and the raw image patches (a linear patch "
                "embedding: no CNN, no detector) go through <i>one</i> transformer together; a head on its first "
                "token says match / no match. Click a caption, then a word, to see where that word looked (Grad-CAM "
                "of the ITM score on the words-to-patches attention).")
NO_ITC = ("<b>ViLT has no ITC.</b> One transformer reads the words and the raw image patches together, so there "
          "are no separate image and caption embeddings: every caption costs a full pass with the image, and a photo "
          "collection cannot be indexed once and searched cheaply (ALBEF and CLIP can).")
WHOLE = -2  # the word buttons' id for the whole caption (-1 is Qt's "no id")
COLUMNS = ("Caption", "ITC similarity", "ITC share", "ITM P(match)")


def _dash() -> QLabel:
    label = QLabel("—")
    label.setAlignment(Qt.AlignmentFlag.AlignCenter)
    label.setToolTip("ViLT has no separate embeddings to compare")
    return label


def _bar(value: float, text: str) -> ScoreCell:
    return ScoreCell(value, text)


class MatchPanel(ImageInput, QWidget):
    panel_id = "match"

    def __init__(self, bridge, settings, parent: QWidget | None = None):
        super().__init__(parent)
        self.bridge, self.settings = bridge, settings
        self.current_path: str | None = None
        self.result = None  # the latest MatchResult shown
        self.results_shown = 0
        self.setAcceptDrops(True)

        self.open_button = QPushButton("Open image…")
        self.open_button.clicked.connect(self._choose_file)
        self.model_picker = ModelPicker(bridge, "match", settings, default=DEFAULT_ALBEF)
        self.model_picker.model_changed.connect(lambda _id: self.run_match())
        self.domain_banner = DomainBanner(bridge, self.model_picker.combo)
        top = open_and_model_row(self.open_button, self.model_picker)

        self.explain = QLabel(EXPLAIN)
        self.explain.setWordWrap(True)
        self.explain.setStyleSheet("color: palette(mid);")

        # ---- left: the image (with the chosen word's map) and the words of the chosen caption
        self.view = ImageView("Drop an image here")
        self.view.setMinimumSize(260, 260)
        self.view.file_dropped.connect(self.set_image)
        self.map_title = QLabel("")
        self.map_title.setWordWrap(True)
        self.words_row = QHBoxLayout()
        self.words_row.setSpacing(2)
        self.word_group = QButtonGroup(self)
        self.word_group.setExclusive(True)
        self.word_group.idClicked.connect(self.show_word)
        words_holder = QWidget()
        words_holder.setLayout(self.words_row)
        left = QVBoxLayout()
        left.addWidget(self.view, 1)
        left.addWidget(self.map_title)
        left.addWidget(words_holder)

        # ---- right: captions in, scores out
        self.captions_edit = QPlainTextEdit()
        self.captions_edit.setPlaceholderText("One caption per line")
        saved = settings.value("match/captions", "")
        self.captions_edit.setPlainText(str(saved) if saved else "\n".join(DEFAULT_CAPTIONS))
        self.captions_edit.setMaximumHeight(130)
        self.match_button = QPushButton("Match")
        self.match_button.setToolTip("Score every caption against the image (Ctrl+Return)")
        self.match_button.clicked.connect(self.run_match)
        QShortcut(QKeySequence("Ctrl+Return"), self.captions_edit, activated=self.run_match)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().hide()
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for c in range(1, len(COLUMNS)):
            header.setSectionResizeMode(c, QHeaderView.ResizeMode.Fixed)
            self.table.setColumnWidth(c, 120)
        self.table.itemSelectionChanged.connect(self._caption_selected)
        self.metrics = QLabel("")
        self.metrics.setWordWrap(True)
        self.no_itc = QLabel(NO_ITC)
        self.no_itc.setWordWrap(True)
        self.no_itc.hide()
        self.error_label = ErrorLabel()
        right = QVBoxLayout()
        right.addWidget(QLabel("Captions (one per line):"))
        right.addWidget(self.captions_edit)
        buttons = QHBoxLayout()
        buttons.addWidget(self.match_button)
        buttons.addStretch(1)
        right.addLayout(buttons)
        right.addWidget(self.table, 1)
        right.addWidget(self.no_itc)
        right.addWidget(self.metrics)
        right.addWidget(self.error_label)

        body = QHBoxLayout()
        body.addLayout(left, 2)
        body.addLayout(right, 3)

        self.samples_holder = SampleShelf()
        self.samples_holder.chosen.connect(self.set_image)
        self.samples: SampleStrip | None = self.samples_holder.strip

        lay = QVBoxLayout(self)
        lay.addWidget(self.domain_banner)
        lay.addLayout(top)
        lay.addWidget(self.explain)
        lay.addLayout(body, 1)
        lay.addWidget(self.samples_holder)
        self.load_samples("match_samples")

    # ------------------------------------------------------------------ inputs
    def model_id(self) -> str:
        return self.model_picker.current_id() or DEFAULT_ALBEF

    def captions(self) -> list[str]:
        return [line.strip() for line in self.captions_edit.toPlainText().splitlines() if line.strip()]

    # ------------------------------------------------------------------ requests
    def run_match(self) -> None:
        if not self.current_path:
            return
        captions = self.captions()
        self.settings.setValue("match/captions", "\n".join(captions))
        self.submit_latest("match", {"path": self.current_path, "captions": captions, "model_id": self.model_id()},
                           name=f"Match {os.path.basename(self.current_path)} · {len(captions)} captions")

    run_image = run_match  # ImageInput's request for current_path

    # ------------------------------------------------------------------ results
    def show_result(self, res) -> None:
        keep = self.selected_caption()
        self.result = res
        self.results_shown += 1
        self.error_label.hide()
        self.domain_banner.show_warning(res.domain_warning)
        self.table.blockSignals(True)
        self.table.setRowCount(len(res.captions))
        for row, c in enumerate(res.captions):
            item = QTableWidgetItem(c.text)
            item.setToolTip(c.text)
            self.table.setItem(row, 0, item)
            if c.itc_similarity is None:
                self.table.setCellWidget(row, 1, _dash())
                self.table.setCellWidget(row, 2, _dash())
            else:
                self.table.setCellWidget(row, 1, _bar((c.itc_similarity + 1) / 2, f"{c.itc_similarity:+.3f}"))
                self.table.setCellWidget(row, 2, _bar(c.itc_probability, f"{100 * c.itc_probability:.1f}%"))
            self.table.setCellWidget(row, 3, _bar(c.itm_probability, f"{100 * c.itm_probability:.1f}%"))
        self.table.blockSignals(False)
        has_itc = res.captions[0].itc_similarity is not None
        self.no_itc.setVisible(not has_itc)
        self.explain.setText(EXPLAIN if has_itc else EXPLAIN_VILT)
        best_itm = max(range(len(res.captions)), key=lambda i: res.captions[i].itm_probability)
        timing = f"{1000 * res.seconds:.0f} ms" + (f" + {res.load_seconds:.1f} s to load" if res.load_seconds > 0.05
                                                   else "")
        itc = ""
        if has_itc:
            best_itc = max(range(len(res.captions)), key=lambda i: res.captions[i].itc_similarity)
            itc = f"ITC's best: <b>{res.captions[best_itc].text}</b> · "
        layer = "layer" if res.family == "vilt" else "fusion layer"
        self.metrics.setText(f"{itc}ITM's best: <b>{res.captions[best_itm].text}</b> · maps from {layer} "
                             f"{res.layer + 1} · {timing}")
        row = keep if keep is not None and keep < len(res.captions) else best_itm
        self.table.selectRow(row)
        self._caption_selected()

    def selected_caption(self) -> int | None:
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        return rows[0].row() if rows else None

    def _caption_selected(self) -> None:
        """Rebuild the word buttons for the chosen caption and show its whole-caption map."""
        for button in self.word_group.buttons():
            self.word_group.removeButton(button)
            button.deleteLater()
        row = self.selected_caption()
        if self.result is None or row is None:
            return
        c = self.result.captions[row]
        whole = QToolButton()
        whole.setText("whole caption")
        whole.setCheckable(True)
        self.word_group.addButton(whole, WHOLE)
        self.words_row.addWidget(whole)
        for i, word in enumerate(c.words):
            b = QToolButton()
            b.setText(word)
            b.setCheckable(True)
            self.word_group.addButton(b, i)
            self.words_row.addWidget(b)
        whole.setChecked(True)
        self.show_word(WHOLE)

    def show_word(self, index: int) -> None:
        """Show word `index` of the chosen caption over the image (WHOLE: the whole caption)."""
        row = self.selected_caption()
        if self.result is None or row is None:
            return
        c = self.result.captions[row]
        if 0 <= index < len(c.words):
            self.view.set_pixmap(array_to_pixmap(c.word_overlays[index]))
            self.map_title.setText(f"Grad-CAM of ITM for the word <b>{c.words[index]}</b> in “{c.text}”")
            button = self.word_group.button(index)
        else:
            self.view.set_pixmap(array_to_pixmap(c.caption_overlay))
            self.map_title.setText(f"Grad-CAM of ITM for the whole caption “{c.text}”")
            button = self.word_group.button(WHOLE)
        if button is not None and not button.isChecked():
            button.setChecked(True)
