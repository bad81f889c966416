"""What the Map and Duplicates views share about their one engine job: only the latest job's
callbacks count, Stop cancels it, its progress goes to the view's bar and status line, and a
failed or stopped job is tried again when the view is next shown."""
from __future__ import annotations


class LatestJobView:
    """Mixin for a view with `self.job`, `self._token`, `self.unfinished`, `self.progress`
    (QProgressBar), `self.stop_button` and `self.status` (QLabel), and its own `_done`."""

    def _callbacks(self) -> dict:
        """The job's callbacks, ignored once a newer job replaced it (a stopped job's
        'cancelled' arrives after its successor has started)."""
        self._token += 1
        token = self._token

        def current(handler):
            return lambda *args: handler(*args) if token == self._token else None

        return {"on_progress": current(self._progress), "on_result": current(self._done),
                "on_error": current(self._failed), "on_cancelled": current(self._cancelled)}

    def stop(self) -> None:
        if self.job is not None:
            self.bridge.cancel(self.job)

    def _progress(self, p) -> None:
        if p.fraction is None:
            self.progress.setRange(0, 0)
        else:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(1000 * p.fraction))
        self.status.setText(p.message)

    def _failed(self, err) -> None:
        self.job = None
        self.unfinished = True  # tried again when the tab is next shown, not every second
        self._set_busy(False)
        self.status.setText(err.message)

    def _cancelled(self) -> None:
        self.job = None
        self.unfinished = True
        self._set_busy(False)
        self.status.setText("Stopped.")

    def _set_busy(self, busy: bool) -> None:
        self.progress.setVisible(busy)
        self.stop_button.setVisible(busy)
