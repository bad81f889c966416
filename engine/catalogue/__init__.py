"""The model catalogue: one registry every panel's model picker reads.

Entries come from three places: the built-in list (offline packages, resources/ and
pretrained weights on request), files the user imported, and runs trained in the app.
"""
from __future__ import annotations

from engine.catalogue.builtin import DEFAULT_CLASSIFIER, ENTRIES
from engine.catalogue.entry import FAMILIES, ModelEntry, Preprocess, Source
from engine.errors import ModelError

__all__ = ["DEFAULT_CLASSIFIER", "FAMILIES", "ModelEntry", "Preprocess", "Source", "entries", "get"]


def entries(panel: str | None = None, family: str | None = None) -> list[ModelEntry]:
    from engine.catalogue import dynamic

    found = list(ENTRIES) + dynamic.user_entries() + dynamic.run_entries()
    return [e for e in found if (panel is None or panel in e.panels) and (family is None or e.family == family)]


def get(model_id: str) -> ModelEntry:
    for e in entries():
        if e.id == model_id:
            return e
    raise ModelError(f"unknown model {model_id!r}; see `python main.py models` for the catalogue")
