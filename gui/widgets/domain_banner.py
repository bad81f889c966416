"""The banner a panel shows above its results when the input lies outside what the model knows.

It says what the model knows and why this input is outside (the engine's DomainWarning), and
offers the catalogue models that fit ordinary photos: Download (the same "download_model"
request as the model pickers and the Models manager) or, once on disk, Use (selects it in
the panel's model list). Hidden while there is nothing to warn about.
"""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout

from gui.widgets.model_picker import READY_STATES

BANNER_STYLE = ("QFrame#domain_banner { background: #fff8e1; border: 1px solid #f2d98b; border-radius: 4px; }"
                "QFrame#domain_banner QLabel { color: #6d4c00; }")


class DomainBanner(QFrame):
    def __init__(self, bridge, combo: QComboBox | None = None, parent=None):
        """combo: the panel's model list; a suggested model found in it gets a Use button."""
        super().__init__(parent)
        self.bridge, self.combo = bridge, combo
        self.warning = None  # the DomainWarning shown
        self._states: dict[str, str] = {}  # suggested model id -> catalogue state
        self._details: dict[str, str] = {}  # ... and why it is not ready, e.g. the extra it needs
        self._downloading: dict[str, int] = {}  # model id -> download job
        self.setObjectName("domain_banner")
        self.setStyleSheet(BANNER_STYLE)
        self.title = QLabel("")
        self.title.setWordWrap(True)
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.detail = QLabel("")
        self.detail.setWordWrap(True)
        self.detail.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.buttons_row = QHBoxLayout()
        self.buttons_row.setContentsMargins(0, 0, 0, 0)
        self.buttons: dict[str, QPushButton] = {}
        self.progress = QLabel("")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(10, 6, 10, 6)
        lay.setSpacing(4)
        lay.addWidget(self.title)
        lay.addWidget(self.detail)
        lay.addLayout(self.buttons_row)
        self.hide()
        bridge.catalogue_changed.connect(self._refresh_states)

    # ------------------------------------------------------------------ showing
    def show_warning(self, warning) -> None:
        """Show a result's DomainWarning; None hides the banner."""
        self.warning = warning
        if warning is None:
            self.hide()
            return
        self.title.setText(f"<b>⚠ Outside what this model knows.</b> {warning.model} knows only {warning.knows}.")
        self.detail.setText("This input: " + "; ".join(warning.reasons) + ". Its answer here means little."
                            + (" For ordinary photos:" if warning.suggest else ""))
        self._build_buttons()
        self.show()
        self._refresh_states()

    def _build_buttons(self) -> None:
        while self.buttons_row.count():
            item = self.buttons_row.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        self.buttons = {}
        for model_id, name, size_mb in self.warning.suggest:
            button = QPushButton(name)
            button.clicked.connect(lambda _=False, m=model_id: self._act(m))
            self.buttons[model_id] = button
            self.buttons_row.addWidget(button)
        self.progress = QLabel("")
        self.buttons_row.addWidget(self.progress, 1)
        self._update_buttons()

    def _refresh_states(self) -> None:
        if self.warning is None or not self.warning.suggest or not self.isVisible():
            return
        self.bridge.submit("list_models", {}, name="List models (domain banner)", on_result=self._got_states)

    def _got_states(self, rows) -> None:
        wanted = {m for m, _, _ in self.warning.suggest} if self.warning else set()
        self._states = {r.entry.id: r.state.state for r in rows if r.entry.id in wanted}
        self._details = {r.entry.id: r.state.detail for r in rows if r.entry.id in wanted}
        self._update_buttons()

    @staticmethod
    def _panels_of(model_id: str) -> str:
        """The panels that list a model, in words: "Search, Attention"."""
        from engine import catalogue
        from engine.errors import PatchworkError

        try:
            return ", ".join(p.capitalize() for p in catalogue.get(model_id).panels)
        except PatchworkError:
            return "other panels"

    def _usable_here(self, model_id: str) -> bool:
        return self.combo is not None and self.combo.findData(model_id) >= 0

    def _update_buttons(self) -> None:
        if self.warning is None:
            return
        for model_id, name, size_mb in self.warning.suggest:
            button = self.buttons.get(model_id)
            if button is None:
                continue
            state = self._states.get(model_id)
            button.setEnabled(True)
            button.setToolTip("")
            if model_id in self._downloading:
                button.setText(f"Downloading {name}…")
                button.setEnabled(False)
            elif state in READY_STATES:
                button.setText(f"Use {name}" if self._usable_here(model_id) else f"✓ {name} is on disk")
                button.setEnabled(self._usable_here(model_id))
                if not self._usable_here(model_id):
                    button.setToolTip("Ready: the panels that use it list it in their model picker")
            elif state == "needs extra":
                button.setText(f"{name}: needs an extra")
                button.setEnabled(False)
                button.setToolTip(self._details.get(model_id, ""))
                self.progress.setText(self._details.get(model_id, ""))  # the install command
            else:
                where = "" if self._usable_here(model_id) else f" · for {self._panels_of(model_id)}"
                button.setText(f"Download {name} ({size_mb:,.0f} MB){where}")

    # ------------------------------------------------------------------ acting
    def _act(self, model_id: str) -> None:
        if self._states.get(model_id) in READY_STATES:
            if self._usable_here(model_id):
                self.combo.setCurrentIndex(self.combo.findData(model_id))  # the panel re-runs on its change
            return
        self.download(model_id)

    def download(self, model_id: str) -> None:
        """Download a suggested model with the catalogue's own request (progress here and in the Jobs dock)."""
        name = next((n for m, n, _ in self.warning.suggest if m == model_id), model_id) if self.warning else model_id

        def progress(p):
            self.progress.setText(p.message)

        def done(_=None):
            self._downloading.pop(model_id, None)
            self.progress.setText("")
            self._refresh_states()

        def failed(err):
            self._downloading.pop(model_id, None)
            self.progress.setText(err.message)
            self._update_buttons()

        self._downloading[model_id] = self.bridge.submit(
            "download_model", {"model_id": model_id}, name=f"Download {name}", background=True,
            on_progress=progress, on_result=done, on_error=failed, on_cancelled=done)
        self._update_buttons()
