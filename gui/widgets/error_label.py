"""The red, selectable message box a panel shows when a job fails; hidden until there is one.

One class so every panel's errors look alike and can be copied with the mouse.
"""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel


def error_style(padding: int = 6) -> str:
    return ("background: #fdecea; color: #8a1c13; border: 1px solid #f5c2bd; border-radius: 4px; "
            f"padding: {padding}px;")


class ErrorLabel(QLabel):
    def __init__(self, padding: int = 6, parent=None):
        super().__init__("", parent)
        self.setWordWrap(True)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.setStyleSheet(error_style(padding))
        self.hide()
