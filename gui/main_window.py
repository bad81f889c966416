"""The main window: a thin assembler of panels (from gui.panels), status bar, jobs dock, menus."""
from __future__ import annotations

from collections.abc import Mapping

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QFrame, QLabel, QMainWindow, QMessageBox, QScrollArea, QTabWidget, QWidget

from engine.device import CHOICES
from gui import panels
from gui.jobs_dock import JobsDock
from gui.status_bar import EngineStatusBar


class PanelTabs(QTabWidget):
    """One tab per panel, each inside a scroll area: the window can shrink below a panel's
    minimum size (a 1366×768 laptop) and the panel scrolls instead of being clipped.
    setCurrentWidget/currentWidget/indexOf speak in panels, not scroll areas."""

    def add_panel(self, panel, title: str) -> QScrollArea:
        area = QScrollArea()
        area.setWidgetResizable(True)
        area.setFrameShape(QFrame.Shape.NoFrame)
        area.setWidget(panel)
        self.addTab(area, title)
        return area

    def _area(self, widget):
        for i in range(self.count()):
            area = self.widget(i)
            if area is widget or (isinstance(area, QScrollArea) and area.widget() is widget):
                return area
        return widget

    def setCurrentWidget(self, widget) -> None:  # noqa: N802
        super().setCurrentWidget(self._area(widget))

    def currentWidget(self):  # noqa: N802
        area = super().currentWidget()
        return area.widget() if isinstance(area, QScrollArea) else area

    def indexOf(self, widget) -> int:  # noqa: N802
        return super().indexOf(self._area(widget))


class LazyPanels(Mapping):
    """The panels by id, each built on first use: when its tab is first shown, or when code asks
    for it (`window.panels["train"]`). Building all seven before the first paint cost over a
    second (pyqtgraph's import and the Train plots alone ~0.7 s); a tab never opened costs nothing.
    Until built, a tab holds a "Loading…" placeholder inside its scroll area."""

    def __init__(self, tabs: PanelTabs, bridge, settings):
        self._tabs, self._bridge, self._settings = tabs, bridge, settings
        self._built: dict[str, QWidget] = {}
        self._areas: dict[str, QScrollArea] = {}
        self._targets: dict[str, str] = {}
        for panel_id, title, target in panels.PANELS:
            placeholder = QLabel(f"Loading {title}…", alignment=Qt.AlignmentFlag.AlignCenter)
            self._areas[panel_id] = tabs.add_panel(placeholder, title)
            self._targets[panel_id] = target

    def __getitem__(self, panel_id: str) -> QWidget:
        if panel_id not in self._built:
            target = self._targets[panel_id]  # KeyError for an unknown id, as a dict would
            widget = panels.load(target)(self._bridge, self._settings)
            self._built[panel_id] = widget
            self._areas[panel_id].setWidget(widget)  # deletes the placeholder
        return self._built[panel_id]

    def __iter__(self):
        return iter(self._targets)

    def __len__(self) -> int:
        return len(self._targets)

    def built(self) -> list[str]:
        return list(self._built)

    def build_tab(self, index: int) -> None:
        area = self._tabs.widget(index)
        for panel_id, a in self._areas.items():
            if a is area:
                self[panel_id]


class MainWindow(QMainWindow):
    first_painted = Signal()

    def __init__(self, bridge, settings, parent=None):
        super().__init__(parent)
        self.bridge = bridge
        self.settings = settings
        self._painted = False
        self.setWindowTitle("Patchwork")
        self.resize(1200, 800)

        self.tabs = PanelTabs()
        self.tabs.setDocumentMode(True)
        self.panels = LazyPanels(self.tabs, bridge, settings)
        self.setCentralWidget(self.tabs)

        self.jobs_dock = JobsDock(bridge, settings, self)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.jobs_dock)
        self.setStatusBar(EngineStatusBar(bridge, self))
        self._build_menus()
        self._restore()

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        quit_action = QAction("&Quit", self, shortcut=QKeySequence.StandardKey.Quit, triggered=self.close)
        file_menu.addAction(quit_action)

        view = self.menuBar().addMenu("&View")
        view.addAction(self.jobs_dock.toggleViewAction())

        engine = self.menuBar().addMenu("&Engine")
        device_menu = engine.addMenu("&Device")
        group = QActionGroup(self)
        current = self.settings.value("engine/device", "auto")
        self.device_actions = {}
        for choice in CHOICES:
            act = QAction(choice.upper() if choice != "auto" else "Auto (CUDA > MPS > CPU)", self, checkable=True)
            act.setChecked(choice == current)
            act.triggered.connect(lambda _=False, c=choice: self.set_device(c))
            group.addAction(act)
            device_menu.addAction(act)
            self.device_actions[choice] = act
        models = self.menuBar().addMenu("&Models")
        models.addAction(QAction("&Manage models…", self, triggered=self.show_models_dialog))
        engine.addAction(QAction("&Unload all models", self,
                                 triggered=lambda: self.bridge.submit("unload_models", name="Unload models")))

        help_menu = self.menuBar().addMenu("&Help")
        help_menu.addAction(QAction("&About Patchwork", self, triggered=self._about))

    def show_models_dialog(self):
        from gui.models_dialog import ModelsDialog

        if getattr(self, "models_dialog", None) is None:
            self.models_dialog = ModelsDialog(self.bridge, self.settings, self)
        else:
            self.models_dialog.refresh()
        self.models_dialog.show()
        self.models_dialog.raise_()
        return self.models_dialog

    def set_device(self, choice: str) -> None:
        """Persist the choice and switch the running engine (models reload on the new device)."""
        self.settings.setValue("engine/device", choice)
        self.bridge.submit("set_device", {"device": choice}, name=f"Switch device to {choice}",
                           on_error=lambda e: self.statusBar().showMessage(f"⚠ {e.message}", 15000))

    def _about(self) -> None:
        st = self.bridge.status
        QMessageBox.about(self, "About Patchwork",
                          "<b>Patchwork</b><br>A workbench for looking inside vision models.<br><br>"
                          f"Device: {st.device_name if st else 'starting'}<br>"
                          f"torch {st.torch_version if st else '…'}")

    def _restore(self) -> None:
        geometry = self.settings.value("window/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        state = self.settings.value("window/state")
        if state is not None:
            self.restoreState(state)
        self.tabs.setCurrentIndex(int(self.settings.value("window/tab", 0)))

    def closeEvent(self, event) -> None:  # noqa: N802
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState())
        self.settings.setValue("window/tab", self.tabs.currentIndex())
        self.settings.sync()
        super().closeEvent(event)

    def paintEvent(self, event) -> None:  # noqa: N802
        super().paintEvent(event)
        if not self._painted:
            self._painted = True
            self.first_painted.emit()
            # The current panel is built right after the first paint, the others when first shown.
            self.tabs.currentChanged.connect(self.panels.build_tab)
            QTimer.singleShot(0, lambda: self.panels.build_tab(self.tabs.currentIndex()))
