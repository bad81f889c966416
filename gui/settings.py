"""Persistent settings: an INI file in the platformdirs config folder (PATCHWORK_HOME overrides)."""
from __future__ import annotations

from PySide6.QtCore import QSettings

from engine.paths import config_dir, ensure


def open_settings() -> QSettings:
    return QSettings(str(ensure(config_dir()) / "patchwork.ini"), QSettings.Format.IniFormat)
