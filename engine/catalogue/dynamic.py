"""Entries that appear at run time: imported user files and runs trained in the app.

Each is described by a JSON card on disk, so the catalogue survives restarts:
  user imports: <data>/models/<id>.json  (written by engine.catalogue.imports)
  trained runs: <data>/runs/<run>/card.json (written by the training loop)
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

from engine.catalogue.entry import ModelEntry, Preprocess, Source
from engine.paths import data_dir, runs_dir

log = logging.getLogger(__name__)


def user_models_dir() -> Path:
    return data_dir() / "models"


def entry_from_card(card: dict, source: Source) -> ModelEntry:
    """A catalogue entry from a JSON card's "catalogue" section."""
    c = card["catalogue"]
    pp = c.get("preprocess") or {}
    return ModelEntry(
        id=c["id"], name=c["name"], family=c["family"], panels=tuple(c["panels"]),
        description=c.get("description", ""), licence=c.get("licence", "user"),
        size_mb=float(c.get("size_mb", 0.0)), source=source, builder=c["builder"], labels=c.get("labels"),
        preprocess=Preprocess(**{k: tuple(v) if isinstance(v, list) else v for k, v in pp.items()}),
        arch=c.get("arch", ""), options=tuple((str(k), str(v)) for k, v in (c.get("options") or {}).items()))


def _cards(folder: Path, pattern: str):
    if not folder.is_dir():
        return
    for path in sorted(folder.glob(pattern)):
        try:
            yield path, json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            log.warning("ignoring unreadable card %s: %s", path, exc)


def user_entries() -> list[ModelEntry]:
    out = []
    for path, card in _cards(user_models_dir(), "*.json"):
        try:
            weights = str(path.with_name(card["weights"]))
            out.append(entry_from_card(card, Source("user", weights, sha256=card.get("sha256"))))
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("ignoring malformed user model card %s: %s", path, exc)
    return out


def run_entries() -> list[ModelEntry]:
    from engine.runs.listing import effective_status

    out = []
    for path, card in _cards(runs_dir(), "*/card.json"):
        if "catalogue" not in card:
            continue
        # A killed run ("interrupted") still has the weights of its last checkpoint.
        status = effective_status(card, path.parent)
        weights = path.parent / card.get("weights", "model.safetensors")
        if status not in ("finished", "stopped", "interrupted") or not weights.is_file():
            continue
        try:
            weights = str(weights)
            out.append(entry_from_card(card, Source("run", weights, sha256=card.get("sha256"))))
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("ignoring malformed run card %s: %s", path, exc)
    return out
