"""A panel's inputs survive a restart: save_widgets writes them, restore_widgets reads them back
from a fresh INI file (where every value comes back as a string)."""
from __future__ import annotations

from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QLineEdit, QSlider, QSpinBox

from gui.settings import restore_widgets, save_widgets


def inputs(qtbot):
    combo = QComboBox()
    for key in ("raw", "rollout", "gradcam"):
        combo.addItem(key.title(), key)
    widgets = (combo, QCheckBox(), QDoubleSpinBox(), QSpinBox(), QSlider(Qt.Orientation.Horizontal), QLineEdit())
    for w in widgets:
        qtbot.addWidget(w)
    widgets[3].setRange(0, 1000)
    return (("p/method", combo, "raw"), ("p/smooth", widgets[1], "true"), ("p/guidance", widgets[2], 3.0),
            ("p/steps", widgets[3], 50), ("p/opacity", widgets[4], 60), ("p/prompt", widgets[5], "a photo of a bag"))


def test_defaults_then_a_round_trip_through_the_ini_file(qtbot, tmp_path):
    ini = str(tmp_path / "p.ini")
    fields = inputs(qtbot)
    restore_widgets(QSettings(ini, QSettings.Format.IniFormat), fields)
    combo, check, dspin, spin, slider, line = (w for _, w, _ in fields)
    assert (combo.currentData(), check.isChecked(), dspin.value(), spin.value(), slider.value(), line.text()) == \
        ("raw", True, 3.0, 50, 60, "a photo of a bag")

    combo.setCurrentIndex(2)
    check.setChecked(False)
    dspin.setValue(7.5)
    spin.setValue(12)
    slider.setValue(35)
    line.setText("a photo of a sneaker, white")
    settings = QSettings(ini, QSettings.Format.IniFormat)
    save_widgets(settings, fields)
    settings.sync()

    again = inputs(qtbot)
    restore_widgets(QSettings(ini, QSettings.Format.IniFormat), again)
    combo, check, dspin, spin, slider, line = (w for _, w, _ in again)
    assert (combo.currentData(), check.isChecked(), dspin.value(), spin.value(), slider.value(), line.text()) == \
        ("gradcam", False, 7.5, 12, 35, "a photo of a sneaker, white")
