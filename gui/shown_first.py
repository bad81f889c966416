"""Run a panel's automatic first request only once the user looks at the panel."""
from __future__ import annotations

from typing import Callable


class ShownFirst:
    """Mixin (put it before the Qt base class) for a panel that runs a model on its first sample by
    itself: `when_shown(run)` runs at once while the panel is visible and otherwise keeps `run` until
    the next showEvent, so a tab the user never opens never loads its model on the engine thread.
    Explicit user actions (Open, a drop, a sample click) call their request directly, not through this."""

    _on_show: Callable[[], None] | None = None

    def when_shown(self, run: Callable[[], None]) -> None:
        if self.isVisible():
            run()
        else:
            self._on_show = run  # the latest automatic request replaces an older one

    def showEvent(self, event) -> None:  # noqa: N802
        super().showEvent(event)
        run, self._on_show = self._on_show, None
        if run is not None:
            run()
