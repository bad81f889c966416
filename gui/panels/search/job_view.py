"""What the Map and Duplicates views share about their one engine job: only the latest job's
callbacks count, Stop cancels it, its progress goes to the view's bar and status line, and a
failed or stopped job is tried again when the view is next shown."""
from __future__ import annotations


class LatestJobView:
    """Mixin for a view with `self.latest` (a gui.latest.LatestRequest), `self.unfinished`,
    `self.progress` (QProgressBar), `self.stop_button` and `self.status` (QLabel), and its own `_done`."""

    @property
    def job(self) -> int | None:
        """The view's job in flight, if any."""
        return self.latest.job

    def submit_job(self, request: str, params: dict, name: str) -> None:
        """Start the view's job, replacing one in flight; only the latest job's callbacks count
        (a stopped job's 'cancelled' arrives after its successor has started)."""
        self.latest.submit(request, params, name=name, on_progress=self._progress, on_result=self._done,
                           on_error=self._failed, on_cancelled=self._cancelled)

    def stop(self) -> None:
        self.latest.cancel()

    def _progress(self, p) -> None:
        if p.fraction is None:
            self.progress.setRange(0, 0)
        else:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(1000 * p.fraction))
        self.status.setText(p.message)

    def _failed(self, err) -> None:
        self.unfinished = True  # tried again when the tab is next shown, not every second
        self._set_busy(False)
        self.status.setText(err.message)

    def _cancelled(self) -> None:
        self.unfinished = True
        self._set_busy(False)
        self.status.setText("Stopped.")

    def _set_busy(self, busy: bool) -> None:
        self.progress.setVisible(busy)
        self.stop_button.setVisible(busy)
