"""A recipe's settings as a form, built from the engine's description of its config.

The key settings of each recipe are shown first; "All settings" reveals the rest. Each
field's tooltip is the comment beside it in the recipe's code. Only values that differ
from the recipe's defaults are sent (and remembered per recipe).
"""
from __future__ import annotations

import math

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFormLayout, QLineEdit, QSpinBox, QToolButton,
                               QVBoxLayout, QWidget)

COMMON = ("epochs", "max_steps", "batch_size", "lr")
#: The settings worth showing up front, per recipe (others fall back to COMMON).
KEY_FIELDS = {
    "supervised": ("model", "crop_padding", "label_smoothing"),
    "moco_v2": ("backbone", "K", "m", "T"),
    "moco_v3": ("backbone", "m", "T"),
    "simclr": ("backbone", "T"),
    "instdisc": ("backbone", "K", "m", "T"),
    "linear_probe": ("label_fraction",),
    "finetune": ("label_fraction", "backbone_lr_scale"),
    "mae": ("model", "mask_ratio"),
    "clip": ("model", "text_tower"),
    "lit": ("model",),
    "albef": ("alpha", "caption_noise", "queue_size"),
    "vilt": ("depth", "negatives", "caption_noise"),
    "pseudo_label": ("labels_per_class", "threshold", "steps_per_round", "class_limit"),
}
LABELS = {"K": "negatives K", "m": "momentum m", "T": "temperature T", "lr": "learning rate",
          "max_steps": "max steps (0: epochs)", "label_fraction": "label fraction"}


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


class SettingsForm(QWidget):
    changed = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.info = None
        self.editors: dict[str, QWidget] = {}
        self.fields: dict[str, object] = {}
        self.key_form = QFormLayout()
        self.more_form = QFormLayout()
        self.more = QWidget()
        self.more.setLayout(self.more_form)
        self.more.hide()
        self.toggle = QToolButton()
        self.toggle.setText("All settings ▸")
        self.toggle.setCheckable(True)
        self.toggle.setAutoRaise(True)
        self.toggle.toggled.connect(self._toggle)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(self.key_form)
        lay.addWidget(self.toggle)
        lay.addWidget(self.more)

    def _toggle(self, on: bool) -> None:
        self.more.setVisible(on)
        self.toggle.setText("All settings ▾" if on else "All settings ▸")

    def _clear(self) -> None:
        for form in (self.key_form, self.more_form):
            while form.rowCount():
                form.removeRow(0)
        self.editors.clear()
        self.fields.clear()

    def set_recipe(self, info, values: dict | None = None, hidden: tuple[str, ...] = ()) -> None:
        """Build the form for a RecipeInfo; `values` are remembered overrides; `hidden` fields
        are set elsewhere in the panel (the backbone model id of a probe)."""
        self._clear()
        self.info = info
        values = dict(values or {})
        if info is None or not info.available:
            return
        by_name = {f.name: f for f in info.fields}
        key = [n for n in (*COMMON, *KEY_FIELDS.get(info.name, ())) if n in by_name and n not in hidden]
        rest = [f.name for f in info.fields if f.name not in key and f.name not in hidden]
        for names, form in ((key, self.key_form), (rest, self.more_form)):
            for name in names:
                f = by_name[name]
                editor = self._editor(f, (info.choices or {}).get(name))
                self.fields[name] = f
                self.editors[name] = editor
                self._set(name, values.get(name, f.default))
                editor.setToolTip(f"{name}: {f.help}" if f.help else name)
                form.addRow(LABELS.get(name, name.replace("_", " ")), editor)

    def _editor(self, f, choices) -> QWidget:
        if f.type == "bool":
            w = QCheckBox()
            w.toggled.connect(self.changed)
        elif f.type == "int":
            w = QSpinBox()
            w.setRange(-1, 2_000_000_000)
            w.setGroupSeparatorShown(True)
            w.valueChanged.connect(self.changed)
        elif choices:
            w = QComboBox()
            w.addItems([str(c) for c in choices])
            w.currentIndexChanged.connect(self.changed)
        else:
            w = QLineEdit()
            w.editingFinished.connect(self.changed)
        return w

    def _set(self, name: str, value) -> None:
        w = self.editors[name]
        if isinstance(w, QCheckBox):
            w.setChecked(bool(value))
        elif isinstance(w, QSpinBox):
            w.setValue(int(value))
        elif isinstance(w, QComboBox):
            i = w.findText(str(value))
            w.setCurrentIndex(max(0, i))
        else:
            w.setText(_fmt(value))

    def set_values(self, values: dict) -> None:
        for name, value in values.items():
            if name in self.editors:
                self._set(name, value)
        self.changed.emit()

    def value(self, name: str):
        w, f = self.editors[name], self.fields[name]
        if isinstance(w, QCheckBox):
            return w.isChecked()
        if isinstance(w, QSpinBox):
            return w.value()
        if isinstance(w, QComboBox):
            return w.currentText()
        text = w.text().strip()
        if f.type == "float":
            try:
                v = float(text)
            except ValueError:
                raise ValueError(f"{name}: {text!r} is not a number") from None
            if not math.isfinite(v):
                raise ValueError(f"{name}: {text!r} is not a finite number")
            return v
        return text

    def config(self) -> dict:
        """The settings that differ from the recipe's defaults. Raises ValueError on bad input."""
        out = {}
        for name, f in self.fields.items():
            v = self.value(name)
            if v != f.default:
                out[name] = v
        return out
