"""Where the project's own files live: label lists and built-in checkpoints."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

RESOURCES = Path(__file__).resolve().parent.parent / "resources"


@lru_cache(maxsize=None)
def labels(name: str) -> tuple[str, ...]:
    """Class names from resources/labels/<name>.txt, one per line, in class-index order."""
    path = RESOURCES / "labels" / f"{name}.txt"
    return tuple(line.rstrip("\n") for line in path.read_text(encoding="utf-8").splitlines())


def short_label(description: str) -> str:
    """'tabby, tabby cat' -> 'tabby': WordNet synonym lists read best by their first name."""
    return description.split(",")[0].strip()
