"""The Search panel's views of the whole folder beside its result grid: Results | Map | Duplicates.

Kept apart from panel.py: the panel hands over its result grid, and this wires the map's
selection and "more like these" into that grid. A view is brought up to date when it is shown
(the folder, the model or the number of indexed photos changed), so a hidden view costs nothing.
"""
from __future__ import annotations


from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QTabWidget

from gui.panels.search.duplicates_view import DuplicatesView
from gui.panels.search.photo_map import PhotoMapView
from gui.panels.search.results_model import ScoreRole

LIKE_TOP = 1000


class CollectionTabs(QTabWidget):
    def __init__(self, panel, results_widget, parent=None):
        super().__init__(parent)
        self.panel = panel
        self.map_view = PhotoMapView(panel.bridge)
        self.duplicates_view = DuplicatesView(panel.bridge)
        self.addTab(results_widget, "Results")
        self.addTab(self.map_view, "Map")
        self.addTab(self.duplicates_view, "Duplicates")
        self.setTabToolTip(1, "Every photo as a point: similar photos lie close together")
        self.setTabToolTip(2, "The same photo at other sizes, re-encoded, cropped, edited, or burst shots")
        self._own_reset = False  # the grid was filled from the map, not by a query
        self._scores_stale = True
        panel.results.modelReset.connect(self._results_reset)
        self.currentChanged.connect(self._shown)
        self.map_view.selection_changed.connect(self._selection)
        self.map_view.show_results.connect(lambda: self.setCurrentIndex(0))
        self.map_view.more_like.connect(self.more_like)
        self.map_view.colour_box.currentIndexChanged.connect(lambda _i: self._give_scores())
        # the panel's folder, model or photo count can change while a view is open (an index run
        # finished, photos were added): a cheap look once a second brings the open view up to date
        self._follow = QTimer(self, interval=1000)
        self._follow.timeout.connect(lambda: self._shown(self.currentIndex(), retry=False))
        self._follow.start()

    def _shown(self, index: int, retry: bool = True) -> None:
        """Bring the view at `index` up to date; `retry`: also redo a run that failed or was stopped
        (when the user opens the tab, not on the once-a-second look)."""
        view = self.widget(index)
        if view in (self.map_view, self.duplicates_view) and self.panel.index_job is None:
            view.set_source(self.panel.folder, self.panel.model_id(), self.panel.indexed)
            if retry and view.unfinished and view.job is None:
                view.refresh(force=True)
        if view is self.map_view:
            self._give_scores()

    # ------------------------------------------------------------------ query scores, for colouring
    def _results_reset(self) -> None:
        if self._own_reset:
            self._own_reset = False
        else:
            self._scores_stale = True

    def _give_scores(self) -> None:
        """The query's scores (the grid's rows at or above the cut-off), read only when wanted."""
        if not self._scores_stale or self.map_view.colour_box.currentText() != "Query score":
            return
        model = self.panel.results
        self.map_view.set_scores({model.path_at(r): model.data(model.index(r), ScoreRole)
                                  for r in range(model.rowCount())})
        self._scores_stale = False

    # ------------------------------------------------------------------ selection and "more like these"
    def _fill_grid(self, rows: list[tuple[str, float]], label: str) -> None:
        self._own_reset = True
        self.panel.results.set_results(rows)
        self.panel.result_label.setText(label)

    def _selection(self, paths: list[str]) -> None:
        if paths:
            self._fill_grid([(p, 1.0) for p in paths], f"{len(paths):,} photos selected on the map")

    def more_like(self, paths: list[str]) -> None:
        if not paths or not self.panel.folder:
            return
        n = len(paths)
        self.panel.result_label.setText(f"Looking for photos like the {n} selected…")
        self.panel.bridge.submit(
            "collection_like", {"paths": paths, "folder": self.panel.folder, "model_id": self.panel.model_id(),
                                "top_k": LIKE_TOP},
            name=f"More like {n} photos", on_result=self._like_done,
            on_error=lambda err: self.panel.result_label.setText(err.message))

    def _like_done(self, res) -> None:
        self._fill_grid([(h.path, h.score) for h in res.hits],
                        f"{len(res.hits):,} photos most like the mean of the selection · {1000 * res.seconds:.0f} ms")
        self.panel.grid.scrollToTop()
        self.setCurrentIndex(0)
