"""The one place where engine events become Qt signals.

The engine calls our listener on its own thread; we re-emit each event through a
queued signal so every slot runs on the GUI thread. Progress is already throttled
at the source (the engine sends at most ~20 updates a second per job).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from PySide6.QtCore import QObject, Qt, Signal

from engine.core import Engine
from engine.jobs import EngineStatus, EngineWarning, JobEvent, JobInfo, Priority


#: Jobs whose end can change what the model catalogue lists.
CATALOGUE_KINDS = {"download_model", "delete_model", "import_model", "delete_user_model", "train"}


@dataclass
class _Callbacks:
    on_result: Callable[[Any], None] | None = None
    on_error: Callable[[Any], None] | None = None
    on_progress: Callable[[Any], None] | None = None
    on_partial: Callable[[Any], None] | None = None
    on_cancelled: Callable[[], None] | None = None


class EngineBridge(QObject):
    job_event = Signal(object)  # every JobEvent
    jobs_changed = Signal()  # a job was added or changed state
    status_changed = Signal(object)  # EngineStatus
    warning = Signal(str)  # EngineWarning and job errors the user should see
    catalogue_changed = Signal()  # a model was downloaded, deleted, imported or trained
    _incoming = Signal(object)

    def __init__(self, device: str | None = None, parent: QObject | None = None):
        super().__init__(parent)
        self.engine = Engine(device=device, fallback_device=True)
        self._callbacks: dict[int, _Callbacks] = {}
        self._closed = False
        self.status: EngineStatus | None = None
        self._incoming.connect(self._dispatch, Qt.ConnectionType.QueuedConnection)
        self.engine.add_listener(self._incoming.emit)  # called on the engine thread

    def start(self) -> None:
        """Start the engine thread (torch is imported there). Call after the first paint."""
        self.engine.start()

    def submit(self, request: str, params: dict | None = None, *, name: str | None = None,
               background: bool = False, internal: bool | None = None, on_result=None, on_error=None,
               on_progress=None, on_partial=None, on_cancelled=None) -> int:
        """Submit a named engine request; the callbacks run on the GUI thread.

        After shutdown() it returns 0 and runs nothing: a timer or late signal that fires while the
        app closes (a panel refreshing its list) must not raise into the Qt event loop. `internal`
        overrides the request's own mark (engine.core.INTERNAL_REQUESTS) for the jobs list."""
        if self._closed:
            return 0
        priority = Priority.BACKGROUND if background else Priority.INTERACTIVE
        handle = self.engine.submit(request, params, name=name, priority=priority, internal=internal)
        # Safe even if the job has already finished: its events reach _dispatch through
        # the queued signal, which cannot run before this GUI-thread call returns.
        self._callbacks[handle.id] = _Callbacks(on_result, on_error, on_progress, on_partial, on_cancelled)
        return handle.id

    def cancel(self, job_id: int) -> None:
        self.engine.cancel(job_id)

    def pause(self, job_id: int) -> None:
        self.engine.pause(job_id)

    def resume(self, job_id: int) -> None:
        self.engine.resume(job_id)

    def jobs(self) -> list[JobInfo]:
        return self.engine.jobs()

    def shutdown(self, timeout: float = 5.0) -> None:
        self._closed = True
        self.engine.remove_listener(self._incoming.emit)
        self.engine.shutdown(timeout)

    def _dispatch(self, event: Any) -> None:
        if isinstance(event, EngineStatus):
            self.status = event
            self.status_changed.emit(event)
            return
        if isinstance(event, EngineWarning):
            self.warning.emit(event.message)
            return
        if not isinstance(event, JobEvent):
            return
        self.job_event.emit(event)
        cbs = self._callbacks.get(event.job_id)
        if event.kind == "state":
            self.jobs_changed.emit()
            if event.payload.finished and event.info.kind in CATALOGUE_KINDS:
                self.catalogue_changed.emit()
            if event.payload.finished:
                done = self._callbacks.pop(event.job_id, None)
                if done and event.payload.value == "cancelled" and done.on_cancelled:
                    done.on_cancelled()
            return
        if cbs is None:
            return
        fn = {"result": cbs.on_result, "error": cbs.on_error, "progress": cbs.on_progress,
              "partial": cbs.on_partial}.get(event.kind)
        if fn is not None:
            fn(event.payload)
        elif event.kind == "error":
            self.warning.emit(event.payload.message)
