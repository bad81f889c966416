"""Persistent settings: an INI file in the platformdirs config folder (PATCHWORK_HOME overrides), and
the round trip of a panel's input widgets through it."""
from __future__ import annotations

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QAbstractSlider, QCheckBox, QComboBox, QDoubleSpinBox, QSpinBox

from engine.paths import config_dir, ensure


def open_settings() -> QSettings:
    return QSettings(str(ensure(config_dir()) / "patchwork.ini"), QSettings.Format.IniFormat)


def restore_widgets(settings: QSettings, fields) -> None:
    """Set each (key, widget, default) of `fields` from settings; a combo box matches item data, a
    check box reads "true"/"false" (INI files keep strings), spin boxes and sliders convert numbers."""
    for key, widget, default in fields:
        value = settings.value(key, default)
        if isinstance(widget, QComboBox):
            widget.setCurrentIndex(max(0, widget.findData(value)))
        elif isinstance(widget, QCheckBox):
            widget.setChecked(str(value).lower() == "true")
        elif isinstance(widget, QDoubleSpinBox):
            widget.setValue(float(value))
        elif isinstance(widget, (QSpinBox, QAbstractSlider)):
            widget.setValue(int(value))
        else:
            widget.setText(value)


def save_widgets(settings: QSettings, fields) -> None:
    """Write each (key, widget, _default) of `fields`, in the form restore_widgets reads."""
    for key, widget, _default in fields:
        if isinstance(widget, QComboBox):
            value = widget.currentData()
        elif isinstance(widget, QCheckBox):
            value = "true" if widget.isChecked() else "false"
        elif isinstance(widget, (QDoubleSpinBox, QSpinBox, QAbstractSlider)):
            value = widget.value()
        else:
            value = widget.text()
        settings.setValue(key, value)
