"""The engine's loads run without full GC passes and leave their objects frozen; unloading
frees what the freeze kept in reference cycles."""
from __future__ import annotations

import gc
import weakref

from engine import gc_quiet
from engine.models.cache import ModelCache


class Cyclic:
    """Stands for a model kept alive only through a cycle (a class built inside a builder)."""

    def __init__(self):
        self.me = self


def test_no_full_collection_during_a_load_and_frozen_after():
    before = gc.get_threshold()
    full = []

    def watch(phase, info):
        if phase == "start" and info["generation"] == 2:
            full.append(info)

    gc.callbacks.append(watch)
    try:
        with gc_quiet.loading():
            assert gc.get_threshold()[2] >= 1_000_000
            with gc_quiet.loading():  # nested: still suppressed
                junk = [[i] for i in range(300_000)]  # enough allocations for several gen-2 passes
            assert gc.get_threshold()[2] >= 1_000_000
            del junk
    finally:
        gc.callbacks.remove(watch)
    assert full == [], "a full collection ran inside a load"
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() > 0
    gc.callbacks.append(watch)
    try:  # the control: the same allocations outside a load do start full passes
        _junk = [[i] for i in range(300_000)]  # allocations alone: their full passes are the point
    finally:
        gc.callbacks.remove(watch)
    assert full, "the control ran no full collection, so the check above proves nothing"


def test_unloading_frees_a_frozen_model_held_by_a_cycle():
    cache = ModelCache(budget_mb=100)
    model = cache.get("m@cpu", Cyclic)
    ref = weakref.ref(model)
    del model
    assert gc.get_freeze_count() > 0
    cache.unload("m@cpu")
    assert ref() is None
