"""Only the latest request counts: the one helper every panel uses for a request the user can
replace before it answers (a new image, a new query, a new preview).

A new `submit` cancels the request still in flight, and every callback of a replaced request
is dropped: its late result, its error, and its 'cancelled', which the engine sends after the
successor has started. `job` is the request in flight; it is cleared before the final callback
(result, error or cancelled) of the current request runs, so a handler sees the panel idle."""
from __future__ import annotations

from typing import Callable

FINAL = ("on_result", "on_error", "on_cancelled")


class LatestRequest:
    """One kind of request a panel keeps at most one of, sent through `bridge`."""

    def __init__(self, bridge) -> None:
        self.bridge = bridge
        self.job: int | None = None
        self._token = 0  # which request the callbacks still listen to

    def submit(self, request: str, params: dict | None = None, *, name: str, **options) -> int:
        """Send `request`, replacing the one in flight. `options` are the bridge's: `on_*`
        callbacks (called only while this request is the latest) and e.g. `background`."""
        self.cancel()
        self._token += 1
        token = self._token

        def current(key: str, handler: Callable) -> Callable:
            def call(*args) -> None:
                if token != self._token:
                    return  # an answer to a request the user has moved on from
                if key in FINAL:
                    self.job = None
                handler(*args)
            return call

        wrapped = {k: (current(k, v) if k.startswith("on_") and v is not None else v) for k, v in options.items()}
        self.job = self.bridge.submit(request, params, name=name, **wrapped)
        return self.job

    def cancel(self) -> None:
        """Ask the engine to stop the request in flight; its 'cancelled' still arrives."""
        if self.job is not None:
            self.bridge.cancel(self.job)
