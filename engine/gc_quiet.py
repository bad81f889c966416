"""Keep Python's cyclic garbage collector from freezing the window while the engine loads models.

The freezes users saw on the first use of a model (the GUI heartbeat's longest gaps, 250–600 ms)
were full (generation-2) collections: importing torch, timm, transformers and sympy and building
a model allocate hundreds of thousands of long-lived objects, and every so often the collector
walks all of them while holding the GIL, so the GUI thread cannot run. Measured with gc.callbacks
over the cold loads of the built-in models: eight full collections of 45–453 ms.

Two measures, both standard practice for servers with big heaps (gc.freeze, CPython >= 3.7):
- while a model or a heavy module loads, no automatic full collection runs (young generations
  still do, they are cheap);
- afterwards everything alive is frozen: moved to a permanent generation the collector skips,
  so later full collections only walk what is new. Freezing does not stop reference counting:
  a frozen object whose last reference goes is freed at once. Only cyclic garbage that existed
  at a freeze waits for `release()`, which runs when models are unloaded.
"""
from __future__ import annotations

import gc
import threading
from contextlib import contextmanager

_NO_FULL = 1_000_000  # generation-2 threshold that the counter never reaches during a load
_lock = threading.Lock()
_depth = 0


@contextmanager
def loading():
    """Around an import-heavy load on the engine thread (nesting is fine)."""
    global _depth
    with _lock:
        if _depth == 0:
            loading.saved = gc.get_threshold()
            t0, t1, _ = loading.saved
            gc.set_threshold(t0, t1, _NO_FULL)
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                gc.set_threshold(*loading.saved)
                gc.collect(1)  # the load's young garbage: cheap
                gc.freeze()


loading.saved = gc.get_threshold()


def release() -> None:
    """After models were unloaded: collect what the freezes kept (cycles such as a model class
    defined in a builder), then freeze again. One full pass, at a moment the user chose."""
    with _lock:
        gc.unfreeze()
        gc.collect()
        gc.freeze()


def thaw() -> None:
    """When the engine stops: hand everything back to the collector (no pass now)."""
    with _lock:
        gc.unfreeze()
