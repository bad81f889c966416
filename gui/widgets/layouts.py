"""Columns and forms of widgets, written as one call instead of a run of addWidget/addRow lines."""
from __future__ import annotations

from PySide6.QtWidgets import QFormLayout, QLabel, QLayout, QVBoxLayout, QWidget


def vbox(*items, margins: int | None = None) -> QVBoxLayout:
    """A QVBoxLayout of `items`, top to bottom: a widget, a layout, (widget, stretch), or an int for a
    stretch of that factor. `margins` sets all four content margins; None keeps the style's."""
    lay = QVBoxLayout()
    if margins is not None:
        lay.setContentsMargins(margins, margins, margins, margins)
    for item in items:
        if isinstance(item, int):
            lay.addStretch(item)
        elif isinstance(item, tuple):
            lay.addWidget(*item)
        elif isinstance(item, QLayout):
            lay.addLayout(item)
        else:
            lay.addWidget(item)
    return lay


def column(*items, margins: int | None = None) -> QWidget:
    """A plain QWidget holding vbox(*items, margins=margins)."""
    box = QWidget()
    box.setLayout(vbox(*items, margins=margins))
    return box


def form(*rows: tuple) -> QFormLayout:
    """A QFormLayout of (label, field) rows; a field is a widget or a layout, "" labels nothing."""
    lay = QFormLayout()
    for label, field in rows:
        lay.addRow(label, field)
    return lay


def bold_label(text: str) -> QLabel:
    """A section or group title."""
    label = QLabel(text)
    label.setStyleSheet("font-weight: 600;")
    return label
