"""Loaded models, keyed by catalogue id, within an explicit memory budget.

Least recently used models are evicted when the budget would be exceeded;
unloading is explicit too, and the list of loaded models is published in the
engine status so the UI can show it.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable

from engine import gc_quiet


def module_megabytes(module) -> float:
    """Parameter + buffer memory of a torch module, in MB."""
    n = sum(t.numel() * t.element_size() for t in module.parameters())
    n += sum(t.numel() * t.element_size() for t in module.buffers())
    return n / 2**20


class ModelCache:
    def __init__(self, budget_mb: float):
        self.budget_mb = budget_mb
        self._items: OrderedDict[str, tuple[Any, float]] = OrderedDict()

    def get(self, key: str, build: Callable[[], Any]) -> Any:
        """Return the cached model for `key`, building (and sizing) it on a miss."""
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key][0]
        with gc_quiet.loading():  # no full GC pass (a GUI freeze) while the model loads
            model = build()
        size = module_megabytes(model) if hasattr(model, "parameters") else 0.0
        evicted = False
        while self._items and self.used_mb() + size > self.budget_mb:
            self._items.popitem(last=False)
            evicted = True
        self._items[key] = (model, size)
        if evicted:
            gc_quiet.release()
        return model

    def unload(self, key: str | None = None) -> None:
        """Drop one model, or all of them when key is None."""
        if key is None:
            self._items.clear()
        else:
            self._items.pop(key, None)
        gc_quiet.release()  # what a frozen model kept in reference cycles is freed now

    def used_mb(self) -> float:
        return sum(size for _, size in self._items.values())

    def loaded(self) -> tuple[tuple[str, float], ...]:
        return tuple((k, round(s, 1)) for k, (_, s) in self._items.items())
