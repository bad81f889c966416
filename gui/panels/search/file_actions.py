"""Open a file, reveal it in the system file manager, copy its path."""
from __future__ import annotations

import os
import shutil
import sys

from PySide6.QtCore import QProcess, QUrl
from PySide6.QtGui import QDesktopServices, QGuiApplication


def open_file(path: str) -> bool:
    return QDesktopServices.openUrl(QUrl.fromLocalFile(path))


def reveal(path: str) -> bool:
    """Show the file selected in the file manager where the platform allows it, else open its folder."""
    if sys.platform == "darwin":
        return QProcess.startDetached("open", ["-R", path])[0]
    if sys.platform.startswith("win"):
        return QProcess.startDetached("explorer", [f"/select,{os.path.normpath(path)}"])[0]
    if shutil.which("dbus-send"):  # the freedesktop FileManager1 interface selects the file
        uri = QUrl.fromLocalFile(path).toString()
        ok = QProcess.startDetached("dbus-send", [
            "--session", "--print-reply", "--dest=org.freedesktop.FileManager1", "--type=method_call",
            "/org/freedesktop/FileManager1", "org.freedesktop.FileManager1.ShowItems",
            f"array:string:{uri}", "string:"])[0]
        if ok:
            return True
    return QDesktopServices.openUrl(QUrl.fromLocalFile(os.path.dirname(path)))


def copy_path(path: str) -> None:
    QGuiApplication.clipboard().setText(path)
